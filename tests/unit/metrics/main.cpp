#define BOOST_TEST_MODULE imapav_metrics
#include <boost/test/unit_test.hpp>
