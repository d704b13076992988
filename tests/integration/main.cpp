#define BOOST_TEST_MODULE imapav_integration
#include <boost/test/unit_test.hpp>
