// The registry and the text format: exact output, escaping, histograms, the rules on names
// and registration, concurrent counting, and promtool's verdict on what we render.

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <thread>
#include <vector>

#include "shared/metrics/registry.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::metrics;
namespace data = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(renders_families_in_registration_order_with_help_and_type) {
  Registry r;
  auto& clean = r.counter("x_scans_total", "Scans.", {{"verdict", "clean"}});
  auto& infected = r.counter("x_scans_total", "Scans.", {{"verdict", "infected"}});
  auto& g = r.gauge("x_active", "Open now.");
  clean.inc(3);
  infected.inc();
  g.set(2);
  g.add(-0.5);
  BOOST_TEST(r.render() ==
             "# HELP x_scans_total Scans.\n"
             "# TYPE x_scans_total counter\n"
             "x_scans_total{verdict=\"clean\"} 3\n"
             "x_scans_total{verdict=\"infected\"} 1\n"
             "# HELP x_active Open now.\n"
             "# TYPE x_active gauge\n"
             "x_active 1.5\n");
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_with_sum_and_count) {
  Registry r;
  auto& h = r.histogram("x_seconds", "Time.", {0.1, 1}, {{"kind", "a"}});
  for (double v : {0.05, 0.1, 0.5, 3.0}) h.observe(v);
  BOOST_TEST(r.render() ==
             "# HELP x_seconds Time.\n"
             "# TYPE x_seconds histogram\n"
             "x_seconds_bucket{kind=\"a\",le=\"0.1\"} 2\n"  // le is inclusive
             "x_seconds_bucket{kind=\"a\",le=\"1\"} 3\n"
             "x_seconds_bucket{kind=\"a\",le=\"+Inf\"} 4\n"
             "x_seconds_sum{kind=\"a\"} 3.65\n"
             "x_seconds_count{kind=\"a\"} 4\n");
}

BOOST_AUTO_TEST_CASE(label_values_and_help_are_escaped) {
  Registry r;
  r.counter("x_total", "Line one\nback\\slash \"quoted\".", {{"v", "a\"b\\c\nd"}}).inc();
  BOOST_TEST(r.render() ==
             "# HELP x_total Line one\\nback\\\\slash \"quoted\".\n"
             "# TYPE x_total counter\n"
             "x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
  BOOST_TEST(imapav::test::promtoolProblems(r.render()) == "");
}

BOOST_DATA_TEST_CASE(values_print_exactly_and_shortest,
                     data::make({0.0, 1.0, 42.0, 1e15, 0.004, 0.1, 1.0 / 3, -2.5, 9007199254740993.0, HUGE_VAL, -HUGE_VAL}) ^
                         data::make({"0", "1", "42", "1000000000000000", "0.004", "0.1", "0.3333333333333333", "-2.5",
                                     "9007199254740992", "+Inf", "-Inf"}),
                     value, text) {
  BOOST_TEST(formatValue(value) == text);
}

BOOST_AUTO_TEST_CASE(nan_prints_as_nan) { BOOST_TEST(formatValue(std::nan("")) == "NaN"); }

BOOST_DATA_TEST_CASE(bad_names_are_refused, data::make({"", "9lives", "has-dash", "sp ace", "é"}), name) {
  Registry r;
  BOOST_CHECK_THROW(r.counter(name, "h"), std::invalid_argument);
  BOOST_CHECK_THROW(r.gauge("ok", "h", {{name, "v"}}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(reserved_and_repeated_label_names_are_refused) {
  Registry r;
  BOOST_CHECK_THROW(r.counter("a_total", "h", {{"__x", "v"}}), std::invalid_argument);
  BOOST_CHECK_THROW(r.counter("b_total", "h", {{"x", "1"}, {"x", "2"}}), std::invalid_argument);
  BOOST_CHECK_THROW(r.histogram("c", "h", {1}, {{"le", "1"}}), std::invalid_argument);
  BOOST_CHECK_NO_THROW(r.counter("ns:d_total", "h", {{"le", "1"}}));  // le is only reserved in histograms
}

BOOST_AUTO_TEST_CASE(a_family_keeps_its_type_help_and_label_names) {
  Registry r;
  r.counter("a_total", "Help.", {{"x", "1"}});
  BOOST_CHECK_THROW(r.gauge("a_total", "Help.", {{"x", "2"}}), std::invalid_argument);
  BOOST_CHECK_THROW(r.counter("a_total", "Other help.", {{"x", "2"}}), std::invalid_argument);
  BOOST_CHECK_THROW(r.counter("a_total", "Help.", {{"y", "2"}}), std::invalid_argument);
  BOOST_CHECK_THROW(r.counter("a_total", "Help.", {{"x", "1"}}), std::invalid_argument);
  BOOST_CHECK_NO_THROW(r.counter("a_total", "Help.", {{"x", "2"}}));
}

BOOST_AUTO_TEST_CASE(histogram_bounds_must_increase) {
  BOOST_CHECK_THROW(Histogram({1, 1}), std::invalid_argument);
  BOOST_CHECK_THROW(Histogram({2, 1}), std::invalid_argument);
  BOOST_CHECK_THROW(Histogram({1, HUGE_VAL}), std::invalid_argument);
  BOOST_TEST(exponentialBounds(0.001, 2, 4) == std::vector<double>({0.001, 0.002, 0.004, 0.008}),
             boost::test_tools::per_element());
  BOOST_CHECK_THROW(exponentialBounds(0, 2, 4), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(collectors_write_after_the_registered_families) {
  Registry r;
  r.counter("a_total", "A.").inc();
  int calls = 0;
  r.addCollector([&calls](Exposition& e) {
    ++calls;
    e.family("b_depth", "B.", Type::Gauge);
    e.sample("b_depth", {{"server", "x:1"}}, 7);
  });
  const auto text = r.render();
  BOOST_TEST(calls == 1);
  BOOST_TEST(text.find("a_total 1\n") < text.find("b_depth{server=\"x:1\"} 7\n"));
  r.render();
  BOOST_TEST(calls == 2);  // run at every scrape
}

BOOST_AUTO_TEST_CASE(a_family_written_twice_is_a_logic_error) {
  Registry r;
  r.counter("a_total", "A.");
  r.addCollector([](Exposition& e) { e.family("a_total", "A again.", Type::Counter); });
  BOOST_CHECK_THROW(r.render(), std::logic_error);
}

BOOST_AUTO_TEST_CASE(concurrent_counting_loses_nothing) {
  Registry r;
  auto& c = r.counter("a_total", "A.");
  auto& g = r.gauge("g", "G.");
  auto& h = r.histogram("h", "H.", {1, 2});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        g.add(1);
        g.add(-1);
        h.observe(i % 3);
      }
    });
  std::string during;
  for (int i = 0; i < 20; ++i) during = r.render();  // scrapes while counting: no data race (TSan/ASan builds)
  for (auto& t : threads) t.join();
  BOOST_TEST(c.value() == 400000U);
  BOOST_TEST(g.value() == 0.0);
  const auto s = h.snapshot();
  BOOST_TEST(s.cumulative.back() == 400000U);
  BOOST_TEST(s.sum == 399996.0);  // 4 x 33,333 x (0 + 1 + 2), exact in a double
}

BOOST_AUTO_TEST_CASE(promtool_accepts_every_kind_we_render) {
  Registry r;
  r.counter("imapav_x_total", "Things.", {{"kind", "a"}}).inc(5);
  r.gauge("imapav_y", "Level.").set(-1.25);
  r.histogram("imapav_z_seconds", "Time.", exponentialBounds(0.001, 2, 17)).observe(0.3);
  r.addCollector([](Exposition& e) {
    e.family("imapav_info", "Info.", Type::Gauge);
    e.sample("imapav_info", {{"version", "ClamAV 1.4.6"}, {"istag", "x\"y"}}, 1);
  });
  BOOST_TEST(imapav::test::promtoolProblems(r.render()) == "");
}

BOOST_AUTO_TEST_SUITE_END()
