#define BOOST_TEST_MODULE imapav_icap
#include <boost/test/unit_test.hpp>
