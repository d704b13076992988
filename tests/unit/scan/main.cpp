#define BOOST_TEST_MODULE imapav_scan
#include <boost/test/unit_test.hpp>
