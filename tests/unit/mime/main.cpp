#define BOOST_TEST_MODULE imapav_mime
#include <boost/test/unit_test.hpp>
