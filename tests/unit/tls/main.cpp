#define BOOST_TEST_MODULE imapav_tls
#include <boost/test/unit_test.hpp>
