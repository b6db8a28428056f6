// Helpers shared by the h2pool subcommands: RAII owners for the public API's
// handles, error formatting and timing. Everything here goes through
// h2pool.h only.
#pragma once

#include <h2pool.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "args.h"

namespace h2pool_cli {

struct ConfigDeleter {
  void operator()(h2pool_config *c) const { h2pool_config_free(c); }
};
struct PoolDeleter {
  void operator()(h2pool *p) const { h2pool_destroy(p); }
};
struct OptsDeleter {
  void operator()(h2pool_request_opts *o) const { h2pool_request_opts_free(o); }
};
struct StatsDeleter {
  void operator()(h2pool_stats *s) const { h2pool_stats_free(s); }
};
using ConfigPtr = std::unique_ptr<h2pool_config, ConfigDeleter>;
using PoolPtr = std::unique_ptr<h2pool, PoolDeleter>;
using OptsPtr = std::unique_ptr<h2pool_request_opts, OptsDeleter>;
using StatsPtr = std::unique_ptr<h2pool_stats, StatsDeleter>;

// A failed library call during setup (config, pool, options). Reported as
// "h2pool: <what>: <strerror>" with exit status 1.
class ApiError : public std::exception {
public:
  ApiError(std::string what, int code);
  const char *what() const noexcept override { return message_.c_str(); }

private:
  std::string message_;
};

// Throws ApiError unless `rc` is H2POOL_OK.
void check(int rc, std::string_view what);

// Connection options shared by the commands that fetch: --cacert, --cert,
// --key, --insecure, the HTTP version (--http1.1, --http2), and the proxy
// (-x/--proxy, --proxy-user, --noproxy). As curl does, the tool reads the
// proxy environment variables (https_proxy, http_proxy, ALL_PROXY,
// NO_PROXY) unless --proxy is given; --proxy "" turns proxies off.
struct TlsOptions {
  std::string ca_file;
  std::string ca_dir;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;
  h2pool_http_version http_version = H2POOL_HTTP_VERSION_DEFAULT;
  bool proxy_set = false;
  std::string proxy;
  bool proxy_user_set = false;
  std::string proxy_user; // USER[:PASSWORD]
  bool noproxy_set = false;
  std::string noproxy;

  // Consumes one TLS option at the cursor; false if it is not one.
  bool parse(ArgCursor &cur);
  // Throws UsageError for incomplete combinations (--cert without --key).
  void validate() const;
  void apply(h2pool_config *cfg) const;
};

// A configuration whose log lines go to stderr: with `verbose`, those of
// level info and above as "* MESSAGE" (curl's -v style); otherwise none, but
// the last error is kept, and new_pool() names it when creation fails (a
// CA file that cannot be read, say).
ConfigPtr new_config(bool verbose = false);
OptsPtr new_request_opts();
PoolPtr new_pool(const h2pool_config *cfg);
// Takes a statistics snapshot; returns null (after printing a warning) if
// the pool refuses.
StatsPtr get_stats(h2pool *pool);

// The RFC 9113 name of an HTTP/2 error code ("PROTOCOL_ERROR"), or nullptr
// for codes outside the registry.
const char *http2_error_name(int64_t code);

// "<strerror>: <message> (HTTP/2 error PROTOCOL_ERROR (0x1))", leaving out
// the parts that are absent or repeat each other. `err` must not be null.
std::string describe_error(const h2pool_error *err);

// The same for a code returned synchronously by h2pool_request().
std::string describe_code(int code);

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b);

// User and system CPU time of the whole process (every thread), seconds.
struct CpuTimes {
  double user_s = 0;
  double sys_s = 0;
};
CpuTimes process_cpu_times();

// Formats a double for JSON: finite, fixed-point, no locale surprises.
std::string json_number(double v, int decimals);

} // namespace h2pool_cli
