#include "tools/log/cli.hpp"

#include <array>
#include <limits>

namespace imapav::logtool {

namespace {

Error usageError(std::string text) { return Error{2, std::move(text)}; }

// Which commands accept an option, as a bit per Command.
constexpr unsigned bit(Command c) { return 1u << static_cast<unsigned>(c); }
constexpr unsigned kFilterCommands = bit(Command::kEvents) | bit(Command::kFollow);
constexpr unsigned kTimeCommands = kFilterCommands | bit(Command::kStats);
constexpr unsigned kFormatCommands =
    bit(Command::kEvents) | bit(Command::kShow) | bit(Command::kStats) | bit(Command::kFollow);

struct OptionSpec {
  const char* name;
  bool takesValue;
  unsigned commands;
};
constexpr std::array kOptions = {
    OptionSpec{"since", true, kTimeCommands},
    OptionSpec{"until", true, kTimeCommands},
    OptionSpec{"verdict", true, kFilterCommands},
    OptionSpec{"action", true, kFilterCommands},
    OptionSpec{"threat", true, kFilterCommands},
    OptionSpec{"user", true, kFilterCommands},
    OptionSpec{"sender", true, kFilterCommands},
    OptionSpec{"recipient", true, kFilterCommands},
    OptionSpec{"gateway", true, kFilterCommands},
    OptionSpec{"mailbox", true, kFilterCommands},
    OptionSpec{"message-id", true, kFilterCommands},
    OptionSpec{"error-class", true, kFilterCommands},
    OptionSpec{"cached", true, kFilterCommands},
    OptionSpec{"signature-version", true, kFilterCommands},
    OptionSpec{"limit", true, bit(Command::kEvents)},
    OptionSpec{"format", true, kFormatCommands},
    OptionSpec{"by", true, bit(Command::kStats)},
    OptionSpec{"top", true, bit(Command::kStats)},
    OptionSpec{"interval", true, bit(Command::kFollow)},
    OptionSpec{"older-than", true, bit(Command::kPrune)},
    OptionSpec{"dry-run", false, bit(Command::kPrune)},
};

const OptionSpec* findOption(std::string_view name) {
  for (const auto& o : kOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

constexpr std::array<std::pair<const char*, Command>, 5> kCommands = {{
    {"events", Command::kEvents},
    {"show", Command::kShow},
    {"stats", Command::kStats},
    {"follow", Command::kFollow},
    {"prune", Command::kPrune},
}};

const char* commandName(Command c) {
  for (const auto& [name, cmd] : kCommands) {
    if (cmd == c) return name;
  }
  return "?";
}

// A decimal integer in [min, max].
std::optional<std::int64_t> parseInteger(std::string_view text, std::int64_t min, std::int64_t max) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return std::nullopt;
  return v;
}

struct Pending {
  const OptionSpec* spec;
  std::string value;
};

// Applies one option whose command is known to accept it.
std::optional<Error> apply(Options& o, const OptionSpec& spec, const std::string& value) {
  const std::string name = spec.name;
  const auto bad = [&](const std::string& why) {
    return usageError("bad value for --" + name + ": '" + value + "'" + (why.empty() ? "" : ": " + why));
  };
  Filters& f = o.filters;
  if (name == "since" || name == "until") {
    auto t = parseTime(value);
    if (!t) return usageError("--" + name + ": " + t.error().text);
    (name == "since" ? f.since : f.until) = t.value();
  } else if (name == "verdict") {
    if (value != "clean" && value != "infected" && value != "error") {
      return bad("expected clean, infected or error");
    }
    f.verdict = value;
  } else if (name == "action") {
    f.action = value;
  } else if (name == "threat") {
    if (value.empty()) return bad("empty pattern");
    f.threat = value;
  } else if (name == "user") {
    f.user = value;
  } else if (name == "sender") {
    f.sender = value;
  } else if (name == "recipient") {
    f.recipient = value;
  } else if (name == "gateway") {
    f.gateway = value;
  } else if (name == "mailbox") {
    f.mailbox = value;
  } else if (name == "message-id") {
    f.messageId = value;
  } else if (name == "error-class") {
    f.errorClass = value;
  } else if (name == "cached") {
    if (value != "yes" && value != "no") return bad("expected yes or no");
    f.cached = value == "yes";
  } else if (name == "signature-version") {
    f.signatureVersion = value;
  } else if (name == "limit") {
    const auto n = parseInteger(value, 0, std::numeric_limits<std::int64_t>::max());
    if (!n) return bad("expected a number, 0 for all");
    o.limit = *n;
  } else if (name == "format") {
    if (value == "table") o.format = Format::kTable;
    else if (value == "json") o.format = Format::kJson;
    else if (value == "csv") o.format = Format::kCsv;
    else return bad("expected table, json or csv");
  } else if (name == "by") {
    if (value == "hour") o.by = Bucket::kHour;
    else if (value == "day") o.by = Bucket::kDay;
    else return bad("expected hour or day");
  } else if (name == "top") {
    const auto n = parseInteger(value, 1, 1'000'000);
    if (!n) return bad("expected a positive number");
    o.top = *n;
  } else if (name == "interval") {
    auto d = parseDurationUs(value, true);
    if (!d) return usageError("--interval: " + d.error().text);
    if (d.value() <= 0) return bad("must be more than 0");
    o.intervalUs = d.value();
  } else if (name == "older-than") {
    auto d = parseDurationUs(value);
    if (!d) return usageError("--older-than takes an age like 30d or 12h: " + d.error().text);
    o.olderThanUs = d.value();
  } else if (name == "dry-run") {
    o.dryRun = true;
  }
  return std::nullopt;
}

constexpr const char* kMainHelp =
    "Usage: imapav-log [--db PATH] COMMAND [options]\n"
    "Query and summarise the imapav-icapd scan log (SQLite). Only prune writes.\n"
    "\n"
    "Commands:\n"
    "  events   list scan events, newest first\n"
    "  show ID  one event, every field\n"
    "  stats    counts by verdict, action, threat, recipient, gateway, signature\n"
    "           version and time; the share answered from the verdict cache\n"
    "  follow   print new events as they are written, until SIGINT/SIGTERM\n"
    "  prune    delete events (and notifications) older than an age\n"
    "\n"
    "Options:\n"
    "  --db PATH   the event database (default: $IMAPAV_LOG_DB, else\n"
    "              /var/lib/imapav/events.sqlite)\n"
    "  --help      this help; 'imapav-log COMMAND --help' for a command's\n"
    "\n"
    "Times (T): 2026-11-28, 2026-11-28T10:00, 2026-11-28 10:00:00 (local time, TZ),\n"
    "  2026-11-28T10:00:00Z (UTC), or relative: 45s, 30m, 2h, 7d ago.\n"
    "  Ranges are half-open: --since T includes T, --until T excludes it.\n"
    "Output: --format table (the default, also when stdout is not a terminal; times in\n"
    "  UTC, long cells cut short), json (one object per line, every column) or csv\n"
    "  (header row, RFC 4180 quoting, LF line ends).\n"
    "Exit status: 0 success (also no rows), 1 runtime error (missing or unreadable\n"
    "  database, not an imapav database, newer schema), 2 usage error.\n";

constexpr const char* kFilterHelp =
    "Filters (all must match):\n"
    "  --since T, --until T        time range\n"
    "  --verdict clean|infected|error\n"
    "  --action A                  e.g. pass, replace, pass-unscanned\n"
    "  --threat GLOB               a threat name matches (SQLite GLOB, case-sensitive),\n"
    "                              e.g. 'Eicar*'\n"
    "  --user U, --sender S, --gateway G, --mailbox M, --message-id ID, --error-class C\n"
    "                              exact match\n"
    "  --recipient R               one of the recipients is R (ASCII case-insensitive)\n"
    "  --cached yes|no             answered from the verdict cache (yes) or scanned (no)\n"
    "  --signature-version V       answered with these signatures (exact; the versions\n"
    "                              are listed by stats)\n";

}  // namespace

std::string helpText(std::optional<Command> command) {
  if (!command) return kMainHelp;
  switch (*command) {
    case Command::kEvents:
      return std::string(
                 "Usage: imapav-log [--db PATH] events [filters] [--limit N] "
                 "[--format table|json|csv]\n"
                 "Scan events, newest first. --limit N (default 50, 0 = all). In the table,\n"
                 "CACHED is yes for an answer from the verdict cache (no scan).\n\n") +
             kFilterHelp;
    case Command::kShow:
      return "Usage: imapav-log [--db PATH] show ID [--format table|json|csv]\n"
             "One event with every field.\n";
    case Command::kStats:
      return "Usage: imapav-log [--db PATH] stats [--since T] [--until T] [--by hour|day] "
             "[--top N] [--format table|json|csv]\n"
             "Counts over the range (default: the last 24 hours): the total and how many were\n"
             "answered from the verdict cache, by verdict, by action, top threats, top\n"
             "recipients of infected mail, passed unscanned by reason, per gateway (total,\n"
             "infected, errors), per signature version (total, cached, infected, errors, first\n"
             "and last seen, in order of first seen: when a reload took effect), per hour or\n"
             "day (default: hour for ranges up to 2 days, else day). --top N (default 10) for\n"
             "threats and recipients.\n"
             "JSON: one object per line, {\"section\":..., \"key\":..., \"count\":...} (gateway\n"
             "and time rows add \"infected\" and \"errors\"; total adds \"cached\";\n"
             "signature_version rows add all of these and \"first_seen\", \"last_seen\"); the\n"
             "first is the range.\n"
             "CSV: section,key,count,infected,errors,cached,first_seen,last_seen.\n";
    case Command::kFollow:
      return std::string(
                 "Usage: imapav-log [--db PATH] follow [filters] [--interval DURATION] "
                 "[--format table|json|csv]\n"
                 "Prints events written after it started, polling every --interval "
                 "(default 1s;\n500ms, 2s, 1m ...), until SIGINT or SIGTERM. Read-only.\n\n") +
             kFilterHelp;
    case Command::kPrune:
      return "Usage: imapav-log [--db PATH] prune --older-than AGE [--dry-run]\n"
             "Deletes scan events and notifications older than AGE (30d, 12h ...), in\n"
             "batches of 2000 rows, each its own short transaction, so the server keeps\n"
             "writing. --dry-run only counts. The file does not shrink (no VACUUM).\n";
  }
  return kMainHelp;
}

Result<Options> parseArgs(const std::vector<std::string>& args, const std::string& defaultDb) {
  Options o;
  o.db = defaultDb;
  std::vector<std::string> positional;
  std::vector<Pending> pending;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      if (arg.size() > 1 && arg[0] == '-') return usageError("unknown option '" + arg + "'");
      positional.push_back(arg);
      continue;
    }
    const auto eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    const OptionSpec* spec = findOption(name);
    const bool isDb = name == "db";
    if (spec == nullptr && !isDb) return usageError("unknown option '--" + name + "'");
    const bool takesValue = isDb || spec->takesValue;
    if (takesValue && !value) {
      if (i + 1 >= args.size()) return usageError("option --" + name + " needs a value");
      value = args[++i];
    }
    if (!takesValue && value) return usageError("option --" + name + " takes no value");
    if (isDb) {
      if (value->empty()) return usageError("--db needs a path");
      o.db = *value;
    } else {
      pending.push_back(Pending{spec, value.value_or("")});
    }
  }

  if (positional.empty()) {
    if (o.help) return o;
    return usageError("no command given (events, show, stats, follow, prune)");
  }
  for (const auto& [name, cmd] : kCommands) {
    if (positional[0] == name) o.command = cmd;
  }
  if (!o.command) return usageError("unknown command '" + positional[0] + "'");
  if (o.help) return o;

  const std::size_t wanted = *o.command == Command::kShow ? 2 : 1;
  if (positional.size() < wanted) return usageError("show needs an event ID");
  if (positional.size() > wanted) {
    return usageError("unexpected argument '" + positional[wanted] + "'");
  }
  if (*o.command == Command::kShow) {
    const auto id = parseInteger(positional[1], 1, std::numeric_limits<std::int64_t>::max());
    if (!id) return usageError("bad event ID '" + positional[1] + "': expected a positive number");
    o.id = *id;
  }
  for (const auto& p : pending) {
    if ((p.spec->commands & bit(*o.command)) == 0) {
      return usageError(std::string("option --") + p.spec->name + " does not apply to " +
                        commandName(*o.command));
    }
    if (auto err = apply(o, *p.spec, p.value)) return *err;
  }
  if (*o.command == Command::kPrune) {
    bool hasAge = false;
    for (const auto& p : pending) hasAge = hasAge || std::string_view(p.spec->name) == "older-than";
    if (!hasAge) return usageError("prune needs --older-than AGE");
  }
  return o;
}

}  // namespace imapav::logtool
