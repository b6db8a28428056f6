#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "h2pool.h"

namespace h2pool_core {
namespace {

int new_session_cb(SSL *ssl, SSL_SESSION *session) {
  auto sink = static_cast<TlsSessionSink *>(SSL_get_app_data(ssl));
  if (!sink)
    return 0; // not kept: OpenSSL frees it
  sink->on_tls_session(session);
  return 1; // ownership taken
}

int config_error(std::string *why, std::string what) {
  if (why)
    *why = what + ": " + openssl_error_string();
  return H2POOL_ERR_TLS_CONFIG;
}

// A file the configuration names that cannot be opened: OpenSSL's own
// reason for it ("system library") does not say which file or why.
bool unreadable(std::string *why, const char *what, const std::string &path) {
  struct stat st;
  int err = 0;
  if (stat(path.c_str(), &st) != 0)
    err = errno;
  else if (S_ISDIR(st.st_mode))
    err = EISDIR;
  else if (access(path.c_str(), R_OK) != 0)
    err = errno;
  if (err == 0)
    return false;
  if (why)
    *why = std::string("cannot load ") + what + " " + path + ": " +
           std::strerror(err);
  ERR_clear_error();
  return true;
}

} // namespace

std::string openssl_error_string(unsigned long code) {
  if (code == 0)
    code = ERR_peek_last_error();
  std::string text;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text = buf;
  } else {
    text = "unknown OpenSSL error";
  }
  ERR_clear_error();
  return text;
}

TlsContextSlot::TlsContextSlot(std::unique_ptr<TlsContext> ready)
    : ctx_(std::move(ready)) {
  ready_.store(ctx_.get(), std::memory_order_release);
}

const TlsContext *TlsContextSlot::get(const Config &config, std::string *why) {
  if (const TlsContext *ctx = ready_.load(std::memory_order_acquire))
    return ctx;
  std::lock_guard lock(mutex_);
  if (!ctx_ && TlsContext::create(config, &ctx_, why) != H2POOL_OK)
    return nullptr;
  ready_.store(ctx_.get(), std::memory_order_release);
  return ctx_.get();
}

int TlsContext::create(const Config &config, std::unique_ptr<TlsContext> *out,
                       std::string *why) {
  ERR_clear_error();
  SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
  if (!raw)
    return config_error(why, "cannot create TLS context");
  std::unique_ptr<TlsContext> ctx(new TlsContext(raw, !config.tls_insecure));
  SSL_CTX_set_min_proto_version(raw, config.tls_min_version);
  // RFC 9113 section 9.2: HTTP/2 over TLS needs TLS 1.2 or later without
  // renegotiation or compression.
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Preference order: HTTP/2 first, HTTP/1.1 for servers without it.
  static const unsigned char alpn[] = {2,   'h', '2', 8,   'h', 't',
                                       't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(raw, alpn, sizeof alpn);
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS);

  const char *ca_file =
      config.tls_ca_file.empty() ? nullptr : config.tls_ca_file.c_str();
  const char *ca_dir =
      config.tls_ca_dir.empty() ? nullptr : config.tls_ca_dir.c_str();
  struct stat st;
  if (ca_dir) {
    int err = stat(ca_dir, &st) != 0 ? errno
              : !S_ISDIR(st.st_mode) ? ENOTDIR
                                     : 0;
    if (err != 0) {
      if (why)
        *why = std::string("cannot load CA directory ") + ca_dir + ": " +
               std::strerror(err);
      return H2POOL_ERR_TLS_CONFIG;
    }
  }
  if (ca_file && unreadable(why, "CA file", ca_file))
    return H2POOL_ERR_TLS_CONFIG;
  if (ca_file || ca_dir) {
    if (SSL_CTX_load_verify_locations(raw, ca_file, ca_dir) != 1)
      return config_error(why, std::string("cannot load CA ") +
                                   (ca_file ? ca_file : ca_dir));
  } else if (SSL_CTX_set_default_verify_paths(raw) != 1) {
    return config_error(why, "cannot load the system trust store");
  }
  SSL_CTX_set_verify(
      raw, config.tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);

  if (!config.tls_cert_file.empty()) {
    if (unreadable(why, "client certificate", config.tls_cert_file) ||
        unreadable(why, "client key", config.tls_key_file))
      return H2POOL_ERR_TLS_CONFIG;
    if (SSL_CTX_use_certificate_chain_file(raw, config.tls_cert_file.c_str()) !=
        1)
      return config_error(why, "cannot load client certificate " +
                                   config.tls_cert_file);
    if (SSL_CTX_use_PrivateKey_file(raw, config.tls_key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1)
      return config_error(why, "cannot load client key " + config.tls_key_file);
    if (SSL_CTX_check_private_key(raw) != 1)
      return config_error(why, "client key does not match the certificate");
  }

  // Sessions are kept per endpoint by us, not in OpenSSL's internal cache,
  // which is keyed for servers.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_CLIENT |
                                          SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(raw, new_session_cb);
  *out = std::move(ctx);
  return H2POOL_OK;
}

SSL *TlsContext::new_ssl(const std::string &host, bool host_is_ip,
                         const TlsSessionCache *cache,
                         TlsSessionSink *sink) const {
  SSL *ssl = SSL_new(ctx_.get());
  if (!ssl)
    return nullptr;
  // SNI and certificate names never carry the root's trailing dot.
  std::string name = host;
  if (!host_is_ip && !name.empty() && name.back() == '.')
    name.pop_back();
  bool ok = true;
  if (!host_is_ip)
    ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
  if (ok && verify_) {
    if (host_is_ip)
      ok =
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
    else
      ok = SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (ok && cache && cache->get())
    ok = SSL_set_session(ssl, cache->get()) == 1;
  if (!ok) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_app_data(ssl, sink);
  return ssl;
}

bool certificate_covers(X509 *cert, const std::string &host, bool host_is_ip) {
  if (!cert || host.empty())
    return false;
  if (host_is_ip)
    return X509_check_ip_asc(cert, host.c_str(), 0) == 1;
  std::string name = host;
  if (name.back() == '.')
    name.pop_back();
  // Flags 0, as new_ssl() leaves the handshake's check: the same names
  // pass both.
  return X509_check_host(cert, name.data(), name.size(), 0, nullptr) == 1;
}

Error tls_failure_error(SSL *ssl, unsigned long last_error,
                        const std::string &name) {
  long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK)
    return make_error(H2POOL_ERR_TLS_VERIFY,
                      "certificate of " + name + " failed verification: " +
                          X509_verify_cert_error_string(verify));
  if (last_error != 0 && ERR_GET_LIB(last_error) == ERR_LIB_SSL &&
      ERR_GET_REASON(last_error) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL)
    return make_error(H2POOL_ERR_TLS_ALPN,
                      name + " refused HTTP/2 in ALPN (no_application_protocol "
                             "alert)");
  if (last_error != 0)
    return make_error(H2POOL_ERR_TLS_HANDSHAKE,
                      "TLS handshake with " + name +
                          " failed: " + openssl_error_string(last_error));
  return make_error(H2POOL_ERR_TLS_HANDSHAKE,
                    "connection to " + name +
                        " closed during the TLS handshake");
}

} // namespace h2pool_core
