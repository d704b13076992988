#define BOOST_TEST_MODULE imapav_imap
#include <boost/test/unit_test.hpp>
