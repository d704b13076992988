// imapav-log: query and summarise the imapav-icapd scan log. The I/O half: the command
// line, the clock, the database and stdout; everything else is in log_query, format, cli.

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tools/log/cli.hpp"
#include "tools/log/event_db.hpp"
#include "tools/log/format.hpp"
#include "tools/log/log_query.hpp"

using namespace imapav::logtool;

namespace {

// A batch of 10000 rows held the write lock for about a second on a 1M-row log (a dozen
// indexes to update); 2000 keeps each lock short, well inside the writer's busy timeout.
constexpr std::int64_t kPruneBatch = 2000;

volatile std::sig_atomic_t gStop = 0;

void onSignal(int /*sig*/) { gStop = 1; }

std::int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void write(const std::string& text) {
  if (!text.empty()) std::fwrite(text.data(), 1, text.size(), stdout);
}

// Waits up to us, in short slices so a signal ends the wait promptly.
void sleepUnlessStopped(std::int64_t us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (gStop == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                          until - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return;
    const std::int64_t slice = std::min<std::int64_t>(left, 100'000);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(slice / 1'000'000);
    ts.tv_nsec = static_cast<long>(slice % 1'000'000 * 1000);
    ::nanosleep(&ts, nullptr);  // EINTR is fine: the loop looks at gStop
  }
}

int runEvents(EventDb& db, const Options& o) {
  const Format format = o.format.value_or(Format::kTable);
  const Query q = eventsQuery(o.filters, nowUs(), o.limit, db.schema());
  if (format == Format::kTable) {
    std::vector<std::vector<std::string>> cells;
    db.forEach(q, [&cells](const Row& r) { cells.push_back(eventTableCells(r)); });
    write(renderEventCells(cells));
    return 0;
  }
  if (format == Format::kCsv) write(csvRecord(eventColumns()));
  // Row by row through stdio's buffer: a day of events need not sit in memory.
  db.forEach(q, [format](const Row& r) {
    write(format == Format::kJson ? jsonObject(eventColumns(), r) + "\n" : csvRecord(rowTexts(r)));
  });
  return 0;
}

int runShow(EventDb& db, const Options& o) {
  const auto rows = db.rows(showQuery(o.id));
  if (rows.empty()) {
    std::cerr << "imapav-log: no scan event with id " << o.id << "\n";
    return 1;
  }
  const Format format = o.format.value_or(Format::kTable);
  write(format == Format::kTable ? renderRecord(rows.front()) : renderEvents(rows, format));
  return 0;
}

int runStats(EventDb& db, const Options& o) {
  const std::int64_t now = nowUs();
  StatsRange r;
  r.untilUs = o.filters.until ? resolveTime(*o.filters.until, now) : now;
  r.sinceUs = o.filters.since ? resolveTime(*o.filters.since, now) : r.untilUs - 86400 * kUsPerSecond;
  if (r.sinceUs > r.untilUs) {
    std::cerr << "imapav-log: --since is after --until\n";
    return 2;
  }
  r.bucket = o.by.value_or(r.untilUs - r.sinceUs <= 2 * 86400 * kUsPerSecond ? Bucket::kHour
                                                                              : Bucket::kDay);
  r.top = o.top;
  const StatsCounts counts = countStats(db, r);
  const auto lists = [&db](const Query& q) {
    std::vector<ListCount> out;
    db.forEach(q, [&out](const Row& row) { out.push_back(ListCount{valueText(row[0]), row[1].integer}); });
    return out;
  };
  const auto rows = summarize(r, counts.cube, counts.versions, lists(statsThreatsQuery(r)),
                              lists(statsRecipientsQuery(r)));
  write(renderStats(r, rows, o.format.value_or(Format::kTable)));
  return 0;
}

int runFollow(EventDb& db, const Options& o) {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a signal cuts the sleep short
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const Format format = o.format.value_or(Format::kTable);
  const Query maxId{"SELECT coalesce(max(id), 0) FROM scan_events", {}};
  std::int64_t last = db.scalar(maxId);
  const std::int64_t now = nowUs();
  if (format == Format::kTable) write(followTableHeader());
  if (format == Format::kCsv) write(csvRecord(eventColumns()));
  std::fflush(stdout);
  while (gStop == 0) {
    sleepUnlessStopped(o.intervalUs);
    if (gStop != 0) break;
    // Bounded by a max(id) read first, so rows that do not match are never read twice.
    const std::int64_t upTo = db.scalar(maxId);
    if (upTo <= last) continue;
    std::string out;
    db.forEach(followQuery(o.filters, now, last, upTo, db.schema()), [&](const Row& r) {
      out += format == Format::kTable ? renderFixedRow(eventTableCells(r))
                                      : renderEvents({r}, format, false);
    });
    last = upTo;
    write(out);
    std::fflush(stdout);
  }
  return 0;
}

int runPrune(EventDb& db, const Options& o) {
  const std::int64_t cutoff = nowUs() - o.olderThanUs;
  const bool hasNotifications = db.hasTable("notifications");
  std::int64_t scans = 0;
  std::int64_t notes = 0;
  const auto count = [&db, cutoff](const char* table) {
    return db.scalar(Query{std::string("SELECT count(*) FROM ") + table + " WHERE time_us < ?", {cutoff}});
  };
  // One short transaction per batch (autocommit) so the server's writer waits at most one
  // batch for the lock (busy timeout), never the whole prune.
  const auto prune = [&db, cutoff](const char* table) {
    const std::string t = table;
    const Query del{"DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t +
                        " WHERE time_us < ? LIMIT ?)",
                    {cutoff, kPruneBatch}};
    std::int64_t total = 0;
    for (std::int64_t n = 1; n > 0 && gStop == 0;) {
      n = db.execute(del);
      total += n;
    }
    return total;
  };
  if (o.dryRun) {
    scans = count("scan_events");
    notes = hasNotifications ? count("notifications") : 0;
  } else {
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    scans = prune("scan_events");
    notes = hasNotifications ? prune("notifications") : 0;
  }
  std::cout << (o.dryRun ? "would prune " : "pruned ") << scans << " scan events and " << notes
            << " notifications older than " << formatUtc(cutoff) << "\n";
  if (gStop != 0) {
    std::cerr << "imapav-log: interrupted; older rows remain\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* env = std::getenv("IMAPAV_LOG_DB");
  const std::string defaultDb = env != nullptr && *env != '\0' ? env : kDefaultDatabase;
  auto parsed = parseArgs(args, defaultDb);
  if (!parsed) {
    std::cerr << "imapav-log: " << parsed.error().text << "\n"
              << "Try 'imapav-log --help'.\n";
    return 2;
  }
  const Options& o = parsed.value();
  if (o.help) {
    std::cout << helpText(o.command);
    return 0;
  }
  try {
    const auto mode = *o.command == Command::kPrune && !o.dryRun ? EventDb::Mode::kReadWrite
                                                                  : EventDb::Mode::kReadOnly;
    EventDb db(o.db, mode);
    int rc = 0;
    switch (*o.command) {
      case Command::kEvents: rc = runEvents(db, o); break;
      case Command::kShow: rc = runShow(db, o); break;
      case Command::kStats: rc = runStats(db, o); break;
      case Command::kFollow: rc = runFollow(db, o); break;
      case Command::kPrune: rc = runPrune(db, o); break;
    }
    std::fflush(stdout);
    if (std::ferror(stdout) != 0) {
      std::cerr << "imapav-log: cannot write the output\n";
      return 1;
    }
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "imapav-log: " << e.what() << "\n";
    return 1;
  }
}
