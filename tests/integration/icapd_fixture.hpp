#pragma once
// Starts the real imapav-icapd on a free port with a private configuration, signature
// directory and event log, and speaks raw ICAP to it.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/icap/response_parser.hpp"
#include "tests/support/process.hpp"

namespace imapav::test {

// A parsed ICAP response with its whole decoded body.
struct IcapResponse {
  icap::ResponseHead head;
  std::string body;
  const std::string* header(const std::string& name) const { return head.headers.find(name); }
};

// A blocking ICAP connection with timeouts (every call fails the test rather than hang).
class IcapConnection {
 public:
  explicit IcapConnection(std::uint16_t port);
  ~IcapConnection();
  IcapConnection(const IcapConnection&) = delete;
  IcapConnection& operator=(const IcapConnection&) = delete;
  bool send(const std::string& bytes);
  // Reads one response; nullopt on EOF, timeout or a parse error (error() says which).
  std::optional<IcapResponse> read(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // True when the server closed the connection (read returns 0) within the timeout.
  bool closedByPeer(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  std::string buffer_;
  icap::ResponseParser parser_;
  std::string error_;
};

// Builders for requests as a gateway sends them.
struct RespmodRequest {
  std::string service = "avscan";
  std::string message;
  std::string url = "imap://alice@mail.example/INBOX;UIDVALIDITY=7/;UID=42";
  bool allow204 = true;
  std::optional<std::size_t> preview;  // bytes of preview; the rest is sent by the caller after 100
  std::map<std::string, std::string> extraHeaders;
  bool connectionClose = false;
  std::string method = "RESPMOD";
};
// The head and, without preview, the whole chunked body; with preview, the head and the
// preview chunks (ending in "0; ieof" if the message fits in the preview).
std::string buildRequest(const RespmodRequest& r);
// The rest of the body after "100 Continue".
std::string buildRemainder(const RespmodRequest& r);

std::string cleanMessage(const std::string& subject = "Hello", std::size_t bodyBytes = 200);
std::string infectedMessage(const std::string& subject = "Invoice");  // EICAR in a base64 attachment
// A large clean message whose scan takes a noticeable time (random base64 text).
std::string bigMessage(std::size_t bytes, unsigned seed);

class IcapdFixture {
 public:
  // extra: configuration lines added to (and overriding) the defaults.
  explicit IcapdFixture(const std::map<std::string, std::string>& extra = {}, bool start = true);
  ~IcapdFixture();

  void start();
  int stop();  // SIGTERM; returns the exit status
  void kill();  // SIGKILL: a crash, nothing is finished
  void reload();  // SIGHUP: load the signatures again
  std::uint16_t port() const { return port_; }
  const TempDir& dir() const { return dir_; }
  std::string log() const;
  std::string signatureDir() const { return dir_.file("signatures"); }
  std::string database() const { return dir_.file("events.sqlite"); }
  std::string configFile() const { return dir_.file("icapd.conf"); }
  void writeConfig(const std::map<std::string, std::string>& extra);

  IcapResponse exchange(const RespmodRequest& r);  // one request on a fresh connection

  // Rows of a query on the event log (stop() first so the writer has flushed).
  std::vector<std::map<std::string, std::string>> query(const std::string& sql) const;

 private:
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace imapav::test
