#define BOOST_TEST_MODULE imapav_integration_icapclient
#include <boost/test/unit_test.hpp>
