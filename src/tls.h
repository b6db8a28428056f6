// TLS for https:// endpoints: one OpenSSL client context per pool (ALPN "h2",
// verification, client certificate, minimum version) and a per-endpoint
// cache of the last session, so reconnects resume instead of paying a full
// handshake.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "config.h"
#include "error.h"
#include "log.h"

namespace h2pool_core {

struct SslCtxDeleter {
  void operator()(SSL_CTX *c) const { SSL_CTX_free(c); }
};
struct SslSessionDeleter {
  void operator()(SSL_SESSION *s) const { SSL_SESSION_free(s); }
};

// Receives sessions issued on a connection's SSL object; set as its app data.
class TlsSessionSink {
public:
  virtual void on_tls_session(SSL_SESSION *session) = 0;

protected:
  ~TlsSessionSink() = default;
};

// Holds the most recent session an endpoint's server issued. It is also the
// sink of the endpoint's SSL objects: TLS 1.3 servers send tickets after
// the handshake, at any time while the connection lives, and the endpoint
// outlives its connections.
class TlsSessionCache final : public TlsSessionSink {
public:
  // Takes ownership of `session`.
  void store(SSL_SESSION *session) { session_.reset(session); }
  SSL_SESSION *get() const { return session_.get(); }
  void on_tls_session(SSL_SESSION *session) override { store(session); }

private:
  std::unique_ptr<SSL_SESSION, SslSessionDeleter> session_;
};

class TlsContext {
public:
  // Builds the context from the config. Returns H2POOL_OK or
  // H2POOL_ERR_TLS_CONFIG with the reason in `*why`.
  static int create(const Config &config, std::unique_ptr<TlsContext> *out,
                    std::string *why);

  // A new client SSL object for `host` (a name, or an IP literal without
  // brackets): SNI for names, certificate matching for both, and the cached
  // session if any. `sink` receives new sessions. nullptr on failure.
  SSL *new_ssl(const std::string &host, bool host_is_ip,
               const TlsSessionCache *cache, TlsSessionSink *sink) const;

  // Whether handshakes verify the server's certificate (not under
  // tls_insecure): only then does a certificate prove anything.
  bool verifies() const { return verify_; }

private:
  explicit TlsContext(SSL_CTX *ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  bool verify_;
};

// The context of every loop of one h2pool (h2pool_config_set_loop_threads),
// built on first use by whichever loop needs it first: loading the system
// trust store costs tens of milliseconds, paid once. An SSL_CTX that no
// longer changes may make SSL objects on several threads at once.
class TlsContextSlot {
public:
  // `ready`: a context already built (the caller named CA or certificate
  // files, checked at h2pool_create()), or null to build on first use.
  explicit TlsContextSlot(std::unique_ptr<TlsContext> ready = nullptr);
  // Any thread: the context, built from `config` by the first caller. Null,
  // with the reason in `*why`, if that fails (a later call tries again).
  const TlsContext *get(const Config &config, std::string *why);
  // Any thread: the context if it is built, else null.
  const TlsContext *built() const {
    return ready_.load(std::memory_order_acquire);
  }

private:
  std::mutex mutex_;
  std::unique_ptr<TlsContext> ctx_; // guarded by mutex_ until ready_ is set
  std::atomic<const TlsContext *> ready_{nullptr};
};

// Whether `cert` (a server certificate whose chain verified) is valid for
// `host`, a name or an IP literal without brackets, by the rules the
// handshake applies (SSL_set1_host, X509_VERIFY_PARAM_set1_ip_asc):
// subjectAltName entries (the subject CN only without DNS entries),
// wildcards in the left-most label, a trailing dot ignored. Connection
// coalescing asks it
// for names other than the one the connection was opened for.
bool certificate_covers(X509 *cert, const std::string &host, bool host_is_ip);

// OpenSSL's most recent error queue entry as text (and clears the queue).
std::string openssl_error_string(unsigned long code = 0);

// The error for a failed TLS handshake with `name`, from the certificate
// verification result and the first OpenSSL error the failing call saw
// (`last_error`, 0 if none): TLS_VERIFY, TLS_ALPN (no_application_protocol
// alert) or TLS_HANDSHAKE.
Error tls_failure_error(SSL *ssl, unsigned long last_error,
                        const std::string &name);

} // namespace h2pool_core
