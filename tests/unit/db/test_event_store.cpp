#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "db/event_store.hpp"
#include "db/migrations.hpp"
#include "db_test_support.hpp"

using namespace imapav::db;
using imapav::db::test::RawDb;
using imapav::db::test::sampleEvent;
using imapav::db::test::TempDir;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_store)

BOOST_FIXTURE_TEST_CASE(migrations_are_embedded_in_order, TempDir) {
  const auto& list = migrations();
  BOOST_REQUIRE(!list.empty());
  BOOST_TEST(std::string(list.front().name) == "0001_initial.sql");
  BOOST_TEST(list.front().sql.find("CREATE TABLE scan_events") != std::string_view::npos);
  BOOST_TEST(EventStore::latestVersion() == static_cast<int>(list.size()));
}

BOOST_FIXTURE_TEST_CASE(create_migrate_and_reopen, TempDir) {
  const auto db = file("events.db");
  {
    EventStore store(db);
    BOOST_TEST(store.schemaVersion() == EventStore::latestVersion());
    BOOST_TEST(store.count() == 0);
    store.insert({sampleEvent(1)});
  }
  BOOST_TEST(std::filesystem::exists(db));
  {
    EventStore again(db);  // nothing left to migrate: must not fail or re-run 0001
    BOOST_TEST(again.schemaVersion() == EventStore::latestVersion());
    BOOST_TEST(again.count() == 1);
  }
  RawDb raw(db);
  BOOST_TEST(raw.text("PRAGMA journal_mode") == "wal");
  BOOST_TEST(raw.text("PRAGMA user_version") == std::to_string(EventStore::latestVersion()));
  BOOST_TEST(raw.text("SELECT count(*) FROM scan_events_readable") == "1");
  // 0001's indexes (later migrations add more).
  BOOST_TEST(raw.text("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ("
                      "'scan_events_time','scan_events_verdict_time','scan_events_user_time','scan_events_sender_time','scan_events_gateway_time','scan_events_sha256','scan_events_message_id')") == "7");
}

BOOST_FIXTURE_TEST_CASE(concurrent_first_open_migrates_once, TempDir) {
  const auto db = file("events.db");
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      EventStore store(db);
      store.insert({sampleEvent(i)});
      ++opened;
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(opened.load() == 4);
  EventStore store(db);
  BOOST_TEST(store.count() == 4);
  BOOST_TEST(store.schemaVersion() == EventStore::latestVersion());
}

BOOST_FIXTURE_TEST_CASE(newer_schema_is_refused, TempDir) {
  const auto db = file("events.db");
  { EventStore store(db); }
  const int newer = EventStore::latestVersion() + 1;
  RawDb(db).exec("PRAGMA user_version = " + std::to_string(newer));

  const auto clearMessage = [&](const EventStoreError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    return contains(what, db) && contains(what, "newer") &&
           contains(what, "schema version " + std::to_string(newer));
  };
  BOOST_CHECK_EXCEPTION(EventStore{db}, EventStoreError, clearMessage);
  BOOST_CHECK_EXCEPTION(EventStore::openReadOnly(db), EventStoreError, clearMessage);
  BOOST_TEST(RawDb(db).text("PRAGMA user_version") == std::to_string(newer));  // untouched
}

BOOST_FIXTURE_TEST_CASE(text_file_is_not_a_database, TempDir) {
  const auto db = file("notes.txt");
  std::ofstream(db) << "these are my notes, not a database\n";
  BOOST_CHECK_EXCEPTION(EventStore{db}, EventStoreError, [&](const EventStoreError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return e.sqliteCode() == SQLITE_NOTADB && contains(e.what(), db) &&
           contains(e.what(), "not a database");
  });
  // (std::istreambuf_iterator trips GCC 12's -Wnull-dereference; getline does not.)
  std::ifstream in(db);
  std::string line;
  BOOST_TEST(static_cast<bool>(std::getline(in, line)));
  BOOST_TEST(line == "these are my notes, not a database");
  BOOST_TEST(!std::getline(in, line));
}

BOOST_FIXTURE_TEST_CASE(missing_directory_cannot_be_opened, TempDir) {
  const auto db = file("missing/events.db");
  BOOST_CHECK_EXCEPTION(EventStore{db}, EventStoreError, [&](const EventStoreError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return e.sqliteCode() == SQLITE_CANTOPEN && contains(e.what(), db);
  });
  BOOST_TEST(!std::filesystem::exists(path / "missing"));
}

BOOST_FIXTURE_TEST_CASE(every_field_reads_back, TempDir) {
  ScanEvent full;
  full.timeUs = 1700000000123456;
  full.gateway = "2001:db8::1";
  full.service = "avscan";
  full.method = "REQMOD";
  full.clientIp = "198.51.100.7";
  full.user = "jörg@example.org";
  full.imapUrl = "imap://j%C3%B6rg@mail.example/Archiv%202023;UIDVALIDITY=4294967295/;UID=42";
  full.mailbox = "Archiv 2023";
  full.uidValidity = 4294967295;
  full.uid = 42;
  full.messageId = "<abc'def\"@example.org>";
  full.sender = "\"O'Brien, Pat\" <pat@example.org>";
  full.recipients = "a@example.net,b@example.net";
  full.subject = "Grüße — 日本語 🙂 'single' \"double\"; DROP TABLE scan_events; --";
  full.size = 123456789012;
  full.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  full.verdict = "infected";
  full.threats = "Eicar-Test-Signature,Other.Thing.UNOFFICIAL";
  full.action = "replace";
  full.errorClass = "timeout";
  full.scanTimeUs = 98765;
  full.engineVersion = "1.4.6";
  full.signatureVersion = "27500";
  full.cached = true;

  ScanEvent sparse;  // what an event from a client that sent nothing optional looks like
  sparse.timeUs = 5;
  sparse.verdict = "error";

  ScanEvent embeddedNul = sampleEvent(3);
  embeddedNul.subject = std::string("a\0b", 3);  // text is bound by length, not by strlen

  const auto db = file("events.db");
  EventStore store(db);
  store.insert({full, sparse, embeddedNul});
  const auto rows = store.readAll();
  BOOST_REQUIRE(rows.size() == 3);
  BOOST_TEST((rows[0] == full));
  BOOST_TEST((rows[1] == sparse));
  BOOST_TEST(!rows[1].uid.has_value());
  BOOST_TEST(!rows[1].uidValidity.has_value());
  BOOST_TEST(rows[2].subject.size() == 3);

  RawDb raw(db);
  BOOST_TEST(raw.text("SELECT time_iso FROM scan_events WHERE id = 1") ==
             "2023-11-14T22:13:20.123456Z");
  BOOST_TEST(raw.text("SELECT time_iso FROM scan_events WHERE id = 2") ==
             "1970-01-01T00:00:00.000005Z");
  BOOST_TEST(raw.text("SELECT uid FROM scan_events WHERE id = 2") == "<null>");
  BOOST_TEST(raw.text("SELECT user FROM scan_events WHERE id = 2") == "");
  BOOST_TEST(raw.text("SELECT count(*) FROM scan_events WHERE subject LIKE 'Grüße%'") == "1");
  BOOST_TEST(raw.text("SELECT scan_ms FROM scan_events_readable WHERE id = 1") == "98");
}

BOOST_FIXTURE_TEST_CASE(batch_of_ten_thousand, TempDir) {
  std::vector<ScanEvent> batch;
  for (std::int64_t i = 0; i < 10000; ++i) batch.push_back(sampleEvent(i));
  EventStore store(file("events.db"));
  store.insert(batch);
  store.insert({});  // an empty batch is a no-op, not an empty transaction error
  BOOST_TEST(store.count() == 10000);
  const auto rows = store.readAll();
  BOOST_REQUIRE(rows.size() == 10000u);
  BOOST_TEST((rows.front() == batch.front()));
  BOOST_TEST((rows[4321] == batch[4321]));
  BOOST_TEST((rows.back() == batch.back()));
}

BOOST_FIXTURE_TEST_CASE(locked_database_fails_the_whole_batch, TempDir) {
  const auto db = file("events.db");
  EventStore store(db, std::chrono::milliseconds(50));
  RawDb other(db);
  other.exec("BEGIN IMMEDIATE");  // another writer holds the lock beyond our busy_timeout
  BOOST_CHECK_EXCEPTION(store.insert({sampleEvent(1), sampleEvent(2)}), EventStoreError,
                        [](const EventStoreError& e) {
                          BOOST_TEST_MESSAGE(e.what());
                          return e.sqliteCode() == SQLITE_BUSY;
                        });
  other.exec("ROLLBACK");
  BOOST_TEST(store.count() == 0);
  store.insert({sampleEvent(3)});  // the same connection works once the lock is gone
  BOOST_TEST(store.count() == 1);
}

BOOST_FIXTURE_TEST_CASE(read_only_store_reads_alongside_a_writer, TempDir) {
  const auto db = file("events.db");
  EventStore writer(db);
  writer.insert({sampleEvent(1), sampleEvent(2)});
  EventStore reader = EventStore::openReadOnly(db);
  BOOST_TEST(reader.count() == 2);
  BOOST_TEST(reader.schemaVersion() == EventStore::latestVersion());
  writer.insert({sampleEvent(3)});
  BOOST_TEST(reader.count() == 3);
  BOOST_CHECK_THROW(reader.insert({sampleEvent(4)}), EventStoreError);
  BOOST_TEST(writer.count() == 3);
}

BOOST_FIXTURE_TEST_CASE(read_only_refuses_missing_and_foreign_files, TempDir) {
  const auto missing = file("missing.db");
  BOOST_CHECK_THROW(EventStore::openReadOnly(missing), EventStoreError);
  BOOST_TEST(!std::filesystem::exists(missing));  // read-only never creates

  const auto empty = file("empty.db");
  std::ofstream{empty};
  BOOST_CHECK_EXCEPTION(
      EventStore::openReadOnly(empty), EventStoreError,
      [](const EventStoreError& e) { return contains(e.what(), "not an imapav event database"); });
}

BOOST_AUTO_TEST_SUITE_END()
