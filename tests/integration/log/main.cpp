#define BOOST_TEST_MODULE imapav_integration_log
#include <boost/test/unit_test.hpp>
