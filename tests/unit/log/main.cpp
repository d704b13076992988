#define BOOST_TEST_MODULE imapav_log
#include <boost/test/unit_test.hpp>
