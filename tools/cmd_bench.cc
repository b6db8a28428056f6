// h2pool bench: h2load-style closed-loop load through the public API.
#include <h2pool.h>

#include <array>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "load.h"
#include "net_args.h"
#include "progress.h"

namespace h2pool_cli {

const char kBenchUsage[] =
    "Usage: h2pool bench [OPTIONS] URL\n"
    "\n"
    "Sends N GET requests to URL keeping at most C*M outstanding, like\n"
    "h2load: C connections with M concurrent streams each. Prints a summary\n"
    "and, as the last line, a JSON object with the figures.\n"
    "\n"
    "Options:\n"
    "  -n, --requests N        total requests (default 1000)\n"
    "  -c, --connections C     maximum connections (default 1)\n"
    "  -m, --max-concurrent-streams M\n"
    "                          concurrent streams per connection (default 1)\n"
    "  -t, --threads T         split the load over T pools, each with its own\n"
    "                          loop thread (default 1; at most C)\n"
    "      --loop-threads L    event-loop threads per pool (default 1; see\n"
    "                          h2pool_config_set_loop_threads)\n"
    "      --timeout-ms N      per-request timeout in ms (default 0: none)\n"
    "      --discard-body      stream bodies through on_data and drop them\n"
    "                          (as h2load does) instead of buffering them\n"
    "      --submit-thread     submit from a thread of its own (per pool),\n"
    "                          which takes the completions from a completion\n"
    "                          queue (bodies whole, --discard-body aside)\n"
    "                          instead of from the completion callback\n"
    "      --cacert FILE       trust the CA certificates in FILE (PEM)\n"
    "      --cert FILE --key FILE  client certificate and key (mutual TLS)\n"
    "  -k, --insecure          do not verify server certificates\n"
    "      --http1.1           speak HTTP/1.1: -c connections, one request\n"
    "                          in flight on each (-m is ignored)\n"
    "      --http2             speak HTTP/2 only (over TLS: ALPN h2)\n"
    "  -x, --proxy URL         tunnel every connection through the proxy\n"
    "                          URL (as get; default: the environment's)\n"
    "  -U, --proxy-user USER:PASS  the proxy's credentials\n"
    "      --noproxy LIST      hosts that bypass the "
    "proxy\n" H2POOL_CLI_NETWORK_USAGE
    "  -h, --help              show this help\n"
    "\n"
    "Exit status: 0 if every request succeeded (any HTTP status), 1 if any\n"
    "failed, 2 on usage errors.\n";

namespace {

constexpr int kMaxStatus = 600;

// The live line of a long run on stderr: redrawn in place every second on a
// terminal; elsewhere (a CI log) a plain line every 10 seconds, so a short
// run prints nothing and a long one shows it is alive.
class BenchProgress {
public:
  BenchProgress(uint64_t total, Clock::time_point start)
      : total_(total), start_(start),
        terminal_(Progress::stderr_is_terminal()) {}

  void update(uint64_t done, uint64_t failed) {
    Clock::time_point now = Clock::now();
    double elapsed = seconds_between(start_, now);
    if (!terminal_ && elapsed < next_plain_s_) {
      return;
    }
    next_plain_s_ = elapsed + 10;
    char line[160];
    std::snprintf(line, sizeof line,
                  "bench: %" PRIu64 "/%" PRIu64 " requests (%.1f%%), %.0f "
                  "req/s, %" PRIu64 " failed, %.0f s",
                  done, total_,
                  total_ ? 100.0 * double(done) / double(total_) : 0,
                  elapsed > 0 ? double(done) / elapsed : 0, failed, elapsed);
    std::fprintf(stderr, terminal_ ? "\r%s\033[K" : "%s\n", line);
    std::fflush(stderr);
    drawn_ = drawn_ || terminal_;
  }
  void finish() {
    if (drawn_) {
      std::fputs("\r\033[K", stderr); // the summary replaces the live line
    }
  }

private:
  uint64_t total_;
  Clock::time_point start_;
  bool terminal_;
  bool drawn_ = false;
  double next_plain_s_ = 10;
};

// Results of one pool's share of the load. Written from that pool's loop
// thread (and from the submitting thread for refused requests).
struct Tally {
  explicit Tally(uint64_t n) : latency_ns(n, UINT64_MAX) {}

  std::vector<uint64_t> latency_ns; // UINT64_MAX for failures
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> failed{0};
  std::array<std::atomic<uint64_t>, kMaxStatus> status{};
  std::mutex error_mu;
  std::map<int, uint64_t> error_counts;    // by H2POOL_ERR_* code
  std::map<int, std::string> first_errors; // first description per code

  void record(uint64_t index, const h2pool_response *resp,
              const h2pool_error *err, int refused, uint64_t latency) {
    if (err == nullptr && refused == 0) {
      succeeded.fetch_add(1, std::memory_order_relaxed);
      int st = h2pool_response_status(resp);
      status[(st >= 0 && st < kMaxStatus) ? st : 0].fetch_add(
          1, std::memory_order_relaxed);
      latency_ns[index] = latency;
      return;
    }
    failed.fetch_add(1, std::memory_order_relaxed);
    int code = err ? h2pool_error_code(err) : refused;
    std::lock_guard<std::mutex> lock(error_mu);
    if (error_counts[code]++ == 0) {
      first_errors[code] = err ? describe_error(err) : describe_code(refused);
    }
  }
};

// --discard-body: bodies stream through on_data and are dropped, as h2load
// drops them, instead of being buffered for the completion callback.
int discard_body(const uint8_t *, size_t, void *) { return 0; }

struct Worker {
  uint64_t requests = 0;
  uint32_t connections = 0;
  std::unique_ptr<Tally> tally;
  std::unique_ptr<LoadRunner> runner;
  PoolPtr pool; // destroyed before runner and tally (declared after them)
};

} // namespace

int cmd_bench(const Args &args) {
  uint64_t n = 1000, c = 1, m = 1, threads = 1, loop_threads = 1;
  uint32_t timeout_ms = 0;
  bool discard = false, submit_thread = false;
  std::string url, value;

  TlsOptions tls;
  NetworkOptions net;
  ArgCursor cur(args);
  while (!cur.done()) {
    cur.check_help();
    if (tls.parse(cur) || net.parse(cur)) {
      continue;
    } else if (cur.value_option("--requests", "-n", value)) {
      // Bounded so the per-request latency array stays addressable.
      n = parse_uint(value, 1, 100'000'000, "-n");
    } else if (cur.value_option("--connections", "-c", value)) {
      c = parse_uint(value, 1, 10000, "-c");
    } else if (cur.value_option("--max-concurrent-streams", "-m", value)) {
      m = parse_uint(value, 1, UINT32_MAX, "-m");
    } else if (cur.value_option("--threads", "-t", value)) {
      threads = parse_uint(value, 1, 256, "--threads");
    } else if (cur.value_option("--loop-threads", "", value)) {
      loop_threads = parse_uint(value, 1, 64, "--loop-threads");
    } else if (cur.value_option("--timeout-ms", "", value)) {
      timeout_ms = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--timeout-ms"));
    } else if (cur.flag("--discard-body", "")) {
      discard = true;
    } else if (cur.flag("--submit-thread", "")) {
      submit_thread = true;
    } else if (auto pos = cur.positional()) {
      if (!url.empty()) {
        throw UsageError("bench takes exactly one URL");
      }
      url = std::move(*pos);
    }
  }
  if (url.empty()) {
    throw UsageError("no URL given");
  }
  tls.validate();
  if (tls.http_version == H2POOL_HTTP_VERSION_1_1) {
    m = 1; // one exchange at a time per HTTP/1.1 connection
  }
  if (threads > c) {
    throw UsageError("--threads must not exceed -c (each pool needs at "
                     "least one connection)");
  }

  OptsPtr opts = new_request_opts();
  check(h2pool_request_opts_set_timeout_ms(opts.get(), timeout_ms),
        "h2pool_request_opts_set_timeout_ms");
  if (discard) {
    check(h2pool_request_opts_set_on_data(opts.get(), discard_body),
          "h2pool_request_opts_set_on_data");
  }
  // --submit-thread goes through a completion queue, which runs no
  // callbacks: its requests take the timeout only, and their bodies come
  // whole in the completion event.
  OptsPtr queue_opts = new_request_opts();
  check(h2pool_request_opts_set_timeout_ms(queue_opts.get(), timeout_ms),
        "h2pool_request_opts_set_timeout_ms");

  // Split requests and connections over the pools as evenly as possible.
  std::vector<Worker> workers(threads);
  for (uint64_t i = 0; i < threads; ++i) {
    Worker &w = workers[i];
    w.requests = n / threads + (i < n % threads ? 1 : 0);
    w.connections = static_cast<uint32_t>(c / threads + (i < c % threads));
    w.tally = std::make_unique<Tally>(w.requests);
    ConfigPtr cfg = new_config();
    tls.apply(cfg.get());
    net.apply(cfg.get());
    check(h2pool_config_set_max_connections_per_endpoint(cfg.get(),
                                                         w.connections),
          "h2pool_config_set_max_connections_per_endpoint");
    check(h2pool_config_set_loop_threads(cfg.get(),
                                         static_cast<uint32_t>(loop_threads)),
          "h2pool_config_set_loop_threads");
    check(h2pool_config_set_max_concurrent_streams(cfg.get(),
                                                   static_cast<uint32_t>(m)),
          "h2pool_config_set_max_concurrent_streams");
    uint64_t window = static_cast<uint64_t>(w.connections) * m;
    Tally *tally = w.tally.get();
    w.runner = std::make_unique<LoadRunner>(
        w.requests, window, url,
        [tally](uint64_t index, const h2pool_response *resp,
                const h2pool_error *err, int refused, uint64_t latency) {
          tally->record(index, resp, err, refused, latency);
        },
        opts.get());
    if (submit_thread) {
      w.runner->submit_from_thread(queue_opts.get());
    }
    w.pool = new_pool(cfg.get());
  }

  CpuTimes cpu0 = process_cpu_times();
  Clock::time_point t0 = Clock::now();
  for (Worker &w : workers) {
    w.runner->start(w.pool.get());
  }
  Clock::time_point t1 = t0;
  BenchProgress progress(n, t0);
  for (Worker &w : workers) {
    // Woken every second for the live line; the run's end is waited for,
    // not polled.
    while (!w.runner->wait_for(std::chrono::seconds(1))) {
      uint64_t done = 0, failed_so_far = 0;
      for (const Worker &x : workers) {
        failed_so_far += x.tally->failed.load(std::memory_order_relaxed);
        done += x.tally->succeeded.load(std::memory_order_relaxed);
      }
      progress.update(done + failed_so_far, failed_so_far);
    }
    t1 = std::max(t1, w.runner->finished_at());
  }
  progress.finish();
  CpuTimes cpu1 = process_cpu_times();

  uint64_t connections = 0, peak_streams = 0, retried = 0;
  for (Worker &w : workers) {
    if (StatsPtr st = get_stats(w.pool.get())) {
      connections +=
          h2pool_stats_value(st.get(), H2POOL_STAT_CONNECTIONS_CREATED);
      peak_streams = std::max(
          peak_streams, h2pool_stats_value(
                            st.get(), H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION));
      retried += h2pool_stats_value(st.get(), H2POOL_STAT_REQUESTS_RETRIED);
    }
    w.pool.reset();
  }

  uint64_t succeeded = 0, failed = 0;
  std::array<uint64_t, kMaxStatus> status{};
  std::map<int, uint64_t> error_counts;
  std::map<int, std::string> first_errors;
  std::vector<uint64_t> latencies;
  latencies.reserve(n);
  for (Worker &w : workers) {
    Tally &t = *w.tally;
    succeeded += t.succeeded.load();
    failed += t.failed.load();
    for (int s = 0; s < kMaxStatus; ++s) {
      status[s] += t.status[s].load();
    }
    for (auto &[code, count] : t.error_counts) {
      error_counts[code] += count;
      first_errors.emplace(code, t.first_errors[code]);
    }
    for (uint64_t l : t.latency_ns) {
      if (l != UINT64_MAX) {
        latencies.push_back(l);
      }
    }
  }
  LatencySummary lat = summarize_latencies(latencies);
  double wall = seconds_between(t0, t1);
  double user = cpu1.user_s - cpu0.user_s;
  double sys = cpu1.sys_s - cpu0.sys_s;
  double rps = wall > 0 ? static_cast<double>(succeeded) / wall : 0;
  double cpu_us = (user + sys) * 1e6 / static_cast<double>(n);

  std::printf("h2pool bench %s\n", url.c_str());
  std::printf("  %" PRIu64 " requests, %" PRIu64 " connections x %" PRIu64
              " streams, %" PRIu64 " pool thread%s\n",
              n, c, m, threads, threads == 1 ? "" : "s");
  std::printf("requests:     %" PRIu64 " total, %" PRIu64 " succeeded, %" PRIu64
              " failed\n",
              n, succeeded, failed);
  std::string codes, codes_json;
  for (int s = 0; s < kMaxStatus; ++s) {
    if (status[s] == 0) {
      continue;
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s%d: %" PRIu64, codes.empty() ? "" : ", ",
                  s, status[s]);
    codes += buf;
    std::snprintf(buf, sizeof(buf), "%s\"%d\":%" PRIu64,
                  codes_json.empty() ? "" : ",", s, status[s]);
    codes_json += buf;
  }
  std::printf("status codes: %s\n", codes.empty() ? "none" : codes.c_str());
  for (auto &[code, count] : error_counts) {
    std::printf("errors:       %" PRIu64 " x %s\n", count,
                first_errors[code].c_str());
  }
  std::printf("wall time:    %.3f s\n", wall);
  std::printf("throughput:   %.1f req/s\n", rps);
  std::printf("latency:      min %.3f ms, mean %.3f ms, max %.3f ms, "
              "p50 %.3f ms, p99 %.3f ms\n",
              lat.min_ms, lat.mean_ms, lat.max_ms, lat.p50_ms, lat.p99_ms);
  std::printf("cpu:          user %.3f s, sys %.3f s, %.1f us/request\n", user,
              sys, cpu_us);
  std::printf("connections:  %" PRIu64 " created, peak %" PRIu64
              " streams/connection, %" PRIu64 " retries\n",
              connections, peak_streams, retried);
  std::printf(
      "{\"requests\":%" PRIu64 ",\"succeeded\":%" PRIu64 ",\"failed\":%" PRIu64
      ",\"wall_s\":%s,\"user_s\":%s,\"sys_s\":%s,\"rps\":%s,"
      "\"cpu_us_per_req\":%s,\"connections\":%" PRIu64
      ",\"max_connections\":%" PRIu64 ",\"max_streams\":%" PRIu64
      ",\"threads\":%" PRIu64 ",\"peak_streams_per_connection\":%" PRIu64
      ",\"latency_ms\":{\"min\":%s,\"mean\":%s,\"max\":%s,\"p50\":%s,"
      "\"p99\":%s},\"status\":{%s}}\n",
      n, succeeded, failed, json_number(wall, 6).c_str(),
      json_number(user, 6).c_str(), json_number(sys, 6).c_str(),
      json_number(rps, 1).c_str(), json_number(cpu_us, 3).c_str(), connections,
      c, m, threads, peak_streams, json_number(lat.min_ms, 3).c_str(),
      json_number(lat.mean_ms, 3).c_str(), json_number(lat.max_ms, 3).c_str(),
      json_number(lat.p50_ms, 3).c_str(), json_number(lat.p99_ms, 3).c_str(),
      codes_json.c_str());
  if (std::fflush(stdout) != 0) {
    std::perror("h2pool: writing to stdout");
    return kExitFailure;
  }
  return failed == 0 ? kExitOk : kExitFailure;
}

} // namespace h2pool_cli
