#include <boost/test/unit_test.hpp>

#include <fstream>
#include <vector>

#include "db/event_store.hpp"
#include "db/event_writer.hpp"
#include "db/migrations.hpp"
#include "db/notification_event.hpp"
#include "db_test_support.hpp"

using namespace imapav::db;
using imapav::db::test::RawDb;
using imapav::db::test::sampleEvent;
using imapav::db::test::TempDir;
using imapav::db::test::waitUntil;
using std::chrono::hours;
using std::chrono::milliseconds;

using imapav::db::test::holdUntilStop;
using imapav::db::test::quick;

namespace {

NotificationEvent sampleNotification(std::int64_t i) {
  NotificationEvent n;
  n.timeUs = 1700000000000000 + i;
  n.kind = "sender-virus";
  n.recipient = "sender" + std::to_string(i) + "@example.org";
  n.outcome = i % 3 == 0 ? "failed" : "sent";
  n.attempts = 1 + i % 3;
  n.detail = "250 2.0.0 Ok: queued as " + std::to_string(i);
  n.messageId = "<" + std::to_string(i) + "@example.org>";
  n.gateway = "192.0.2.1";
  return n;
}

// A database as a build that knew only 0001 left it: that migration's SQL, version 1.
void createVersion1(const std::string& db) {
  std::ofstream{db};  // an empty file is an empty SQLite database
  RawDb raw(db);
  raw.exec("BEGIN");
  raw.exec(std::string(migrations().front().sql));
  raw.exec("PRAGMA user_version = 1");
  raw.exec("COMMIT");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}


}  // namespace

BOOST_AUTO_TEST_SUITE(notifications)

BOOST_FIXTURE_TEST_CASE(migration_0002_is_embedded_after_0001, TempDir) {
  const auto& list = migrations();
  BOOST_REQUIRE(list.size() >= 2u);
  BOOST_TEST(std::string(list[1].name) == "0002_notifications.sql");
  BOOST_TEST(list[1].sql.find("CREATE TABLE notifications") != std::string_view::npos);
  BOOST_TEST(EventStore::latestVersion() >= 2);
}

BOOST_FIXTURE_TEST_CASE(version_1_database_is_migrated_and_keeps_its_rows, TempDir) {
  const auto db = file("events.db");
  createVersion1(db);
  {
    RawDb raw(db);
    raw.exec("INSERT INTO scan_events (time_us, gateway, user, uid, subject, verdict)"
             " VALUES (1700000000123456, '192.0.2.9', 'jörg', 42, 'it''s old', 'infected')");
    raw.exec("INSERT INTO scan_events (time_us, verdict) VALUES (5, 'clean')");
    BOOST_TEST_REQUIRE(raw.text("PRAGMA user_version") == "1");
    BOOST_TEST_REQUIRE(raw.text("SELECT count(*) FROM sqlite_master WHERE name = 'notifications'")
                       == "0");
  }
  {
    // Read-only never migrates: the old file stays version 1, and asking it for
    // notifications is a clear error, not a crash.
    EventStore reader = EventStore::openReadOnly(db);
    BOOST_TEST(reader.schemaVersion() == 1);
    BOOST_TEST(reader.count() == 2);
    BOOST_CHECK_EXCEPTION(reader.countNotifications(), EventStoreError,
                          [](const EventStoreError& e) {
                            BOOST_TEST_MESSAGE(e.what());
                            return contains(e.what(), "no such table: notifications");
                          });
  }

  EventStore store(db);
  BOOST_TEST(store.schemaVersion() == EventStore::latestVersion());
  BOOST_TEST(store.count() == 2);
  BOOST_TEST(store.countNotifications() == 0);
  const auto rows = store.readAll();
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[0].timeUs == 1700000000123456);
  BOOST_TEST(rows[0].gateway == "192.0.2.9");
  BOOST_TEST(rows[0].user == "jörg");
  BOOST_TEST((rows[0].uid == std::optional<std::int64_t>(42)));
  BOOST_TEST(!rows[0].uidValidity.has_value());
  BOOST_TEST(rows[0].subject == "it's old");
  BOOST_TEST(rows[0].verdict == "infected");
  BOOST_TEST(rows[1].timeUs == 5);

  // Both tables usable on the migrated file.
  store.insert({sampleEvent(3)});
  store.insertNotifications({sampleNotification(1)});
  BOOST_TEST(store.count() == 3);
  BOOST_TEST(store.countNotifications() == 1);

  RawDb raw(db);
  BOOST_TEST(raw.text("PRAGMA user_version") == std::to_string(EventStore::latestVersion()));
  // 0001's indexes (later migrations add more).
  BOOST_TEST(raw.text("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ("
                      "'scan_events_time','scan_events_verdict_time','scan_events_user_time','scan_events_sender_time','scan_events_gateway_time','scan_events_sha256','scan_events_message_id')") == "7");
  BOOST_TEST(raw.text("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
                      " WHERE type = 'index' AND tbl_name = 'notifications' ORDER BY name)") ==
             "notifications_outcome_time,notifications_time");
  BOOST_TEST(raw.text("SELECT count(*) FROM notifications_readable") == "1");
}

BOOST_FIXTURE_TEST_CASE(every_field_reads_back, TempDir) {
  NotificationEvent full;
  full.timeUs = 1700000000123456;
  full.kind = "sender-error-drop";
  full.recipient = "\"O'Brien, Pat\" <pät@exämple.org>";
  full.outcome = "rate-limited";
  full.attempts = 4294967296;
  full.detail = "550 5.7.1 Grüße — 日本語 🙂 'single' \"double\"; DROP TABLE notifications; --";
  full.messageId = "<abc'def\"@example.org>";
  full.gateway = "2001:db8::1";

  NotificationEvent sparse;  // nothing but a time: every text field ''
  sparse.timeUs = 5;

  NotificationEvent embeddedNul = sampleNotification(3);
  embeddedNul.detail = std::string("a\0b", 3);  // bound by length, not by strlen

  const auto db = file("events.db");
  EventStore store(db);
  store.insertNotifications({full, sparse, embeddedNul});
  store.insertNotifications({});  // a no-op, not an empty transaction
  BOOST_TEST(store.countNotifications() == 3);
  BOOST_TEST(store.count() == 0);  // the scan table is untouched
  const auto rows = store.readNotifications();
  BOOST_REQUIRE(rows.size() == 3u);
  BOOST_TEST((rows[0] == full));
  BOOST_TEST((rows[1] == sparse));
  BOOST_TEST((rows[2] == embeddedNul));
  BOOST_TEST(rows[2].detail.size() == 3u);

  RawDb raw(db);
  BOOST_TEST(raw.text("SELECT time_iso FROM notifications WHERE id = 1") ==
             "2023-11-14T22:13:20.123456Z");
  BOOST_TEST(raw.text("SELECT time_iso FROM notifications WHERE id = 2") ==
             "1970-01-01T00:00:00.000005Z");
  BOOST_TEST(raw.text("SELECT recipient FROM notifications WHERE id = 2") == "");
  BOOST_TEST(raw.text("SELECT count(*) FROM notifications WHERE detail LIKE '%日本語%'") == "1");
  BOOST_TEST(raw.text("SELECT time_iso || ' ' || outcome FROM notifications_readable"
                      " WHERE id = 1") == "2023-11-14T22:13:20.123456Z rate-limited");

  // Columns left out take their defaults: '' and 0, never NULL.
  raw.exec("INSERT INTO notifications (time_us) VALUES (1)");
  const auto defaults = store.readNotifications().back();
  NotificationEvent expected;
  expected.timeUs = 1;
  BOOST_TEST((defaults == expected));
}

BOOST_FIXTURE_TEST_CASE(batch_keeps_insertion_order, TempDir) {
  std::vector<NotificationEvent> batch;
  for (std::int64_t i = 0; i < 2000; ++i) batch.push_back(sampleNotification(2000 - i));
  EventStore store(file("events.db"));
  store.insertNotifications(batch);
  const auto rows = store.readNotifications();
  BOOST_REQUIRE(rows.size() == batch.size());
  for (std::size_t i = 0; i < rows.size(); ++i) BOOST_TEST_REQUIRE((rows[i] == batch[i]));
}

BOOST_FIXTURE_TEST_CASE(locked_database_fails_the_whole_batch, TempDir) {
  const auto db = file("events.db");
  EventStore store(db, milliseconds(50));
  RawDb other(db);
  other.exec("BEGIN IMMEDIATE");
  BOOST_CHECK_EXCEPTION(store.insertNotifications({sampleNotification(1), sampleNotification(2)}),
                        EventStoreError,
                        [](const EventStoreError& e) { return e.sqliteCode() == SQLITE_BUSY; });
  other.exec("ROLLBACK");
  BOOST_TEST(store.countNotifications() == 0);
  store.insertNotifications({sampleNotification(3)});  // the same connection works again
  BOOST_TEST(store.countNotifications() == 1);
}

BOOST_FIXTURE_TEST_CASE(mixed_batch_is_all_or_nothing, TempDir) {
  const auto db = file("events.db");
  EventStore store(db);
  store.insert({sampleEvent(1)}, {sampleNotification(1)});
  BOOST_TEST(store.count() == 1);
  BOOST_TEST(store.countNotifications() == 1);

  // The scan rows go in first; the notification insert then fails: none of it may stay.
  RawDb(db).exec("DROP VIEW notifications_readable; DROP TABLE notifications");
  BOOST_CHECK_THROW(store.insert({sampleEvent(2), sampleEvent(3)}, {sampleNotification(2)}),
                    EventStoreError);
  BOOST_TEST(store.count() == 1);
  store.insert({sampleEvent(4)});  // no transaction left open behind
  BOOST_TEST(store.count() == 2);
}

BOOST_FIXTURE_TEST_CASE(read_only_open_of_a_version_2_database, TempDir) {
  const auto db = file("events.db");
  EventStore writer(db);
  writer.insertNotifications({sampleNotification(1), sampleNotification(2)});
  writer.insert({sampleEvent(1)});

  EventStore reader = EventStore::openReadOnly(db);
  BOOST_TEST(reader.schemaVersion() == EventStore::latestVersion());
  BOOST_TEST(reader.countNotifications() == 2);
  BOOST_TEST(reader.count() == 1);
  const auto rows = reader.readNotifications();
  BOOST_REQUIRE(rows.size() == 2u);
  BOOST_TEST((rows[1] == sampleNotification(2)));
  writer.insertNotifications({sampleNotification(3)});  // seen alongside a writer (WAL)
  BOOST_TEST(reader.countNotifications() == 3);
  BOOST_CHECK_EXCEPTION(reader.insertNotifications({sampleNotification(4)}), EventStoreError,
                        [](const EventStoreError& e) { return e.sqliteCode() == SQLITE_READONLY; });
  BOOST_TEST(writer.countNotifications() == 3);
}

BOOST_FIXTURE_TEST_CASE(writer_interleaves_both_kinds_and_stop_writes_everything, TempDir) {
  const auto db = file("events.db");
  WriterOptions options;
  options.batchSize = 7;  // batches that straddle both kinds
  EventWriter writer(db, options);
  constexpr std::int64_t kRows = 500;
  for (std::int64_t i = 0; i < kRows; ++i) {
    BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
    if (i % 2 == 0) BOOST_TEST_REQUIRE(writer.submitNotification(sampleNotification(i)));
  }
  writer.stop();
  const auto s = writer.stats();
  BOOST_TEST(s.queued == 750u);
  BOOST_TEST(s.written == 750u);
  BOOST_TEST(s.notificationsQueued == 250u);
  BOOST_TEST(s.notificationsWritten == 250u);
  BOOST_TEST(s.dropped == 0u);
  BOOST_TEST(s.failed == 0u);
  BOOST_TEST(s.notificationsFailed == 0u);
  BOOST_TEST(s.batches >= 750u / 7u);
  BOOST_TEST(writer.healthy());
  BOOST_TEST(!writer.submitNotification(sampleNotification(1)));  // stopped
  BOOST_TEST(writer.stats().notificationsDropped == 1u);
  BOOST_TEST(writer.stats().dropped == 1u);

  const EventStore store(db);
  const auto scans = store.readAll();
  const auto notes = store.readNotifications();
  BOOST_REQUIRE(scans.size() == static_cast<std::size_t>(kRows));
  BOOST_REQUIRE(notes.size() == static_cast<std::size_t>(kRows / 2));
  for (std::size_t i = 0; i < scans.size(); ++i) {
    BOOST_TEST_REQUIRE((scans[i] == sampleEvent(static_cast<std::int64_t>(i))));
  }
  for (std::size_t i = 0; i < notes.size(); ++i) {
    BOOST_TEST_REQUIRE((notes[i] == sampleNotification(static_cast<std::int64_t>(2 * i))));
  }
}

BOOST_FIXTURE_TEST_CASE(notifications_share_the_queue_bound, TempDir) {
  const auto db = file("events.db");
  EventWriter writer(db, holdUntilStop(10));
  for (std::int64_t i = 0; i < 6; ++i) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  int accepted = 0;
  for (std::int64_t i = 0; i < 6; ++i) {
    accepted += writer.submitNotification(sampleNotification(i)) ? 1 : 0;
  }
  BOOST_TEST(accepted == 4);
  BOOST_TEST(!writer.submit(sampleEvent(6)));
  auto s = writer.stats();
  BOOST_TEST(s.queued == 10u);
  BOOST_TEST(s.notificationsQueued == 4u);
  BOOST_TEST(s.dropped == 3u);
  BOOST_TEST(s.notificationsDropped == 2u);
  writer.stop();
  s = writer.stats();
  BOOST_TEST(s.written == 10u);
  BOOST_TEST(s.notificationsWritten == 4u);
  BOOST_TEST(s.batches == 1u);  // one mixed transaction
  const EventStore store(db);
  BOOST_TEST(store.count() == 6);
  BOOST_TEST(store.countNotifications() == 4);
}

BOOST_FIXTURE_TEST_CASE(unopenable_database_counts_lost_notifications, TempDir) {
  const auto db = file("missing/events.db");
  EventWriter writer(db, quick());
  for (std::int64_t i = 0; i < 30; ++i) {
    BOOST_TEST_REQUIRE(writer.submitNotification(sampleNotification(i)));
    if (i % 3 == 0) BOOST_TEST_REQUIRE(writer.submit(sampleEvent(i)));
  }
  BOOST_TEST(waitUntil([&] { return writer.stats().failed == 40; }));
  BOOST_TEST(!writer.healthy());
  BOOST_TEST(writer.submitNotification(sampleNotification(30)));  // still accepting
  BOOST_CHECK_NO_THROW(writer.stop());
  const auto s = writer.stats();
  BOOST_TEST(s.failed == 41u);
  BOOST_TEST(s.notificationsFailed == 31u);
  BOOST_TEST(s.written == 0u);
  BOOST_TEST(s.notificationsWritten == 0u);
  BOOST_TEST(s.openFailures >= 1u);
  BOOST_TEST(!std::filesystem::exists(path / "missing"));
}

BOOST_FIXTURE_TEST_CASE(database_that_appears_later_gets_notifications, TempDir) {
  const auto dir = path / "later";
  const auto db = (dir / "events.db").string();
  EventWriter writer(db, quick());
  for (std::int64_t i = 0; i < 5; ++i) {
    BOOST_TEST_REQUIRE(writer.submitNotification(sampleNotification(i)));
  }
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.stats().notificationsFailed == 5; }));
  std::filesystem::create_directory(dir);
  BOOST_TEST_REQUIRE(waitUntil([&] { return writer.healthy(); }));
  for (std::int64_t i = 5; i < 8; ++i) {
    BOOST_TEST_REQUIRE(writer.submitNotification(sampleNotification(i)));
  }
  writer.stop();
  BOOST_TEST(writer.stats().notificationsWritten == 3u);
  const auto rows = EventStore(db).readNotifications();
  BOOST_REQUIRE(rows.size() == 3u);
  BOOST_TEST((rows.front() == sampleNotification(5)));
}

BOOST_AUTO_TEST_SUITE_END()
