#pragma once
// One client's IMAP session: the client connection, the upstream connection, and the
// relay between them. Commands go upstream unchanged (but for what the proxy must answer
// itself); responses come back unchanged, except that capabilities the proxy cannot
// inspect are removed and a FETCH response carrying a whole message is held until the
// message has been scanned, then sent with the original or the rewritten message and
// corrected sizes. Runs on the reactor thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "redirector/config.hpp"
#include "redirector/message_scanner.hpp"
#include "redirector/metrics.hpp"
#include "redirector/reactor.hpp"
#include "redirector/tls.hpp"
#include "shared/imap/fetch_response.hpp"
#include "shared/imap/framing.hpp"

namespace imapav::redirector {

class SessionHost;  // the server: owns sessions, scanner, pool

struct SessionStats {
  std::uint64_t bytesFromClient = 0, bytesToClient = 0;
  unsigned scanned = 0, clean = 0, replaced = 0, unscanned = 0, failed = 0, unscannedPartial = 0,
           unscannedTooLarge = 0, unscannedSection = 0, unscannedUpload = 0;
  unsigned spilled = 0;  // messages held in a temporary file rather than memory
  unsigned withheld = 0;  // infected messages not delivered (protocol-only notice)
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // implicitTls: the client connected to the imaps listener (RFC 8314).
  Session(SessionHost& host, int clientFd, std::string clientAddress, bool implicitTls);
  ~Session();

  void start();  // connects upstream
  void tick(std::chrono::steady_clock::time_point now);
  void close(const std::string& why);
  // The server is stopping: finish what is being delivered, say BYE, close.
  void drain();
  bool closed() const { return closed_; }
  const SessionStats& stats() const { return stats_; }

 private:
  void serverGone(const std::string& why);
  struct Endpoint final : IoHandler {
    Session* session = nullptr;
    bool isClient = false;
    int fd = -1;
    std::string in;    // received, not yet framed
    std::string out;   // to send
    bool readPaused = false;
    bool eof = false;
    // TLS on this connection: off, handshaking, or on.
    enum class Tls { Off, Handshaking, On } tls = Tls::Off;
    std::unique_ptr<TlsConnection> tlsConnection;
    bool tlsWantsWrite = false;       // the TLS layer waits for EPOLLOUT (handshake or a read)
    bool startTlsWhenFlushed = false;  // client STARTTLS: the handshake begins once "OK" is out
    void onIo(std::uint32_t events) override;
  };

  // The upstream connection's way to a clear-text IMAP stream the proxy can read.
  enum class Upstream {
    Connecting,    // TCP connect in progress
    Handshaking,   // TLS handshake (implicit TLS, or after STARTTLS)
    Greeting,      // upstream.security = starttls: relaying the greeting, then STARTTLS
    StartTlsSent,  // waiting for the server's OK to our STARTTLS
    Ready          // relaying
  };

  // A piece of a held FETCH response.
  struct Piece {
    enum class Kind { Segment, Bytes, Captured } kind = Kind::Bytes;
    std::string bytes;
    std::size_t segment = 0;  // index of the segment in the response (Kind::Segment)
    std::shared_ptr<const MessageBuffer> body;  // Captured, once delivered: the message to send
  };

  void onIo(Endpoint& ep, std::uint32_t events);
  void onConnected();
  void startTls(Endpoint& ep);
  void continueHandshake(Endpoint& ep);
  void onTlsUp(Endpoint& ep);
  bool readFrom(Endpoint& ep);
  void flush(Endpoint& ep);
  void updateInterest(Endpoint& ep);
  void processClient();
  void processUpstream();
  void awaitStartTlsOk();
  // Returns false when the proxy answered the command itself and it must not go upstream.
  bool inspectCommand(std::string_view segment);
  void inspectResponse(std::string_view segment);
  // A tagged FETCH completion after withheld messages: OK becomes NO [ALERT].
  std::string completeFetch(std::string segment);
  void sendToClient(std::string_view bytes, bool endsMessage);
  void flushHeld();
  void startCapture(std::uint64_t size, const std::string& item);
  void onScanDone(ScanReply reply);
  void deliver(ScanReply reply);
  void withhold(const ScanReply& reply);
  void queueDelivery(ScanReply reply);
  void deliverMore();
  void byeIfIdle();
  bool readyForBye() const;
  std::string imapUrl() const;

  SessionHost& host_;
  const Config& config_;
  Endpoint client_, upstream_;
  std::string clientAddress_;
  bool connected_ = false;
  bool draining_ = false;
  unsigned outstanding_ = 0;  // commands sent upstream without their tagged answer yet
  bool idling_ = false;       // the client is in IDLE (waiting for DONE)
  bool implicitTls_ = false;
  Upstream phase_ = Upstream::Connecting;
  bool closed_ = false;
  std::chrono::steady_clock::time_point started_, lastActivity_, connectDeadline_;
  // Since when the client's bytes in client_.in wait for the end of their line (unset: none).
  std::optional<std::chrono::steady_clock::time_point> partialLineSince_;
  std::chrono::steady_clock::time_point lastUpstreamData_{};

  imap::Framer fromClient_;
  imap::Framer fromServer_;
  bool clientAtStart_ = true;   // the next client segment starts a command
  bool serverAtStart_ = true;   // the next server segment starts a response
  bool clientMidMessage_ = false;  // part of a server response was sent to the client

  // Held FETCH response.
  imap::FetchResponseParser fetch_;
  bool inFetch_ = false;   // the current server response is a FETCH being held
  bool holdingLiteral_ = false;
  bool capturing_ = false, captured_ = false;
  bool oversized_ = false;  // the capture is over scan.max_message_size: header kept, dropped
  std::size_t segments_ = 0, captureSegment_ = 0;
  std::vector<Piece> held_;
  std::size_t heldBytes_ = 0;
  // The message being captured: streamed to the scan while it arrives.
  std::shared_ptr<MessageBuffer> capture_;
  std::string captureItem_;
  std::optional<ScanReply> earlyReply_;  // the scan ended before the rest of the response came

  // The held response is complete and waits for its scan, or is being delivered:
  // upstream input waits.
  bool scanPending_ = false;
  // The held response on its way to the client, sent as the client takes it, so a large
  // message never sits whole in the output buffer.
  std::deque<Piece> delivery_;
  std::size_t deliveryOffset_ = 0;
  bool inUpstream_ = false;  // processUpstream is on the stack
  std::chrono::steady_clock::time_point scanStarted_, lastKeepalive_;

  // What the session knows for logs and IMAP URLs. Never a password.
  std::string user_;
  bool loginUserLiteral_ = false;
  bool authPlainPending_ = false;
  std::string selectTag_, selectMailbox_, mailbox_;
  // Commands in flight that asked for a partial whole message, BODY[]<0.N>: tag -> N. A
  // "BODY[]<0> {M}" answer with M below every such N is the whole message.
  std::map<std::string, std::uint64_t> partialRequests_;
  // Tags of FETCH commands in flight, and what was withheld under protocol-only virus
  // notices: the next tagged OK of a FETCH becomes "NO [ALERT] ..." naming it.
  std::set<std::string> fetchTags_;
  std::string withheld_;
  std::optional<std::uint32_t> uidValidity_, pendingUidValidity_;

  SessionStats stats_;
};

// What sessions need from the server.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual Reactor& reactor() = 0;
  virtual const Config& config() const = 0;
  // TLS contexts: for clients (null when no certificate is configured) and for the
  // upstream connection (null for upstream.security = none).
  virtual std::shared_ptr<TlsContext> clientTls() const = 0;
  virtual std::shared_ptr<TlsContext> upstreamTls() const = 0;
  // Runs the scan of request.message on a worker (which may begin before the message is
  // complete); done runs on the reactor thread.
  virtual void scanAsync(ScanRequest request, std::weak_ptr<Session> session,
                         std::function<void(Session&, ScanReply)> done) = 0;
  virtual void sessionClosed(Session& session) = 0;
  virtual RedirectorMetrics& metrics() = 0;
};

}  // namespace imapav::redirector
