// Chaos: many requests from several threads through one pool against a
// server that randomly sends GOAWAY, refuses streams and drops connections.
// Whatever happens, every request gets exactly one callback, every success
// is byte-exact and every failure carries a code that explains it.
//
// The server's RNG seed is printed; rerun with H2POOL_CHAOS_SEED=<seed> to
// replay the same fault sequence (thread timing still varies).
#include "fault_util.h"
#include "test_server.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <random>

namespace faults {
namespace {

using h2pool_testing::ServerOptions;
using h2pool_testing::ServerStats;
using h2pool_testing::TestServer;

constexpr size_t kRequests = 20000;
constexpr size_t kThreads = 3;
constexpr size_t kWindowPerThread = 48;
constexpr size_t kMaxSize = 8192;

struct Slot {
  uint64_t seed = 0;
  size_t size = 0;
  std::atomic<int> calls{0};
  std::atomic<bool> ok{false};
  std::atomic<bool> exact{false};
  std::atomic<int> code{H2POOL_OK};
  std::string message; // written before calls, read after it
  int64_t http2_code = -1;
  int32_t stream_id = 0;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  std::vector<size_t> in_flight = std::vector<size_t>(kThreads, 0);
};

struct Ticket {
  Slot *slot;
  Shared *shared;
  size_t thread;
};

void on_done(const h2pool_response *resp, const h2pool_error *err,
             void *user_data) {
  auto t = static_cast<Ticket *>(user_data);
  Slot &s = *t->slot;
  if (err) {
    s.code.store(h2pool_error_code(err));
    s.message = h2pool_error_message(err);
    s.http2_code = h2pool_error_http2_code(err);
    s.stream_id = h2pool_error_stream_id(err);
  } else {
    size_t n = 0;
    const uint8_t *b = h2pool_response_body(resp, &n);
    std::vector<uint8_t> want(s.size);
    h2pool_testing::fill_test_body(s.seed, 0, s.size, want.data());
    s.exact.store(n == s.size && std::equal(want.begin(), want.end(), b));
    s.ok.store(true);
  }
  // Counted last: the checker reads the fields once calls != 0.
  s.calls.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(t->shared->mu);
    ++t->shared->done;
    --t->shared->in_flight[t->thread];
  }
  t->shared->cv.notify_all();
}

uint64_t chaos_seed() {
  if (const char *env = std::getenv("H2POOL_CHAOS_SEED"))
    return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// The parameter: h2pool_config_set_retry_idempotent (GETs lost before their
// headers go again, which exercises the retry path much harder).
class Chaos : public ::testing::TestWithParam<bool> {};

TEST_P(Chaos, EveryRequestGetsOneCallbackAndAnExactBodyOrAMeaningfulError) {
  uint64_t seed = chaos_seed();
  std::printf("chaos seed: %llu (H2POOL_CHAOS_SEED=%llu to replay)\n",
              (unsigned long long)seed, (unsigned long long)seed);
  RecordProperty("chaos_seed", std::to_string(seed));
  ServerOptions options;
  options.seed = seed;
  options.record_limit = 0;
  options.record_bodies = false;
  options.chaos.goaway = 0.002;
  options.chaos.refuse = 0.01;
  options.chaos.drop = 0.002;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  std::string base = server.base_url();

  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 4);
  h2pool_config_set_max_retries(cfg, 3);
  h2pool_config_set_request_timeout_ms(cfg, 60000); // a hang fails, not waits
  h2pool_config_set_retry_idempotent(cfg, GetParam() ? 1 : 0);
  auto client = std::make_unique<Client>(cfg.get());

  std::vector<Slot> slots(kRequests);
  std::vector<Ticket> tickets(kRequests);
  Shared shared;
  std::mt19937_64 sizes(seed);
  for (size_t i = 0; i < kRequests; ++i) {
    slots[i].seed = seed * 1000003 + i;
    slots[i].size = size_t(sizes() % (kMaxSize + 1));
  }
  std::atomic<size_t> submitted{0};
  std::atomic<size_t> refused_sync{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < kRequests; i += kThreads) {
        {
          std::unique_lock<std::mutex> lock(shared.mu);
          if (!shared.cv.wait_for(lock, 60s, [&] {
                return shared.in_flight[t] < kWindowPerThread;
              }))
            return; // the checks below report the missing callbacks
          ++shared.in_flight[t];
        }
        tickets[i] = {&slots[i], &shared, t};
        std::string url = base + "/?size=" + std::to_string(slots[i].size) +
                          "&seed=" + std::to_string(slots[i].seed);
        int rc =
            h2pool_request(client->pool(), "GET", url.c_str(), nullptr, 0,
                           nullptr, 0, nullptr, on_done, &tickets[i], nullptr);
        if (rc != H2POOL_OK) {
          refused_sync.fetch_add(1);
          slots[i].code.store(rc);
          std::lock_guard<std::mutex> lock(shared.mu);
          --shared.in_flight[t];
          continue;
        }
        submitted.fetch_add(1);
      }
    });
  }
  for (auto &th : threads)
    th.join();
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    EXPECT_TRUE(shared.cv.wait_for(
        lock, 90s, [&] { return shared.done == submitted.load(); }))
        << "callbacks: " << shared.done << " of " << submitted.load();
  }
  auto elapsed = std::chrono::duration_cast<Ms>(Clock::now() - start);
  uint64_t retried = client->stat(H2POOL_STAT_REQUESTS_RETRIED);
  uint64_t completed = client->stat(H2POOL_STAT_REQUESTS_COMPLETED);
  uint64_t failed_stat = client->stat(H2POOL_STAT_REQUESTS_FAILED);
  uint64_t conns = client->stat(H2POOL_STAT_CONNECTIONS_CREATED);
  // After destroy no callback can come: a duplicate would show now.
  client->destroy();

  EXPECT_EQ(refused_sync.load(), 0u);
  EXPECT_EQ(submitted.load(), kRequests);
  size_t succeeded = 0, failed = 0, not_exact = 0, bad_calls = 0;
  std::map<int, size_t> by_code;
  std::map<int, std::vector<std::string>> samples;
  const std::set<int> allowed = {H2POOL_ERR_CONNECTION_LOST,
                                 H2POOL_ERR_REFUSED_STREAM, H2POOL_ERR_GOAWAY};
  size_t disallowed = 0;
  for (size_t i = 0; i < kRequests; ++i) {
    Slot &s = slots[i];
    if (s.calls.load() != 1) {
      ++bad_calls;
      if (bad_calls <= 5)
        ADD_FAILURE() << "request " << i << " got " << s.calls.load()
                      << " callbacks";
      continue;
    }
    if (s.ok.load()) {
      ++succeeded;
      if (!s.exact.load())
        ++not_exact;
    } else {
      ++failed;
      ++by_code[s.code.load()];
      auto &v = samples[s.code.load()];
      if (v.size() < 3)
        v.push_back("request " + std::to_string(i) + " stream " +
                    std::to_string(s.stream_id) + " http2 " +
                    std::to_string(s.http2_code) + ": " + s.message);
      if (!allowed.count(s.code.load()))
        ++disallowed;
    }
  }
  ServerStats ss = server.stats();
  std::printf("chaos: %zu requests, %zu threads, retry_idempotent %d, "
              "%lld ms\n",
              kRequests, kThreads, int(GetParam()), (long long)elapsed.count());
  std::printf("chaos: succeeded %zu, failed %zu, retried (stats) %llu, "
              "connections %llu\n",
              succeeded, failed, (unsigned long long)retried,
              (unsigned long long)conns);
  for (auto [code, n] : by_code) {
    std::printf("chaos:   failed with %d (%s): %zu\n", code,
                h2pool_strerror(code), n);
    for (const auto &m : samples[code])
      std::printf("chaos:     e.g. %s\n", m.c_str());
  }
  std::printf("chaos: server: goaways %llu, refused %llu, dropped %llu, "
              "connections %llu\n",
              (unsigned long long)ss.goaways_sent,
              (unsigned long long)ss.streams_refused,
              (unsigned long long)ss.connections_dropped,
              (unsigned long long)ss.connections_accepted);
  EXPECT_EQ(bad_calls, 0u);
  EXPECT_EQ(not_exact, 0u);
  EXPECT_EQ(disallowed, 0u);
  EXPECT_EQ(succeeded + failed, kRequests);
  EXPECT_EQ(completed, succeeded);
  EXPECT_EQ(failed_stat, failed);
  // The chaos really happened, and retries absorbed refusals.
  EXPECT_GT(ss.goaways_sent, 0u);
  EXPECT_GT(ss.streams_refused, 0u);
  EXPECT_GT(ss.connections_dropped, 0u);
  EXPECT_GT(retried, 0u);
  EXPECT_GT(succeeded, kRequests / 2);
}

INSTANTIATE_TEST_SUITE_P(Retry, Chaos, ::testing::Bool(), [](const auto &info) {
  return std::string(info.param ? "IdempotentRetry" : "Default");
});

} // namespace
} // namespace faults
