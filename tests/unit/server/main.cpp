#define BOOST_TEST_MODULE imapav_server
#include <boost/test/unit_test.hpp>
