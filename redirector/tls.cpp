#include "redirector/tls.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace imapav::redirector {
namespace {

// Drains this thread's OpenSSL error queue into one line ("lib: reason; ...").
std::string takeErrors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    std::string item;
    if (ERR_SYSTEM_ERROR(e)) {
      item = std::strerror(ERR_GET_REASON(e));
    } else if (ERR_GET_REASON(e) == ERR_R_SYS_LIB) {
      continue;  // "system lib": only repeats the system error above
    } else if (const char* reason = ERR_reason_error_string(e)) {
      const char* lib = ERR_lib_error_string(e);
      item = lib ? std::string(lib) + ": " + reason : reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof(buf));
      item = buf;
    }
    if (!out.empty()) out += "; ";
    out += item;
  }
  return out;
}

[[noreturn]] void throwSsl(const std::string& what) {
  const std::string detail = takeErrors();
  throw std::runtime_error(detail.empty() ? what : what + ": " + detail);
}

// OpenSSL 3.0's socket BIO sends with write(), which raises SIGPIPE on a reset peer.
// This BIO is the socket BIO with send(MSG_NOSIGNAL)/recv in place of write()/read();
// ctrl (BIO_set_fd, BIO_get_fd, flush, eof) stays the socket BIO's own.
int sockWrite(BIO* b, const char* data, int len) {
  const int fd = static_cast<int>(BIO_get_fd(b, nullptr));
  errno = 0;
  const ssize_t n = ::send(fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  BIO_clear_retry_flags(b);
  if (n <= 0 && BIO_sock_should_retry(static_cast<int>(n))) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int sockRead(BIO* b, char* data, int len) {
  if (!data) return 0;
  const int fd = static_cast<int>(BIO_get_fd(b, nullptr));
  errno = 0;
  const ssize_t n = ::recv(fd, data, static_cast<std::size_t>(len), 0);
  BIO_clear_retry_flags(b);
  if (n <= 0) {
    if (BIO_sock_should_retry(static_cast<int>(n))) {
      BIO_set_retry_read(b);
    } else if (n == 0) {
      BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    }
  }
  return static_cast<int>(n);
}

int sockPuts(BIO* b, const char* str) {
  return sockWrite(b, str, static_cast<int>(std::strlen(str)));
}

// Built once, never freed (a process-lifetime table, like OpenSSL's own methods).
const BIO_METHOD* noSignalSocketMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "imapav socket");
    if (!m) return m;
    const BIO_METHOD* base = BIO_s_socket();
    BIO_meth_set_write(m, sockWrite);
    BIO_meth_set_read(m, sockRead);
    BIO_meth_set_puts(m, sockPuts);
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(base));
    BIO_meth_set_create(m, BIO_meth_get_create(base));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(base));
    return m;
  }();
  return method;
}

bool isIpLiteral(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// SSL_set_tlsext_host_name() is a macro with a C cast.
long setSni(SSL* ssl, const std::string& name) {
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(name.c_str()));
}

int clampLen(std::size_t n) { return n > INT_MAX ? INT_MAX : static_cast<int>(n); }

}  // namespace

void TlsContext::Free::operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }

TlsContext::TlsContext(SSL_CTX* ctx, bool isServer, bool verify)
    : ctx_(ctx), isServer_(isServer), verify_(verify) {}

std::shared_ptr<TlsContext> TlsContext::server(const std::string& certificateFile,
                                               const std::string& privateKeyFile) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) throwSsl("TLS: cannot create server context");
  std::shared_ptr<TlsContext> ctx(new TlsContext(raw, true, false));
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // No client-initiated TLS 1.2 renegotiation: it only costs the proxy CPU.
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(raw, certificateFile.c_str()) != 1)
    throwSsl("TLS: cannot load certificate chain '" + certificateFile + "'");
  // Loading the key already compares it with the certificate (X509 "key values
  // mismatch"); both ways of failing get the same clear message.
  const bool loaded = SSL_CTX_use_PrivateKey_file(raw, privateKeyFile.c_str(), SSL_FILETYPE_PEM) == 1;
  const unsigned long last = ERR_peek_last_error();
  const bool mismatch = !loaded && ERR_GET_LIB(last) == ERR_LIB_X509 &&
                        ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH;
  if (!loaded && !mismatch) throwSsl("TLS: cannot load private key '" + privateKeyFile + "'");
  if (mismatch || SSL_CTX_check_private_key(raw) != 1)
    throwSsl("TLS: private key '" + privateKeyFile + "' does not match certificate '" +
             certificateFile + "'");
  return ctx;
}

std::shared_ptr<TlsContext> TlsContext::client(const std::string& caFile, bool verify) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (!raw) throwSsl("TLS: cannot create client context");
  std::shared_ptr<TlsContext> ctx(new TlsContext(raw, false, verify));
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (verify) {
    if (caFile.empty()) {
      if (SSL_CTX_set_default_verify_paths(raw) != 1) throwSsl("TLS: cannot load the system CA store");
    } else if (SSL_CTX_load_verify_locations(raw, caFile.c_str(), nullptr) != 1) {
      throwSsl("TLS: cannot load CA file '" + caFile + "'");
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

void TlsConnection::Free::operator()(SSL* ssl) const { SSL_free(ssl); }

TlsConnection::TlsConnection(std::shared_ptr<TlsContext> ctx, int fd, bool isServer,
                             const std::string& serverName)
    : ctx_(std::move(ctx)), isServer_(isServer) {
  ERR_clear_error();
  if (!ctx_ || ctx_->isServer() != isServer) {
    fail("TLS: context does not match the connection's role");
    return;
  }
  ssl_.reset(SSL_new(ctx_->native()));
  const BIO_METHOD* method = noSignalSocketMethod();
  BIO* bio = method ? BIO_new(method) : nullptr;
  if (!ssl_ || !bio) {
    BIO_free(bio);
    fail("TLS: cannot create connection: " + takeErrors());
    return;
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns the BIO; nobody closes fd but the caller
  if (isServer) {
    SSL_set_accept_state(ssl_.get());
    return;
  }
  SSL_set_connect_state(ssl_.get());
  const bool ip = isIpLiteral(serverName);
  if (!serverName.empty() && !ip && setSni(ssl_.get(), serverName) != 1) {
    fail("TLS: invalid server name '" + serverName + "': " + takeErrors());
    return;
  }
  if (!ctx_->verify()) return;
  if (serverName.empty()) {
    fail("TLS: certificate verification needs a server name");
    return;
  }
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, serverName.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, serverName.c_str(), 0);
  if (ok != 1) fail("TLS: cannot set the name to verify '" + serverName + "': " + takeErrors());
}

TlsConnection::~TlsConnection() = default;

TlsConnection::Status TlsConnection::fail(std::string why) {
  failed_ = true;
  if (error_.empty()) error_ = std::move(why);
  return Status::Error;
}

// Turns an SSL_* return value into a Status; must run before anything else touches the
// thread's error queue.
TlsConnection::Status TlsConnection::classify(int ret, const char* operation) {
  const int code = SSL_get_error(ssl_.get(), ret);
  switch (code) {
    case SSL_ERROR_NONE:
      return Status::Ok;
    case SSL_ERROR_WANT_READ:
      return Status::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return Status::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      closed_ = true;
      return Status::Closed;
    case SSL_ERROR_SYSCALL: {
      const int err = errno;
      const std::string queued = takeErrors();
      if (handshakeDone_ && err == 0 && queued.empty()) {
        closed_ = true;
        return Status::Closed;
      }
      std::string why = std::string("TLS ") + operation + ": ";
      why += err != 0 ? std::strerror(err) : "connection closed by peer";
      if (!queued.empty()) why += " (" + queued + ")";
      return fail(why);
    }
    case SSL_ERROR_SSL: {
      const unsigned long first = ERR_peek_error();
      // OpenSSL 3 reports a TCP close without close_notify as an error. IMAP frames its
      // own data, so after the handshake it is an ordinary end of stream.
      if (handshakeDone_ && ERR_GET_LIB(first) == ERR_LIB_SSL &&
          ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        failed_ = true;  // no close_notify on a dead stream
        closed_ = true;
        return Status::Closed;
      }
      const std::string queued = takeErrors();
      const long verify = SSL_get_verify_result(ssl_.get());
      if (!isServer_ && ctx_->verify() && verify != X509_V_OK) {
        return fail(std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify));
      }
      if (!handshakeDone_ && ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return fail(std::string("TLS ") + operation + ": peer closed the connection");
      return fail(std::string("TLS ") + operation + ": " + (queued.empty() ? "protocol error" : queued));
    }
    default:
      takeErrors();
      return fail(std::string("TLS ") + operation + ": unexpected SSL_get_error " + std::to_string(code));
  }
}

TlsConnection::Status TlsConnection::handshake() {
  if (failed_) return Status::Error;
  if (handshakeDone_) return Status::Ok;
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) {
    handshakeDone_ = true;
    return Status::Ok;
  }
  const Status s = classify(ret, "handshake");
  if (s == Status::Ok || s == Status::Closed) return fail("TLS handshake: peer closed the connection");
  return s;
}

std::size_t TlsConnection::read(char* buf, std::size_t n, Status& status) {
  if (failed_ && !closed_) {
    status = Status::Error;
    return 0;
  }
  if (closed_) {
    status = Status::Closed;
    return 0;
  }
  if (n == 0) {
    status = Status::Ok;
    return 0;
  }
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_read(ssl_.get(), buf, clampLen(n));
  if (ret > 0) {
    handshakeDone_ = true;  // SSL_read runs the handshake itself when it was skipped
    status = Status::Ok;
    return static_cast<std::size_t>(ret);
  }
  status = classify(ret, "read");
  if (status == Status::Ok) status = Status::WantRead;  // ret <= 0 never means data
  return 0;
}

std::size_t TlsConnection::write(const char* buf, std::size_t n, Status& status) {
  if (failed_ || closed_) {
    status = Status::Error;
    if (error_.empty()) error_ = "TLS write: connection closed";
    return 0;
  }
  if (n == 0) {
    status = Status::Ok;
    return 0;
  }
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_write(ssl_.get(), buf, clampLen(n));
  if (ret > 0) {
    handshakeDone_ = true;
    status = Status::Ok;
    return static_cast<std::size_t>(ret);
  }
  status = classify(ret, "write");
  if (status == Status::Closed) status = fail("TLS write: peer closed the connection");
  if (status == Status::Ok) status = Status::WantWrite;
  return 0;
}

bool TlsConnection::pending() const { return ssl_ && !failed_ && SSL_pending(ssl_.get()) > 0; }

void TlsConnection::shutdown() {
  if (!ssl_ || failed_ || !handshakeDone_) return;
  ERR_clear_error();
  // One call sends our close_notify (if the socket takes it); waiting for the peer's
  // reply would need more I/O and IMAP does not need it.
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

std::string TlsConnection::peerSummary() const {
  if (!ssl_ || !handshakeDone_) return "";
  std::string out = SSL_get_version(ssl_.get());
  if (const char* cipher = SSL_get_cipher_name(ssl_.get())) out += std::string(" ") + cipher;
  return out;
}

}  // namespace imapav::redirector
