#define BOOST_TEST_MODULE imapav_redirector
#include <boost/test/unit_test.hpp>
