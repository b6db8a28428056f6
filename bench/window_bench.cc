// Bulk downloads over a long fat pipe: what adaptive flow-control windows
// (h2pool_config_set_adaptive_window) reach against fixed ones.
//
// The scriptable test server sends the body; a DelayRelay between it and
// the pool adds the round trip and the bottleneck rate of a WAN link
// (tools/server/delay_relay.h), so every WINDOW_UPDATE and PING ACK takes
// that round trip. Each run is a fresh pool (windows start small again),
// one GET of `size` bytes, timed from submission to completion. Printed per
// window policy: the median throughput over the runs, that as a share of
// the link rate, and the largest stream window the pool advertised
// (H2POOL_STAT_PEAK_STREAM_WINDOW).
//
//   window_bench [--rate-mbit N] [--rtt-ms N] [--size-mib N] [--runs N]
//
// Defaults: 100 Mbit/s, 50 ms, 64 MiB, 3 runs. Loopback only.
#include <h2pool.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "delay_relay.h"
#include "test_server.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  double rate_mbit = 100;
  uint32_t rtt_ms = 50;
  uint64_t size_mib = 64;
  int runs = 3;
};

struct Policy {
  const char *name;
  bool adaptive;
  uint32_t stream_window, connection_window;
};

struct Done {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool ok = false;
  size_t bytes = 0;
  std::string error;
};

void on_done(const h2pool_response *resp, const h2pool_error *err,
             void *user_data) {
  auto *d = static_cast<Done *>(user_data);
  std::lock_guard<std::mutex> lock(d->mu);
  d->done = true;
  if (err) {
    d->error = h2pool_error_message(err);
  } else {
    size_t n = 0;
    h2pool_response_body(resp, &n);
    d->bytes = n;
    d->ok = h2pool_response_status(resp) == 200;
  }
  d->cv.notify_all();
}

// One download on a fresh pool: seconds taken (negative on failure) and the
// peak stream window.
double run_once(const Policy &p, const std::string &url, uint64_t size,
                uint64_t *peak_window) {
  h2pool_config *cfg = nullptr;
  h2pool *pool = nullptr;
  if (h2pool_config_new(&cfg) != H2POOL_OK)
    return -1;
  h2pool_config_set_adaptive_window(cfg, p.adaptive ? 1 : 0);
  h2pool_config_set_flow_control_windows(cfg, p.stream_window,
                                         p.connection_window);
  h2pool_config_set_max_response_body_bytes(cfg, size + 1);
  h2pool_config_set_request_timeout_ms(cfg, 600000);
  int rc = h2pool_create(cfg, &pool);
  h2pool_config_free(cfg);
  if (rc != H2POOL_OK) {
    std::fprintf(stderr, "h2pool_create: %s\n", h2pool_strerror(rc));
    return -1;
  }
  Done d;
  auto start = Clock::now();
  rc = h2pool_request(pool, "GET", url.c_str(), nullptr, 0, nullptr, 0, nullptr,
                      on_done, &d, nullptr);
  if (rc != H2POOL_OK) {
    std::fprintf(stderr, "h2pool_request: %s\n", h2pool_strerror(rc));
    h2pool_destroy(pool);
    return -1;
  }
  {
    std::unique_lock<std::mutex> lock(d.mu);
    d.cv.wait(lock, [&] { return d.done; });
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  h2pool_stats *stats = nullptr;
  *peak_window = 0;
  if (h2pool_stats_get(pool, &stats) == H2POOL_OK) {
    *peak_window = h2pool_stats_value(stats, H2POOL_STAT_PEAK_STREAM_WINDOW);
    h2pool_stats_free(stats);
  }
  h2pool_destroy(pool);
  if (!d.ok || d.bytes != size) {
    std::fprintf(stderr, "download failed: %s (%zu bytes)\n", d.error.c_str(),
                 d.bytes);
    return -1;
  }
  return secs;
}

bool parse(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      return false;
    char *end = nullptr;
    double v = std::strtod(argv[++i], &end);
    if (end == argv[i] || *end != '\0' || v <= 0)
      return false;
    if (a == "--rate-mbit")
      o->rate_mbit = v;
    else if (a == "--rtt-ms" && v >= 2)
      o->rtt_ms = uint32_t(v);
    else if (a == "--size-mib")
      o->size_mib = uint64_t(v);
    else if (a == "--runs")
      o->runs = int(v);
    else
      return false;
  }
  return o->size_mib > 0 && o->runs > 0;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (!parse(argc, argv, &o)) {
    std::fprintf(stderr, "usage: window_bench [--rate-mbit N] [--rtt-ms N] "
                         "[--size-mib N] [--runs N]\n");
    return 2;
  }
  h2pool_testing::TestServer server;
  if (server.start() != 0) {
    std::fprintf(stderr, "cannot start the test server\n");
    return 1;
  }
  h2pool_testing::LinkOptions link;
  link.one_way_delay_ms = o.rtt_ms / 2;
  link.rate_bytes_per_sec = uint64_t(o.rate_mbit * 1e6 / 8);
  h2pool_testing::DelayRelay relay(server.port(), link);
  if (!relay.ok()) {
    std::fprintf(stderr, "cannot start the relay\n");
    return 1;
  }
  uint64_t size = o.size_mib << 20;
  std::string url = "http://127.0.0.1:" + std::to_string(relay.port()) +
                    "/bulk?zeros=" + std::to_string(size);
  double link_mb_s = double(link.rate_bytes_per_sec) / 1e6;
  double bdp = double(link.rate_bytes_per_sec) * o.rtt_ms / 1000.0;
  std::printf("link %.0f Mbit/s (%.2f MB/s), RTT %u ms, BDP %.0f KiB; "
              "%llu MiB per download, %d runs each\n",
              o.rate_mbit, link_mb_s, o.rtt_ms, bdp / 1024,
              (unsigned long long)o.size_mib, o.runs);
  std::printf("%-34s %10s %8s %14s\n", "windows", "MB/s", "of link",
              "peak window");
  const Policy policies[] = {
      {"adaptive (default, caps 8/64 MiB)", true, 8u << 20, 64u << 20},
      {"fixed 256 KiB / 1 MiB", false, 256u << 10, 1u << 20},
      {"fixed 8 MiB / 64 MiB", false, 8u << 20, 64u << 20},
  };
  int failures = 0;
  for (const Policy &p : policies) {
    std::vector<double> rates;
    uint64_t peak = 0;
    for (int r = 0; r < o.runs; ++r) {
      uint64_t window = 0;
      double secs = run_once(p, url, size, &window);
      if (secs <= 0) {
        ++failures;
        continue;
      }
      rates.push_back(double(size) / secs / 1e6);
      peak = std::max(peak, window);
    }
    if (rates.empty()) {
      std::printf("%-34s %10s\n", p.name, "failed");
      continue;
    }
    std::sort(rates.begin(), rates.end());
    double median = rates[rates.size() / 2];
    std::printf("%-34s %10.2f %7.0f%% %10llu KiB\n", p.name, median,
                100 * median / link_mb_s, (unsigned long long)(peak >> 10));
  }
  return failures ? 1 : 0;
}
