#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "db/event_store.hpp"
#include "db/event_writer.hpp"
#include "db_test_support.hpp"

using namespace imapav::db;
using imapav::db::test::LogCapture;
using imapav::db::test::RawDb;
using imapav::db::test::sampleEvent;
using imapav::db::test::TempDir;
using imapav::db::test::waitUntil;
using std::chrono::hours;
using std::chrono::milliseconds;

using imapav::db::test::holdUntilStop;
using imapav::db::test::quick;

BOOST_AUTO_TEST_SUITE(event_writer)

BOOST_FIXTURE_TEST_CASE(submitted_rows_are_written_by_stop, TempDir) {
  const auto db = file("events.db");
  WriterOptions options;
  options.batchSize = 100;
  EventWriter writer(db, options);
  for (std::int64_t i = 0; i < 1234; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  writer.stop();
  const auto s = writer.stats();
  BOOST_TEST(s.queued == 1234u);
  BOOST_TEST(s.written == 1234u);
  BOOST_TEST(s.dropped == 0u);
  BOOST_TEST(s.failed == 0u);
  BOOST_TEST(s.batches >= 13u);  // never more than batchSize rows per transaction
  BOOST_TEST(writer.healthy());

  const auto rows = EventStore(db).readAll();
  BOOST_REQUIRE(rows.size() == 1234u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    BOOST_TEST_REQUIRE((rows[i] == sampleEvent(static_cast<std::int64_t>(i))));
  }
}

BOOST_FIXTURE_TEST_CASE(partial_batch_is_flushed_after_the_interval, TempDir) {
  const auto db = file("events.db");
  EventWriter writer(db, quick());
  BOOST_TEST(writer.submit(sampleEvent(1)));
  BOOST_TEST(waitUntil([&] { return writer.stats().written == 1; }));  // without stop()
  BOOST_TEST(EventStore::openReadOnly(db).count() == 1);
}

BOOST_FIXTURE_TEST_CASE(stop_is_idempotent_and_later_submits_are_dropped, TempDir) {
  const auto db = file("events.db");
  EventWriter writer(db, holdUntilStop());
  BOOST_TEST(writer.submit(sampleEvent(1)));
  writer.stop();
  writer.stop();
  BOOST_TEST(!writer.submit(sampleEvent(2)));
  const auto s = writer.stats();
  BOOST_TEST(s.written == 1u);
  BOOST_TEST(s.dropped == 1u);
  BOOST_TEST(EventStore(db).count() == 1);
}

BOOST_FIXTURE_TEST_CASE(full_queue_drops_and_counts, TempDir) {
  const LogCapture log;
  const auto db = file("events.db");
  EventWriter writer(db, holdUntilStop(10));
  int accepted = 0;
  for (std::int64_t i = 0; i < 15; ++i) accepted += writer.submit(sampleEvent(i)) ? 1 : 0;
  BOOST_TEST(accepted == 10);
  auto s = writer.stats();
  BOOST_TEST(s.queued == 10u);
  BOOST_TEST(s.dropped == 5u);
  const auto errors = log.errors();  // loud, but one line per 10 s, not one per row
  BOOST_REQUIRE(errors.size() == 1u);
  BOOST_TEST(errors[0].find("dropped") != std::string::npos);
  BOOST_TEST(errors[0].find(db) != std::string::npos);
  writer.stop();
  s = writer.stats();
  BOOST_TEST(s.written == 10u);
  BOOST_TEST(s.failed == 0u);
  const auto rows = EventStore(db).readAll();
  BOOST_REQUIRE(rows.size() == 10u);
  BOOST_TEST((rows.back() == sampleEvent(9)));  // the first ten were kept, the rest dropped
}

BOOST_FIXTURE_TEST_CASE(missing_directory_counts_failures, TempDir) {
  const LogCapture log;
  const auto db = file("missing/events.db");
  EventWriter writer(db, quick());
  for (std::int64_t i = 0; i < 100; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  BOOST_TEST(waitUntil([&] { return writer.stats().failed == 100; }));
  BOOST_TEST(!writer.healthy());
  BOOST_TEST(writer.submit(sampleEvent(100)));  // still accepting
  BOOST_CHECK_NO_THROW(writer.stop());
  const auto s = writer.stats();
  BOOST_TEST(s.failed == 101u);
  BOOST_TEST(s.written == 0u);
  BOOST_TEST(s.openFailures >= 2u);  // kept retrying
  const auto errors = log.errors();  // many failures, one line: the 10 s rate limit
  BOOST_REQUIRE(errors.size() == 1u);
  BOOST_TEST_MESSAGE(errors[0]);
  BOOST_TEST(errors[0].find("unable to open database file") != std::string::npos);
  BOOST_TEST(!std::filesystem::exists(path / "missing"));
}

BOOST_FIXTURE_TEST_CASE(file_that_is_not_a_database_counts_failures, TempDir) {
  const auto db = file("notes.txt");
  std::ofstream(db) << "not a database\n";
  EventWriter writer(db, quick());
  for (std::int64_t i = 0; i < 20; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  BOOST_TEST(waitUntil([&] { return writer.stats().failed == 20; }));
  BOOST_TEST(!writer.healthy());
  BOOST_CHECK_NO_THROW(writer.stop());
  BOOST_TEST(writer.stats().written == 0u);
  BOOST_TEST(std::filesystem::file_size(db) == 15u);  // the file was left alone
}

BOOST_FIXTURE_TEST_CASE(database_that_appears_later_is_used, TempDir) {
  const auto dir = path / "later";
  const auto db = (dir / "events.db").string();
  EventWriter writer(db, quick());
  for (std::int64_t i = 0; i < 10; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.stats().failed == 10; }));

  std::filesystem::create_directory(dir);
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.healthy(); }));  // reopened by itself
  for (std::int64_t i = 10; i < 30; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  writer.stop();
  const auto s = writer.stats();
  BOOST_TEST(s.failed == 10u);
  BOOST_TEST(s.written == 20u);
  const auto rows = EventStore(db).readAll();
  BOOST_REQUIRE(rows.size() == 20u);
  BOOST_TEST((rows.front() == sampleEvent(10)));
}

BOOST_FIXTURE_TEST_CASE(stop_makes_a_last_attempt_on_a_failing_database, TempDir) {
  const auto dir = path / "later";
  const auto db = (dir / "events.db").string();
  WriterOptions options = holdUntilStop();
  options.reopenInterval = hours(1);  // no retry would come before stop()
  EventWriter writer(db, options);
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.stats().openFailures == 1; }));
  for (std::int64_t i = 0; i < 5; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  std::filesystem::create_directory(dir);
  writer.stop();
  BOOST_TEST(writer.stats().written == 5u);
  BOOST_TEST(writer.stats().failed == 0u);
  BOOST_TEST(EventStore(db).count() == 5);
}

BOOST_FIXTURE_TEST_CASE(lock_held_beyond_busy_timeout_loses_rows_then_recovers, TempDir) {
  const auto db = file("events.db");
  EventWriter writer(db, quick());
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.healthy(); }));
  RawDb other(db);
  other.exec("BEGIN IMMEDIATE");
  for (std::int64_t i = 0; i < 10; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.stats().failed == 10; }));
  BOOST_TEST(!writer.healthy());
  other.exec("ROLLBACK");
  for (std::int64_t i = 10; i < 30; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  writer.stop();
  BOOST_TEST(writer.stats().written == 20u);
  BOOST_TEST(writer.healthy());
  BOOST_TEST(EventStore(db).count() == 20);
}

BOOST_FIXTURE_TEST_CASE(four_threads_submit_concurrently, TempDir) {
  const auto db = file("events.db");
  constexpr std::int64_t kPerThread = 2500;
  EventWriter writer(db, quick());
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::int64_t i = 0; i < kPerThread; ++i) {
        ScanEvent e = sampleEvent(i);
        e.gateway = "thread" + std::to_string(t);
        if (!writer.submit(std::move(e))) ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  writer.stop();
  BOOST_TEST(refused.load() == 0);
  const auto s = writer.stats();
  BOOST_TEST(s.queued == 10000u);
  BOOST_TEST(s.written == 10000u);

  // Every thread's rows arrived complete and in that thread's order.
  std::map<std::string, std::int64_t> nextUid;
  for (const ScanEvent& e : EventStore(db).readAll()) {
    BOOST_TEST_REQUIRE((e.uid == nextUid[e.gateway]));
    ++nextUid[e.gateway];
  }
  BOOST_TEST(nextUid.size() == 4u);
  for (const auto& [gateway, n] : nextUid) BOOST_TEST(n == kPerThread);
}

BOOST_AUTO_TEST_SUITE_END()
