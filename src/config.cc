// Typed setters for h2pool_config and h2pool_request_opts. Each validates its
// argument so a bad value is reported where it is set, not at first use.
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "config.h"
#include "headers.h"
#include "proxy.h"

#include <net/if.h>

namespace {

// Copies a C string into `dst` (NULL clears it) without letting bad_alloc
// escape into C.
int guarded_assign(std::string &dst, const char *src) {
  try {
    dst = src ? src : "";
    return H2POOL_OK;
  } catch (...) {
    return H2POOL_ERR_NOMEM;
  }
}

// Runs `fn`, mapping bad_alloc to H2POOL_ERR_NOMEM.
template <typename Fn> int guarded(Fn &&fn) {
  try {
    return fn();
  } catch (...) {
    return H2POOL_ERR_NOMEM;
  }
}

} // namespace

extern "C" {

int h2pool_config_new(h2pool_config **out) {
  if (out == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  *out = new (std::nothrow) h2pool_config();
  return *out ? H2POOL_OK : H2POOL_ERR_NOMEM;
}

void h2pool_config_free(h2pool_config *cfg) { delete cfg; }

int h2pool_config_set_max_connections_per_endpoint(h2pool_config *cfg,
                                                   uint32_t n) {
  if (cfg == nullptr || n < 1 || n > 10000)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_connections_per_endpoint = n;
  return H2POOL_OK;
}

int h2pool_config_set_loop_threads(h2pool_config *cfg, uint32_t n) {
  if (cfg == nullptr || n < 1 || n > h2pool_core::kMaxLoopThreads)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->loop_threads = n;
  return H2POOL_OK;
}

int h2pool_config_set_max_concurrent_streams(h2pool_config *cfg, uint32_t n) {
  if (cfg == nullptr || n > INT32_MAX)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_concurrent_streams = n;
  return H2POOL_OK;
}

int h2pool_config_set_max_pending_requests(h2pool_config *cfg, uint32_t n) {
  if (cfg == nullptr || n < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_pending_requests = n;
  return H2POOL_OK;
}

int h2pool_config_set_connect_timeout_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr || ms < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->connect_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_settings_timeout_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr || ms < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->settings_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_request_timeout_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->request_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_idle_timeout_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->idle_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_max_lifetime_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_lifetime_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_response_header_timeout_ms(h2pool_config *cfg,
                                                 uint32_t ms) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->response_header_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_ping(h2pool_config *cfg, uint32_t interval_ms,
                           uint32_t timeout_ms) {
  if (cfg == nullptr || timeout_ms < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->ping_interval_ms = interval_ms;
  cfg->ping_timeout_ms = timeout_ms;
  return H2POOL_OK;
}

int h2pool_config_set_stale_check(h2pool_config *cfg, uint32_t after_idle_ms,
                                  uint32_t deadline_ms) {
  if (cfg == nullptr || deadline_ms < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->stale_after_idle_ms = after_idle_ms;
  cfg->stale_deadline_ms = deadline_ms;
  return H2POOL_OK;
}

int h2pool_config_set_max_requests_per_connection(h2pool_config *cfg,
                                                  uint32_t n) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_requests_per_connection = n;
  return H2POOL_OK;
}

int h2pool_config_set_max_retries(h2pool_config *cfg, uint32_t n) {
  if (cfg == nullptr || n > 100)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_retries = n;
  return H2POOL_OK;
}

int h2pool_config_set_reconnect_backoff(h2pool_config *cfg, uint32_t initial_ms,
                                        uint32_t max_ms) {
  if (cfg == nullptr || initial_ms < 1 || max_ms < initial_ms)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->reconnect_backoff_initial_ms = initial_ms;
  cfg->reconnect_backoff_max_ms = max_ms;
  return H2POOL_OK;
}

int h2pool_config_set_retry_backoff(h2pool_config *cfg, uint32_t initial_ms,
                                    uint32_t max_ms) {
  if (cfg == nullptr || initial_ms < 1 || max_ms < initial_ms)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->retry_backoff_initial_ms = initial_ms;
  cfg->retry_backoff_max_ms = max_ms;
  return H2POOL_OK;
}

int h2pool_config_set_retry_budget(h2pool_config *cfg, uint32_t burst,
                                   uint32_t percent) {
  if (cfg == nullptr || burst > 100000 || percent > 10000)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->retry_budget_burst = burst;
  cfg->retry_budget_percent = percent;
  return H2POOL_OK;
}

int h2pool_config_set_resolve_timeout_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr || ms < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->resolve_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_dns_servers(h2pool_config *cfg, const char *servers) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded([&] {
    std::vector<h2pool_core::Address> list;
    if (servers && *servers && !h2pool_core::parse_dns_servers(servers, &list))
      return H2POOL_ERR_INVALID_ARGUMENT;
    cfg->dns_servers = std::move(list);
    return H2POOL_OK;
  });
}

int h2pool_config_add_resolve(h2pool_config *cfg, const char *entry) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded([&] {
    if (entry == nullptr) {
      cfg->net.resolve.clear();
      return H2POOL_OK;
    }
    h2pool_core::ResolveOverride r;
    if (!h2pool_core::parse_resolve_override(entry, &r))
      return H2POOL_ERR_INVALID_ARGUMENT;
    cfg->net.resolve.push_back(std::move(r));
    return H2POOL_OK;
  });
}

int h2pool_config_add_connect_to(h2pool_config *cfg, const char *entry) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded([&] {
    if (entry == nullptr) {
      cfg->net.connect_to.clear();
      return H2POOL_OK;
    }
    h2pool_core::ConnectTo c;
    if (!h2pool_core::parse_connect_to(entry, &c))
      return H2POOL_ERR_INVALID_ARGUMENT;
    cfg->net.connect_to.push_back(std::move(c));
    return H2POOL_OK;
  });
}

namespace {

int set_unix_socket(h2pool_config *cfg, const char *path, bool abstract) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  if (path == nullptr || *path == '\0') {
    cfg->net.unix_socket = h2pool_core::Address();
    return H2POOL_OK;
  }
  h2pool_core::Address a;
  if (!h2pool_core::make_unix_address(path, abstract, &a))
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->net.unix_socket = a;
  return H2POOL_OK;
}

} // namespace

int h2pool_config_set_unix_socket(h2pool_config *cfg, const char *path) {
  return set_unix_socket(cfg, path, false);
}

int h2pool_config_set_abstract_unix_socket(h2pool_config *cfg,
                                           const char *name) {
  return set_unix_socket(cfg, name, true);
}

int h2pool_config_set_local_address(h2pool_config *cfg, const char *address) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  if (address == nullptr || *address == '\0') {
    cfg->net.local_address = h2pool_core::Address();
    return H2POOL_OK;
  }
  return guarded([&] {
    std::string a = address;
    if (a.size() >= 2 && a.front() == '[' && a.back() == ']')
      a = a.substr(1, a.size() - 2);
    h2pool_core::Address parsed;
    if (!h2pool_core::parse_ip_literal(a, 0, &parsed))
      return H2POOL_ERR_INVALID_ARGUMENT;
    cfg->net.local_address = parsed;
    return H2POOL_OK;
  });
}

int h2pool_config_set_local_port_range(h2pool_config *cfg, uint32_t min_port,
                                       uint32_t max_port) {
  if (cfg == nullptr || max_port > 65535 || min_port > max_port ||
      (min_port == 0 && max_port != 0))
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->net.local_port_min = uint16_t(min_port);
  cfg->net.local_port_max = uint16_t(max_port);
  return H2POOL_OK;
}

int h2pool_config_set_interface(h2pool_config *cfg, const char *name) {
  if (cfg == nullptr ||
      (name != nullptr && (strlen(name) >= IFNAMSIZ || strchr(name, '/'))))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded_assign(cfg->net.interface, name);
}

int h2pool_config_set_tcp_keepalive(h2pool_config *cfg, uint32_t idle_s,
                                    uint32_t interval_s, uint32_t count) {
  // Linux's limits for TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT.
  if (cfg == nullptr || idle_s > 32767 || interval_s > 32767 || count > 127 ||
      (idle_s == 0 && (interval_s != 0 || count != 0)))
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->net.keepalive_idle_s = idle_s;
  cfg->net.keepalive_interval_s = interval_s;
  cfg->net.keepalive_count = count;
  return H2POOL_OK;
}

int h2pool_config_set_happy_eyeballs_delay_ms(h2pool_config *cfg, uint32_t ms) {
  if (cfg == nullptr || ms > 60000)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->net.happy_eyeballs_delay_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_retry_idempotent(h2pool_config *cfg, int enable) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->retry_idempotent = enable != 0;
  return H2POOL_OK;
}

int h2pool_config_set_coalescing(h2pool_config *cfg, int enabled) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->coalescing = enabled != 0;
  return H2POOL_OK;
}

int h2pool_config_set_http_version(h2pool_config *cfg,
                                   h2pool_http_version version) {
  if (cfg == nullptr || version < H2POOL_HTTP_VERSION_DEFAULT ||
      version > H2POOL_HTTP_VERSION_2)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->http_version = version;
  return H2POOL_OK;
}

int h2pool_config_set_expect_continue_timeout_ms(h2pool_config *cfg,
                                                 uint32_t ms) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->expect_continue_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_max_response_headers(h2pool_config *cfg,
                                           uint32_t max_bytes,
                                           uint32_t max_fields) {
  if (cfg == nullptr || max_bytes < 1 || max_fields < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_response_header_bytes = max_bytes;
  cfg->max_response_header_fields = max_fields;
  return H2POOL_OK;
}

int h2pool_config_set_flow_control_windows(h2pool_config *cfg,
                                           uint32_t stream_bytes,
                                           uint32_t connection_bytes) {
  constexpr uint32_t kMaxWindow = 0x7fffffff; // RFC 9113 section 6.9.1
  if (cfg == nullptr || stream_bytes < 1 || stream_bytes > kMaxWindow ||
      connection_bytes < 65535 || connection_bytes > kMaxWindow)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->stream_window_bytes = stream_bytes;
  cfg->connection_window_bytes = connection_bytes;
  return H2POOL_OK;
}

int h2pool_config_set_adaptive_window(h2pool_config *cfg, int enabled) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->adaptive_window = enabled != 0;
  return H2POOL_OK;
}

int h2pool_config_set_max_response_body_bytes(h2pool_config *cfg, uint64_t n) {
  if (cfg == nullptr || n < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->max_response_body_bytes = n;
  return H2POOL_OK;
}

int h2pool_config_set_tls_ca_file(h2pool_config *cfg, const char *path) {
  if (cfg == nullptr || (path && !*path))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded_assign(cfg->tls_ca_file, path);
}

int h2pool_config_set_tls_ca_dir(h2pool_config *cfg, const char *path) {
  if (cfg == nullptr || (path && !*path))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded_assign(cfg->tls_ca_dir, path);
}

int h2pool_config_set_tls_client_cert(h2pool_config *cfg, const char *cert_file,
                                      const char *key_file) {
  if (cfg == nullptr || (cert_file == nullptr) != (key_file == nullptr) ||
      (cert_file && (!*cert_file || !*key_file)))
    return H2POOL_ERR_INVALID_ARGUMENT;
  std::string cert, key;
  int rc = guarded_assign(cert, cert_file);
  if (rc == H2POOL_OK)
    rc = guarded_assign(key, key_file);
  if (rc == H2POOL_OK) {
    cfg->tls_cert_file.swap(cert);
    cfg->tls_key_file.swap(key);
  }
  return rc;
}

int h2pool_config_set_tls_min_version(h2pool_config *cfg, int version) {
  if (cfg == nullptr ||
      (version != H2POOL_TLS_VERSION_1_2 && version != H2POOL_TLS_VERSION_1_3))
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->tls_min_version = version;
  return H2POOL_OK;
}

int h2pool_config_set_tls_insecure_skip_verify(h2pool_config *cfg,
                                               int insecure) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->tls_insecure = insecure != 0;
  return H2POOL_OK;
}

int h2pool_config_set_tls_handshake_timeout_ms(h2pool_config *cfg,
                                               uint32_t ms) {
  if (cfg == nullptr || ms < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->tls_handshake_timeout_ms = ms;
  return H2POOL_OK;
}

int h2pool_config_set_decompression_limits(h2pool_config *cfg,
                                           uint64_t max_bytes,
                                           uint32_t max_ratio) {
  if (cfg == nullptr || max_bytes < 1 || max_ratio < 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->decode_max_bytes = max_bytes;
  cfg->decode_max_ratio = max_ratio;
  return H2POOL_OK;
}

int h2pool_config_set_log(h2pool_config *cfg, h2pool_log_cb cb, int level,
                          void *user_data) {
  if (cfg == nullptr || level < H2POOL_LOG_NONE || level > H2POOL_LOG_DEBUG)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->log_cb = cb;
  cfg->log_level = cb ? level : H2POOL_LOG_NONE;
  cfg->log_user_data = user_data;
  return H2POOL_OK;
}

int h2pool_config_set_socket_callback(h2pool_config *cfg, h2pool_socket_cb cb,
                                      void *user_data) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->socket_cb = cb;
  cfg->socket_user_data = cb ? user_data : nullptr;
  return H2POOL_OK;
}

int h2pool_config_set_timer_callback(h2pool_config *cfg, h2pool_timer_cb cb,
                                     void *user_data) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->timer_cb = cb;
  cfg->timer_user_data = cb ? user_data : nullptr;
  return H2POOL_OK;
}

int h2pool_config_set_proxy(h2pool_config *cfg, const char *url) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  if (url == nullptr) {
    cfg->proxy_set = false;
    cfg->proxy.clear();
    return H2POOL_OK;
  }
  if (*url) {
    try {
      h2pool_core::ProxyTarget parsed;
      if (h2pool_core::parse_proxy_url(url, &parsed, nullptr) != H2POOL_OK)
        return H2POOL_ERR_INVALID_ARGUMENT;
    } catch (...) {
      return H2POOL_ERR_NOMEM;
    }
  }
  int rc = guarded_assign(cfg->proxy, url);
  if (rc == H2POOL_OK)
    cfg->proxy_set = true;
  return rc;
}

int h2pool_config_set_proxy_credentials(h2pool_config *cfg, const char *user,
                                        const char *password) {
  // RFC 7617: a Basic user-id cannot hold a colon.
  if (cfg == nullptr || (user == nullptr && password != nullptr) ||
      (user && std::string_view(user).find(':') != std::string_view::npos))
    return H2POOL_ERR_INVALID_ARGUMENT;
  std::string u, p;
  int rc = guarded_assign(u, user);
  if (rc == H2POOL_OK)
    rc = guarded_assign(p, password);
  if (rc == H2POOL_OK) {
    cfg->proxy_credentials = user != nullptr;
    cfg->proxy_user.swap(u);
    cfg->proxy_password.swap(p);
  }
  return rc;
}

int h2pool_config_set_noproxy(h2pool_config *cfg, const char *list) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  int rc = guarded_assign(cfg->noproxy, list);
  if (rc == H2POOL_OK)
    cfg->noproxy_set = list != nullptr;
  return rc;
}

int h2pool_config_use_proxy_env(h2pool_config *cfg, int use) {
  if (cfg == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  cfg->proxy_env = use != 0;
  return H2POOL_OK;
}

int h2pool_request_opts_new(h2pool_request_opts **out) {
  if (out == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  *out = new (std::nothrow) h2pool_request_opts();
  return *out ? H2POOL_OK : H2POOL_ERR_NOMEM;
}

void h2pool_request_opts_free(h2pool_request_opts *opts) { delete opts; }

int h2pool_request_opts_set_body_reader(h2pool_request_opts *opts,
                                        h2pool_body_read_cb cb,
                                        int64_t content_length) {
  if (opts == nullptr || content_length < -1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->body_reader = cb;
  opts->body_content_length = cb ? content_length : -1;
  return H2POOL_OK;
}

int h2pool_request_opts_set_body_release(h2pool_request_opts *opts,
                                         h2pool_body_release_cb release) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->body_release = release;
  return H2POOL_OK;
}

int h2pool_request_opts_set_on_headers(h2pool_request_opts *opts,
                                       h2pool_headers_cb cb) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->on_headers = cb;
  return H2POOL_OK;
}

int h2pool_request_opts_set_on_data(h2pool_request_opts *opts,
                                    h2pool_data_cb cb) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->on_data = cb;
  return H2POOL_OK;
}

int h2pool_request_opts_set_http_version(h2pool_request_opts *opts,
                                         h2pool_http_version version) {
  if (opts == nullptr || version < H2POOL_HTTP_VERSION_DEFAULT ||
      version > H2POOL_HTTP_VERSION_2)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->has_http_version = true;
  opts->http_version = version;
  return H2POOL_OK;
}

int h2pool_request_opts_set_priority(h2pool_request_opts *opts, int urgency,
                                     int incremental) {
  if (opts == nullptr || urgency < 0 || urgency > 7 || incremental < 0 ||
      incremental > 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->urgency = uint8_t(urgency);
  opts->incremental = incremental != 0;
  return H2POOL_OK;
}

int h2pool_request_opts_set_protocol(h2pool_request_opts *opts,
                                     const char *protocol) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  // RFC 8441 section 4: the value is a protocol token of the HTTP Upgrade
  // Token Registry ("websocket"); a bound keeps it a token, not a payload.
  constexpr size_t kMaxProtocol = 64;
  if (protocol && *protocol &&
      (std::strlen(protocol) > kMaxProtocol ||
       !h2pool_core::valid_method(protocol)))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return guarded_assign(opts->protocol, protocol);
}

int h2pool_request_opts_set_auto_decompress(h2pool_request_opts *opts,
                                            int enable) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->auto_decompress = enable != 0;
  return H2POOL_OK;
}

int h2pool_request_opts_set_queue_streaming(h2pool_request_opts *opts,
                                            int enable) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->queue_streaming = enable != 0;
  return H2POOL_OK;
}

int h2pool_request_opts_set_queue_upload(h2pool_request_opts *opts, int enable,
                                         int64_t content_length) {
  if (opts == nullptr || content_length < -1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->queue_upload = enable != 0;
  opts->queue_upload_length = enable ? content_length : -1;
  return H2POOL_OK;
}

int h2pool_request_opts_set_queue_buffers(h2pool_request_opts *opts,
                                          uint32_t download_bytes,
                                          uint32_t upload_bytes) {
  constexpr uint32_t kMax = 1u << 30;
  if (opts == nullptr || download_bytes == 0 || upload_bytes == 0 ||
      download_bytes > kMax || upload_bytes > kMax)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->queue_download_buffer = download_bytes;
  opts->queue_upload_buffer = upload_bytes;
  return H2POOL_OK;
}

int h2pool_request_opts_set_timeout_ms(h2pool_request_opts *opts, uint32_t ms) {
  if (opts == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  opts->has_timeout = true;
  opts->timeout_ms = ms;
  return H2POOL_OK;
}

} // extern "C"
