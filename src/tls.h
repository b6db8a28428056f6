// TLS for https:// endpoints: one OpenSSL client context per pool (ALPN "h2",
// verification, client certificate, minimum version) and a per-endpoint
// cache of the last session, so reconnects resume instead of paying a full
// handshake.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "config.h"
#include "log.h"

namespace h2pool_core {

struct SslCtxDeleter {
  void operator()(SSL_CTX *c) const { SSL_CTX_free(c); }
};
struct SslSessionDeleter {
  void operator()(SSL_SESSION *s) const { SSL_SESSION_free(s); }
};

// Holds the most recent session an endpoint's server issued.
class TlsSessionCache {
public:
  // Takes ownership of `session`.
  void store(SSL_SESSION *session) { session_.reset(session); }
  SSL_SESSION *get() const { return session_.get(); }

private:
  std::unique_ptr<SSL_SESSION, SslSessionDeleter> session_;
};

// Receives sessions issued on a connection's SSL object; set as its app data.
class TlsSessionSink {
public:
  virtual void on_tls_session(SSL_SESSION *session) = 0;

protected:
  ~TlsSessionSink() = default;
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

private:
  explicit TlsContext(SSL_CTX *ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  bool verify_;
};

// OpenSSL's most recent error queue entry as text (and clears the queue).
std::string openssl_error_string(unsigned long code = 0);

} // namespace h2pool_core
