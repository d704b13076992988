#define BOOST_TEST_MODULE imapav_db
#include <boost/test/unit_test.hpp>
