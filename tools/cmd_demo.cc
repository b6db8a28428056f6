// h2pool demo: many multiplexed requests through one pool against the
// embedded test server, every body checked byte for byte.
#include <h2pool.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "load.h"
#include "test_server.h"

namespace h2pool_cli {

const char kDemoUsage[] =
    "Usage: h2pool demo [OPTIONS]\n"
    "\n"
    "Starts the embedded test server on 127.0.0.1 (100 concurrent streams per\n"
    "connection) and sends N multiplexed requests through one pool of at most\n"
    "4 connections. Every request asks for a different body (its own seed and\n"
    "size); every response is checked byte for byte.\n"
    "\n"
    "Options:\n"
    "  -n, --requests N   number of requests (default 5000)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 if every request succeeded and verified, 1 otherwise.\n";

namespace {

constexpr uint32_t kServerStreams = 100;
constexpr uint32_t kPoolConnections = 4;
// Outstanding requests: more than the pool can put on the wire
// (4 x 100 streams), so connections fill up and the rest queue in the pool.
constexpr uint64_t kWindow = 1000;
constexpr size_t kMaxReportedErrors = 5;

uint64_t seed_for(uint64_t i) { return i + 1; }
// 32749 is prime and 7919 is coprime to it, so the first 32749 requests all
// get different sizes, from 1 byte to 32 KiB.
size_t size_for(uint64_t i) { return 1 + (i * 7919) % 32749; }

struct Results {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> verified{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  std::vector<std::string> errors; // the first few, for the report
  uint64_t error_total = 0;

  void add_error(std::string e) {
    std::lock_guard<std::mutex> lock(mu);
    ++error_total;
    if (errors.size() < kMaxReportedErrors) {
      errors.push_back(std::move(e));
    }
  }
};

void draw_progress(uint64_t done, uint64_t total) {
  constexpr int kWidth = 40;
  int filled = total ? static_cast<int>(done * kWidth / total) : kWidth;
  char bar[kWidth + 1];
  std::memset(bar, ' ', kWidth);
  std::memset(bar, '#', static_cast<size_t>(filled));
  bar[kWidth] = '\0';
  std::fprintf(stderr, "\r[%s] %" PRIu64 "/%" PRIu64 " (%3d%%)", bar, done,
               total, total ? static_cast<int>(done * 100 / total) : 100);
  std::fflush(stderr);
}

} // namespace

int cmd_demo(const Args &args) {
  uint64_t n = 5000;
  std::string value;
  ArgCursor cur(args);
  while (!cur.done()) {
    cur.check_help();
    if (cur.value_option("--requests", "-n", value)) {
      n = parse_uint(value, 1, 100'000'000, "-n");
    } else if (auto pos = cur.positional()) {
      throw UsageError("unexpected argument '" + *pos + "'");
    }
  }

  h2pool_testing::ServerOptions sopts;
  sopts.host = "127.0.0.1";
  sopts.port = 0;
  sopts.max_concurrent_streams = kServerStreams;
  sopts.record_limit = 0; // only the counters matter here
  sopts.record_bodies = false;
  h2pool_testing::TestServer server(sopts);
  if (int rc = server.start(); rc != 0) {
    std::fprintf(stderr, "h2pool: cannot start the test server: %s\n",
                 std::strerror(-rc));
    return kExitFailure;
  }
  const std::string base = server.base_url();

  Results results;
  LoadRunner runner(
      n, kWindow,
      [&base](uint64_t i) {
        return base + "/demo/" + std::to_string(i) +
               "?seed=" + std::to_string(seed_for(i)) +
               "&size=" + std::to_string(size_for(i));
      },
      [&results](uint64_t i, const h2pool_response *resp,
                 const h2pool_error *err, int refused, uint64_t) {
        if (refused != 0 || err != nullptr) {
          results.failed.fetch_add(1, std::memory_order_relaxed);
          results.add_error(
              "request " + std::to_string(i) + ": " +
              (err ? describe_error(err) : describe_code(refused)));
          return;
        }
        results.ok.fetch_add(1, std::memory_order_relaxed);
        int status = h2pool_response_status(resp);
        size_t len = 0;
        const uint8_t *body = h2pool_response_body(resp, &len);
        std::string expected =
            h2pool_testing::test_body(seed_for(i), size_for(i));
        if (status == 200 && len == expected.size() &&
            std::memcmp(body, expected.data(), len) == 0) {
          results.verified.fetch_add(1, std::memory_order_relaxed);
          results.bytes.fetch_add(len, std::memory_order_relaxed);
        } else {
          results.add_error(
              "request " + std::to_string(i) + ": status " +
              std::to_string(status) + ", " + std::to_string(len) +
              " bytes, expected 200 and " + std::to_string(expected.size()) +
              " bytes of test_body(" + std::to_string(seed_for(i)) + ")" +
              (len == expected.size() ? " (content differs)" : ""));
        }
      },
      nullptr);

  uint64_t pool_connections = 0, pool_peak_streams = 0, pool_reused = 0;
  {
    ConfigPtr cfg = new_config();
    check(h2pool_config_set_max_connections_per_endpoint(cfg.get(),
                                                         kPoolConnections),
          "h2pool_config_set_max_connections_per_endpoint");
    PoolPtr pool = new_pool(cfg.get());

    const bool progress = isatty(STDERR_FILENO) == 1;
    runner.start(pool.get());
    if (progress) {
      while (!runner.wait_for(std::chrono::milliseconds(100))) {
        draw_progress(runner.completed(), n);
      }
      draw_progress(n, n);
      std::fputc('\n', stderr);
    } else {
      runner.wait();
    }
    if (StatsPtr st = get_stats(pool.get())) {
      pool_connections =
          h2pool_stats_value(st.get(), H2POOL_STAT_CONNECTIONS_CREATED);
      pool_peak_streams =
          h2pool_stats_value(st.get(), H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION);
      pool_reused =
          h2pool_stats_value(st.get(), H2POOL_STAT_CONNECTIONS_REUSED);
    }
    // The pool is destroyed here, before `runner`, which its callbacks use.
  }
  double wall = seconds_between(runner.started_at(), runner.finished_at());
  h2pool_testing::ServerStats sst = server.stats();
  server.stop();

  const uint64_t ok = results.ok.load(), failed = results.failed.load();
  const uint64_t verified = results.verified.load();
  const bool pass = ok == n && verified == n;
  for (const std::string &e : results.errors) {
    std::fprintf(stderr, "h2pool: %s\n", e.c_str());
  }
  if (results.error_total > results.errors.size()) {
    std::fprintf(stderr, "h2pool: ... and %" PRIu64 " more errors\n",
                 results.error_total - results.errors.size());
  }
  std::printf("h2pool demo: %" PRIu64
              " requests through one pool (max %u connections) to %s\n",
              n, kPoolConnections, base.c_str());
  std::printf("  requests:        %" PRIu64 " ok, %" PRIu64 " failed\n", ok,
              failed);
  std::printf(
      "  byte-exact:      %" PRIu64 "/%" PRIu64 " bodies verified (%.1f MiB)\n",
      verified, n, static_cast<double>(results.bytes.load()) / 1048576.0);
  std::printf("  throughput:      %.0f req/s (%.3f s)\n",
              wall > 0 ? static_cast<double>(ok) / wall : 0.0, wall);
  std::printf("  connections:     %" PRIu64 " accepted by server, %" PRIu64
              " created by pool (%" PRIu64 " requests on reused ones)\n",
              sst.connections_accepted, pool_connections, pool_reused);
  std::printf("  streams:         peak %u concurrent per connection at the "
              "server (limit %u), %" PRIu64 " seen by the pool\n",
              sst.peak_concurrent_streams, kServerStreams, pool_peak_streams);
  std::printf("  result:          %s\n", pass ? "PASS" : "FAIL");
  std::fflush(stdout);
  return pass ? kExitOk : kExitFailure;
}

} // namespace h2pool_cli
