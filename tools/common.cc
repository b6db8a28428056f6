#include "common.h"

#include <sys/resource.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <mutex>

namespace h2pool_cli {

ApiError::ApiError(std::string what, int code)
    : message_(std::move(what) + ": " + h2pool_strerror(code)) {}

void check(int rc, std::string_view what) {
  if (rc != H2POOL_OK) {
    throw ApiError(std::string(what), rc);
  }
}

bool TlsOptions::parse(ArgCursor &cur) {
  std::string value;
  if (cur.value_option("--cacert", "", value)) {
    ca_file = value;
  } else if (cur.value_option("--capath", "", value)) {
    ca_dir = value;
  } else if (cur.value_option("--cert", "", value)) {
    cert_file = value;
  } else if (cur.value_option("--key", "", value)) {
    key_file = value;
  } else if (cur.flag("--insecure", "-k")) {
    insecure = true;
  } else if (cur.flag("--http1.1", "")) {
    http_version = H2POOL_HTTP_VERSION_1_1;
  } else if (cur.flag("--http2", "")) {
    http_version = H2POOL_HTTP_VERSION_2;
  } else if (cur.value_option("--proxy", "-x", value)) {
    proxy_set = true;
    proxy = value;
  } else if (cur.value_option("--proxy-user", "-U", value)) {
    proxy_user_set = true;
    proxy_user = value;
  } else if (cur.value_option("--noproxy", "", value)) {
    noproxy_set = true;
    noproxy = value;
  } else {
    return false;
  }
  return true;
}

void TlsOptions::validate() const {
  if (cert_file.empty() != key_file.empty()) {
    throw UsageError("--cert and --key must be given together");
  }
}

void TlsOptions::apply(h2pool_config *cfg) const {
  if (!ca_file.empty()) {
    check(h2pool_config_set_tls_ca_file(cfg, ca_file.c_str()),
          "--cacert " + ca_file);
  }
  if (!ca_dir.empty()) {
    check(h2pool_config_set_tls_ca_dir(cfg, ca_dir.c_str()),
          "--capath " + ca_dir);
  }
  if (!cert_file.empty()) {
    check(h2pool_config_set_tls_client_cert(cfg, cert_file.c_str(),
                                            key_file.c_str()),
          "--cert/--key");
  }
  if (insecure) {
    check(h2pool_config_set_tls_insecure_skip_verify(cfg, 1), "--insecure");
  }
  check(h2pool_config_set_http_version(cfg, http_version), "--http1.1/--http2");
  // The environment, as curl reads it; explicit options win.
  check(h2pool_config_use_proxy_env(cfg, 1), "proxy environment");
  if (proxy_set) {
    check(h2pool_config_set_proxy(cfg, proxy.c_str()), "--proxy");
  }
  if (proxy_user_set) {
    size_t colon = proxy_user.find(':');
    std::string user = proxy_user.substr(0, colon);
    std::string pass = colon == std::string::npos
                           ? std::string()
                           : proxy_user.substr(colon + 1);
    check(h2pool_config_set_proxy_credentials(cfg, user.c_str(), pass.c_str()),
          "--proxy-user");
  }
  if (noproxy_set) {
    check(h2pool_config_set_noproxy(cfg, noproxy.c_str()), "--noproxy");
  }
}

namespace {

// The library's log lines: printed in verbose mode, and the last error kept
// for new_pool(). Called from the pool's loop thread too.
struct LogSink {
  std::mutex mu;
  std::string last_error;
  bool verbose = false;
};
LogSink g_log;

void log_line(int level, const char *msg, void *) {
  std::lock_guard<std::mutex> lock(g_log.mu);
  if (level <= H2POOL_LOG_ERROR)
    g_log.last_error = msg;
  if (g_log.verbose)
    std::fprintf(stderr, "* %s\n", msg);
}

} // namespace

ConfigPtr new_config(bool verbose) {
  h2pool_config *cfg = nullptr;
  check(h2pool_config_new(&cfg), "h2pool_config_new");
  ConfigPtr owned(cfg);
  {
    std::lock_guard<std::mutex> lock(g_log.mu);
    g_log.verbose = verbose;
  }
  check(h2pool_config_set_log(cfg, log_line,
                              verbose ? H2POOL_LOG_INFO : H2POOL_LOG_ERROR,
                              nullptr),
        "h2pool_config_set_log");
  return owned;
}

OptsPtr new_request_opts() {
  h2pool_request_opts *opts = nullptr;
  check(h2pool_request_opts_new(&opts), "h2pool_request_opts_new");
  return OptsPtr(opts);
}

PoolPtr new_pool(const h2pool_config *cfg) {
  h2pool *pool = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_log.mu);
    g_log.last_error.clear();
  }
  int rc = h2pool_create(cfg, &pool);
  if (rc != H2POOL_OK) {
    std::lock_guard<std::mutex> lock(g_log.mu);
    // "cannot load CA file /x: No such file or directory" says more than
    // the code's text, which follows it.
    throw ApiError(
        g_log.last_error.empty() ? "h2pool_create" : g_log.last_error, rc);
  }
  return PoolPtr(pool);
}

StatsPtr get_stats(h2pool *pool) {
  h2pool_stats *stats = nullptr;
  int rc = h2pool_stats_get(pool, &stats);
  if (rc != H2POOL_OK) {
    std::fprintf(stderr, "h2pool: warning: h2pool_stats_get: %s\n",
                 h2pool_strerror(rc));
    return nullptr;
  }
  return StatsPtr(stats);
}

const char *http2_error_name(int64_t code) {
  static const char *const names[] = {"NO_ERROR",
                                      "PROTOCOL_ERROR",
                                      "INTERNAL_ERROR",
                                      "FLOW_CONTROL_ERROR",
                                      "SETTINGS_TIMEOUT",
                                      "STREAM_CLOSED",
                                      "FRAME_SIZE_ERROR",
                                      "REFUSED_STREAM",
                                      "CANCEL",
                                      "COMPRESSION_ERROR",
                                      "CONNECT_ERROR",
                                      "ENHANCE_YOUR_CALM",
                                      "INADEQUATE_SECURITY",
                                      "HTTP_1_1_REQUIRED"};
  if (code < 0 || code >= static_cast<int64_t>(std::size(names))) {
    return nullptr;
  }
  return names[code];
}

std::string describe_error(const h2pool_error *err) {
  int code = h2pool_error_code(err);
  std::string out = h2pool_strerror(code);
  std::string_view msg = h2pool_error_message(err);
  if (!msg.empty() && msg != out) {
    out += ": ";
    out += msg;
  }
  int64_t h2 = h2pool_error_http2_code(err);
  if (h2 >= 0) {
    char buf[96];
    const char *name = http2_error_name(h2);
    std::snprintf(buf, sizeof(buf), " (HTTP/2 error %s (0x%" PRIx64 "))",
                  name ? name : "unknown", static_cast<uint64_t>(h2));
    out += buf;
  }
  return out;
}

std::string describe_code(int code) { return h2pool_strerror(code); }

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

CpuTimes process_cpu_times() {
  struct rusage ru {};
  CpuTimes t;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    t.user_s = static_cast<double>(ru.ru_utime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    t.sys_s = static_cast<double>(ru.ru_stime.tv_sec) +
              static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  }
  return t;
}

std::string json_number(double v, int decimals) {
  if (!std::isfinite(v)) {
    v = 0;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

} // namespace h2pool_cli
