#include "shared/icap/request_parser.hpp"

#include <algorithm>
#include <charconv>

#include "shared/icap/wire.hpp"

namespace imapav::icap {

namespace {

constexpr std::size_t kMaxPreviewDigits = 15;

Method methodOf(std::string_view m) {
  if (m == "OPTIONS") return Method::Options;
  if (m == "REQMOD") return Method::Reqmod;
  if (m == "RESPMOD") return Method::Respmod;
  return Method::Other;
}

// The service name from "icap://host:port/service?query" or "/service?query".
std::optional<std::string> serviceOf(std::string_view uri) {
  std::string_view path;
  for (const std::string_view scheme : {"icap://", "icaps://"}) {
    if (uri.size() >= scheme.size() && iequals(uri.substr(0, scheme.size()), scheme)) {
      const auto rest = uri.substr(scheme.size());
      const auto slash = rest.find_first_of("/?#");
      path = slash == std::string_view::npos || rest[slash] != '/' ? "/" : rest.substr(slash);
      break;
    }
  }
  if (path.empty()) {
    if (!uri.starts_with('/')) return std::nullopt;
    path = uri;
  }
  path = path.substr(1, path.find_first_of("?#") - 1);
  return std::string(path);
}

}  // namespace

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {}

RequestParser::Step RequestParser::fail(int status, std::string text, std::size_t consumed) {
  state_ = State::Failed;
  errorStatus_ = status;
  errorText_ = std::move(text);
  return {consumed, Event::Error};
}

void RequestParser::startRequest() {
  head_ = RequestHead{};
  block_.clear();
  headerBytesSeen_ = 0;
  encapNeeded_ = 0;
  chunkLeft_ = 0;
  inPreview_ = false;
  lastChunkIeof_ = false;
  sawCr_ = false;
  ieof_ = false;
  bodyBytes_ = 0;
}

bool RequestParser::parseRequestLine(std::string_view line) {
  const auto first = line.find(' ');
  const auto last = line.rfind(' ');
  if (first == std::string_view::npos || first == 0 || last <= first + 1) {
    return reject(400, "malformed request line");
  }
  head_.methodText = std::string(line.substr(0, first));
  head_.method = methodOf(head_.methodText);
  head_.uri = std::string(line.substr(first + 1, last - first - 1));
  head_.version = std::string(line.substr(last + 1));
  if (!wire::isIcapVersion(head_.version)) return reject(400, "malformed request line");
  if (head_.version != "ICAP/1.0") return reject(505, "unsupported ICAP version");
  auto service = serviceOf(head_.uri);
  if (!service || head_.uri.find(' ') != std::string::npos) return reject(400, "malformed URI");
  head_.service = std::move(*service);
  return true;
}

bool RequestParser::reject(int status, const char* text) {
  errorStatus_ = status;
  errorText_ = text;
  return false;
}

bool RequestParser::finishHeaderBlock() {
  if (!parseHeaderLines(block_, head_.headers)) return reject(400, "malformed ICAP header");
  block_.clear();
  if (const auto* value = head_.headers.find("Encapsulated")) {
    auto e = parseEncapsulated(*value);
    if (!e) return reject(400, "invalid Encapsulated header");
    head_.encapsulated = *e;
  } else if (head_.method == Method::Reqmod || head_.method == Method::Respmod) {
    return reject(400, "missing Encapsulated header");
  } else {
    head_.encapsulated.nullBody = 0;  // OPTIONS (or an unknown method to answer 501)
  }
  if (const auto* value = head_.headers.find("Preview")) {
    if (value->empty() || value->size() > kMaxPreviewDigits ||
        !std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return reject(400, "invalid Preview header");
    }
    std::size_t preview = 0;
    std::from_chars(value->data(), value->data() + value->size(), preview);
    head_.preview = preview;
  }
  head_.allow204 = head_.headers.listHas("Allow", "204");
  head_.connectionClose = head_.headers.listHas("Connection", "close");
  encapNeeded_ = head_.encapsulated.headerBytes();
  if (encapNeeded_ > limits_.maxEncapsulatedBytes) {
    return reject(413, "encapsulated headers too large");
  }
  block_.reserve(encapNeeded_);
  return true;
}

bool RequestParser::finishEncapsulated() {
  if (!wire::splitHeads(head_.encapsulated, block_, head_.reqHdr, head_.resHdr)) {
    return reject(400, "encapsulated head does not match its offsets");
  }
  block_.clear();
  return true;
}

RequestParser::Step RequestParser::feed(std::string_view data) {
  body_ = {};
  std::size_t pos = 0;
  std::string_view line;
  const auto takeLine = [&] { return wire::takeLine(data, pos, line_, limits_.maxLineBytes, line); };
  for (;;) {
    switch (state_) {
      case State::RequestLine: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail(400, "request line too long", pos);
        if (line.empty()) break;  // stray CRLF between requests
        startRequest();
        if (!parseRequestLine(line)) return fail(errorStatus_, errorText_, pos);
        state_ = State::HeaderLines;
        break;
      }
      case State::HeaderLines: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail(400, "ICAP header line too long", pos);
        if (line.empty()) {
          if (!finishHeaderBlock()) return fail(errorStatus_, errorText_, pos);
          state_ = State::EncapHeaders;
          break;
        }
        headerBytesSeen_ += line.size() + 2;
        if (headerBytesSeen_ > limits_.maxHeaderBytes) return fail(413, "ICAP header too large", pos);
        block_.append(line).append("\r\n");
        break;
      }
      case State::EncapHeaders: {
        const auto n = std::min(encapNeeded_ - block_.size(), data.size() - pos);
        block_.append(data.substr(pos, n));
        pos += n;
        if (block_.size() < encapNeeded_) return {pos, Event::NeedMore};
        if (!finishEncapsulated()) return fail(errorStatus_, errorText_, pos);
        const bool hasBody = head_.encapsulated.hasBody();
        inPreview_ = hasBody && head_.preview.has_value();
        state_ = hasBody ? State::ChunkSize : State::HeadDone;
        return {pos, Event::Head};
      }
      case State::HeadDone:
        state_ = State::RequestLine;
        return {pos, Event::Complete};
      case State::ChunkSize: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail(400, "chunk-size line too long", pos);
        const auto chunk = wire::parseChunkSize(line);
        if (!chunk) return fail(400, "invalid chunk size", pos);
        chunkLeft_ = chunk->size;
        lastChunkIeof_ = chunk->ieof;
        state_ = chunkLeft_ == 0 ? State::Trailer : State::ChunkData;
        break;
      }
      case State::ChunkData: {
        const auto n = std::min(chunkLeft_, data.size() - pos);
        if (n == 0) return {pos, Event::NeedMore};
        body_ = data.substr(pos, n);
        pos += n;
        chunkLeft_ -= n;
        bodyBytes_ += n;
        if (chunkLeft_ == 0) state_ = State::ChunkDataEnd;
        return {pos, Event::Body};
      }
      case State::ChunkDataEnd: {
        const auto took = wire::takeChunkEnd(data, pos, sawCr_);
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail(400, "chunk data not followed by CRLF", pos);
        state_ = State::ChunkSize;
        break;
      }
      case State::Trailer: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail(400, "trailer line too long", pos);
        if (!line.empty()) break;  // trailer fields carry nothing we use
        if (inPreview_) {
          inPreview_ = false;
          if (!lastChunkIeof_) {
            state_ = State::AwaitContinue;
            return {pos, Event::PreviewEnd};
          }
          ieof_ = true;
        }
        state_ = State::RequestLine;
        return {pos, Event::Complete};
      }
      case State::AwaitContinue:
        return {pos, Event::NeedMore};
      case State::Failed:
        return {pos, Event::Error};
    }
  }
}

void RequestParser::continueAfterPreview() {
  if (state_ == State::AwaitContinue) state_ = State::ChunkSize;
}

void RequestParser::reset() {
  state_ = State::RequestLine;
  line_.clear();
  block_.clear();
  chunkLeft_ = 0;
  inPreview_ = false;
  sawCr_ = false;
  body_ = {};
  errorStatus_ = 0;
  errorText_.clear();
}

}  // namespace imapav::icap
