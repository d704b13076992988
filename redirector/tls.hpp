#pragma once
// A small non-blocking TLS layer over OpenSSL for the reactor: the caller owns the
// socket and the epoll registration, this class only says which readiness to wait for.
// Contexts are built at start-up and may throw; connections never throw and report a
// Status plus an error() text instead.
//
// Rules for an epoll (level-triggered) caller:
// - read() and write() can each return WantRead or WantWrite (TLS 1.3 key updates,
//   session tickets, TLS 1.2 renegotiation): wait for the event named, not the one the
//   call suggests.
// - After write() returned WantRead/WantWrite, call it again with the same bytes at the
//   front of the buffer and n no smaller than before (OpenSSL keeps an encrypted record
//   of them); the buffer may move.
// - After read() returned Ok, check pending(): decrypted bytes buffered inside OpenSSL do
//   not make the socket readable.

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace imapav::redirector {

class TlsContext {
 public:
  // PEM certificate chain (leaf first) and PEM private key; TLS 1.2 or newer; throws
  // std::runtime_error if a file cannot be loaded or the key does not match.
  static std::shared_ptr<TlsContext> server(const std::string& certificateFile,
                                            const std::string& privateKeyFile);
  // caFile "" means the system default store. verify=false accepts any certificate.
  static std::shared_ptr<TlsContext> client(const std::string& caFile, bool verify);

  bool isServer() const { return isServer_; }
  bool verify() const { return verify_; }
  SSL_CTX* native() const { return ctx_.get(); }

 private:
  struct Free {
    void operator()(SSL_CTX* ctx) const;
  };
  TlsContext(SSL_CTX* ctx, bool isServer, bool verify);

  std::unique_ptr<SSL_CTX, Free> ctx_;
  bool isServer_ = false;
  bool verify_ = false;
};

class TlsConnection {
 public:
  enum class Status {
    Ok,         // done / bytes transferred
    WantRead,   // wait for EPOLLIN, then call the same function again
    WantWrite,  // wait for EPOLLOUT, then call the same function again
    Closed,     // the peer ended the stream (close_notify or plain EOF after the handshake)
    Error,      // fatal; see error(); shutdown() then sends nothing
  };

  // serverName (clients only): sent as SNI when it is a DNS name, and checked against the
  // certificate (DNS name or IP literal) when the context verifies.
  TlsConnection(std::shared_ptr<TlsContext> ctx, int fd, bool isServer,
                const std::string& serverName);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  Status handshake();  // call until Ok
  bool handshakeDone() const { return handshakeDone_; }
  // Up to n decrypted bytes: returns > 0 with Ok, or 0 with another Status.
  std::size_t read(char* buf, std::size_t n, Status& status);
  // Up to n bytes: returns the count accepted (may be < n) with Ok, or 0 with
  // WantRead/WantWrite/Error.
  std::size_t write(const char* buf, std::size_t n, Status& status);
  bool pending() const;  // decrypted bytes buffered inside OpenSSL: read again first
  void shutdown();       // best-effort close_notify, never blocks
  const std::string& error() const { return error_; }
  std::string peerSummary() const;  // e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"

 private:
  struct Free {
    void operator()(SSL* ssl) const;
  };
  Status fail(std::string why);
  Status classify(int ret, const char* operation);

  std::shared_ptr<TlsContext> ctx_;
  std::unique_ptr<SSL, Free> ssl_;
  bool isServer_ = false;
  bool handshakeDone_ = false;
  bool failed_ = false;  // a fatal error: OpenSSL forbids SSL_shutdown afterwards
  bool closed_ = false;
  std::string error_;
};

}  // namespace imapav::redirector
