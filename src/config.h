// The configuration objects behind the public opaque handles. Both are plain
// values: the pool and each request take copies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "h2pool.h"
#include "net_options.h"

struct h2pool_config {
  uint32_t max_connections_per_endpoint = 10;
  uint32_t loop_threads = 1;
  uint32_t max_concurrent_streams = 0; // 0: the server's value
  uint32_t max_pending_requests = 100000;
  uint32_t connect_timeout_ms = 10000;
  uint32_t settings_timeout_ms = 10000;
  uint32_t request_timeout_ms = 0;   // 0: none
  uint32_t idle_timeout_ms = 60000;  // 0: never close idle connections
  uint32_t max_lifetime_ms = 300000; // 0: unlimited
  uint64_t max_response_body_bytes = uint64_t{1} << 30;
  uint64_t decode_max_bytes = uint64_t{100} << 20;
  uint32_t decode_max_ratio = 100;
  // Failed connections a request may live through (see h2pool.h).
  uint32_t max_retries = 3;
  bool retry_idempotent = false;
  bool coalescing = true; // share HTTP/2 TLS connections between origins
  uint32_t reconnect_backoff_initial_ms = 100;
  uint32_t reconnect_backoff_max_ms = 10000;
  uint32_t retry_backoff_initial_ms = 10;
  uint32_t retry_backoff_max_ms = 1000;
  uint32_t retry_budget_burst = 10;
  uint32_t retry_budget_percent = 200;
  uint32_t resolve_timeout_ms = 10000;
  uint32_t response_header_timeout_ms = 0; // 0: none
  uint32_t ping_interval_ms = 30000;       // 0: no PINGs
  uint32_t ping_timeout_ms = 10000;
  uint32_t stale_after_idle_ms = 10000; // 0: no stale check
  uint32_t stale_deadline_ms = 5000;
  uint32_t max_requests_per_connection = 0; // 0: unlimited
  uint32_t max_response_header_bytes = 256u << 10;
  uint32_t max_response_header_fields = 1000;
  // Flow-control windows we advertise: with adaptive windows, the caps they
  // grow to (see bdp_estimator.h); without, what every connection gets.
  uint32_t stream_window_bytes = 8u << 20;
  uint32_t connection_window_bytes = 64u << 20;
  bool adaptive_window = true;
  std::string tls_ca_file; // empty: system trust store
  std::string tls_ca_dir;
  std::string tls_cert_file; // client certificate chain (mutual TLS)
  std::string tls_key_file;
  int tls_min_version = H2POOL_TLS_VERSION_1_2;
  bool tls_insecure = false;
  uint32_t tls_handshake_timeout_ms = 10000;
  int http_version = H2POOL_HTTP_VERSION_DEFAULT;
  uint32_t expect_continue_timeout_ms = 1000;
  // Proxy settings (see h2pool_config_set_proxy() and friends). Validated
  // by their setters; routed by ProxyRules (src/proxy.h).
  bool proxy_set = false; // set explicitly; an empty URL means none
  std::string proxy;
  bool proxy_credentials = false;
  std::string proxy_user;
  std::string proxy_password;
  bool noproxy_set = false;
  std::string noproxy;
  bool proxy_env = false;
  // Copied from the environment by h2pool_create() when proxy_env is set;
  // empty when unset.
  std::string env_http_proxy;
  std::string env_https_proxy;
  std::string env_no_proxy;
  // How servers are reached: overrides, Unix socket, local binding,
  // keepalive, Happy Eyeballs pacing (net_options.h); and the DNS servers
  // to ask (empty: /etc/resolv.conf's).
  h2pool_core::NetOptions net;
  std::vector<h2pool_core::Address> dns_servers;
  // External pools (h2pool_create_external).
  h2pool_socket_cb socket_cb = nullptr;
  void *socket_user_data = nullptr;
  h2pool_timer_cb timer_cb = nullptr;
  void *timer_user_data = nullptr;
  h2pool_log_cb log_cb = nullptr;
  int log_level = H2POOL_LOG_NONE;
  void *log_user_data = nullptr;
};

struct h2pool_request_opts {
  bool has_timeout = false;
  uint32_t timeout_ms = 0;
  h2pool_body_read_cb body_reader = nullptr;
  int64_t body_content_length = -1;
  h2pool_body_release_cb body_release = nullptr;
  h2pool_headers_cb on_headers = nullptr;
  h2pool_data_cb on_data = nullptr;
  bool auto_decompress = true;
  // Completion-queue requests only (h2pool_queue_request()).
  bool queue_streaming = false;
  bool queue_upload = false;
  int64_t queue_upload_length = -1;
  uint32_t queue_download_buffer = 256 * 1024;
  uint32_t queue_upload_buffer = 256 * 1024;
  bool has_http_version = false;
  int http_version = H2POOL_HTTP_VERSION_DEFAULT;
  // RFC 9218 priority; the defaults of its section 4.
  uint8_t urgency = 3;
  bool incremental = false;
  // Extended CONNECT (RFC 8441): the :protocol to send; empty: none.
  std::string protocol;
};

namespace h2pool_core {
using Config = h2pool_config;
// h2pool_config_set_loop_threads()'s bound. A request id carries its loop's
// index in its low bits (see api.cc), so this also bounds those bits.
constexpr uint32_t kMaxLoopThreads = 64;
} // namespace h2pool_core
