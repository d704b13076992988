#define BOOST_TEST_MODULE imapav_integration_notify
#include <boost/test/unit_test.hpp>
