// Name resolution under a slow or silent DNS: no endpoint waits for
// another endpoint's lookup, and every lookup has a deadline.
//
// The binary is linked with -Wl,--wrap=getaddrinfo, so the library's
// getaddrinfo() calls land in __wrap_getaddrinfo below: names under
// ".test" are answered here (127.0.0.1; "slow*" ones only once the test
// opens a gate), everything else goes to the real resolver. No lookup
// leaves the machine.
#include "fault_util.h"
#include "loop.h"
#include "resolver.h"
#include "test_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <future>

extern "C" int __real_getaddrinfo(const char *node, const char *service,
                                  const addrinfo *hints, addrinfo **res);

namespace {

std::mutex g_mu;
std::condition_variable g_cv;
bool g_gate_open = false;
int g_in_flight = 0; // lookups under way in the wrapper
int g_peak_in_flight = 0;
int g_calls = 0;

bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

void open_gate() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_gate_open = true;
  }
  g_cv.notify_all();
}

void reset_wrapper() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_gate_open = false;
  g_in_flight = g_peak_in_flight = g_calls = 0;
}

} // namespace

extern "C" int __wrap_getaddrinfo(const char *node, const char *service,
                                  const addrinfo *hints, addrinfo **res) {
  if (!node || !ends_with(node, ".test"))
    return __real_getaddrinfo(node, service, hints, res);
  {
    std::unique_lock<std::mutex> lock(g_mu);
    ++g_calls;
    ++g_in_flight;
    g_peak_in_flight = std::max(g_peak_in_flight, g_in_flight);
    if (strncmp(node, "slow", 4) == 0)
      // A DNS server that does not answer, until the test lets it (bounded,
      // so a failing test cannot leave the thread stuck).
      g_cv.wait_for(lock, std::chrono::seconds(20), [] { return g_gate_open; });
    --g_in_flight;
  }
  addrinfo numeric = hints ? *hints : addrinfo{};
  numeric.ai_flags |= AI_NUMERICHOST;
  return __real_getaddrinfo("127.0.0.1", service, &numeric, res);
}

namespace faults {
namespace {

using h2pool_testing::test_body;
using h2pool_testing::TestServer;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

// Opens the gate when it goes out of scope: declared after the pool's
// Client, it lets a hanging lookup go before the pool is destroyed.
struct GateOpener {
  ~GateOpener() { open_gate(); }
};

class Resolve : public ::testing::Test {
protected:
  void SetUp() override { reset_wrapper(); }
  void TearDown() override {
    open_gate();
    // A lookup a destroyed pool left behind finishes before the next test
    // looks at the counts.
    EXPECT_TRUE(wait_until([] {
      std::lock_guard<std::mutex> lock(g_mu);
      return g_in_flight == 0;
    }));
  }
};

TEST_F(Resolve, SlowLookupDelaysOnlyItsOwnEndpointAndTimesOut) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string port = std::to_string(server.port());
  Config cfg;
  h2pool_config_set_resolve_timeout_ms(cfg, 300);
  Client c(cfg.get());
  GateOpener opener;
  Call &slow = c.get("http://slow.test:" + port + "/");
  Call &fast = c.get("http://fast.test:" + port + "/?size=10&seed=1");
  // The other endpoint is answered while the first lookup hangs.
  WAIT_DONE(fast);
  ASSERT_TRUE(fast.ok) << fast.describe();
  EXPECT_EQ(fast.body, test_body(1, 10));
  {
    std::lock_guard<std::mutex> lock(g_mu);
    EXPECT_EQ(g_in_flight, 1) << "the slow lookup is still under way";
  }
  WAIT_DONE(slow);
  EXPECT_EQ(slow.code, H2POOL_ERR_RESOLVE_TIMEOUT) << slow.describe();
  EXPECT_GE(slow.elapsed(), Ms(250));
  EXPECT_LT(slow.elapsed(), Ms(5000));
  EXPECT_NE(slow.message.find("slow.test"), std::string::npos);
}

// Destroying a pool never waits for a lookup that does not answer.
TEST_F(Resolve, DestroyDoesNotWaitForAHangingLookup) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  Client c(cfg.get());
  Call &call = c.get("http://slow.test:" + std::to_string(server.port()) + "/");
  ASSERT_TRUE(wait_until([] {
    std::lock_guard<std::mutex> lock(g_mu);
    return g_in_flight == 1;
  }));
  auto start = Clock::now();
  c.destroy();
  EXPECT_LT(Clock::now() - start, Ms(2000));
  EXPECT_EQ(call.code, H2POOL_ERR_POOL_CLOSED) << call.describe();
}

TEST_F(Resolve, AnswerArrivingAfterTheDeadlineIsIgnored) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string port = std::to_string(server.port());
  Config cfg;
  h2pool_config_set_resolve_timeout_ms(cfg, 100);
  h2pool_config_set_reconnect_backoff(cfg, 1, 2);
  Client c(cfg.get());
  Call &first = c.get("http://slow.test:" + port + "/");
  WAIT_DONE(first);
  EXPECT_EQ(first.code, H2POOL_ERR_RESOLVE_TIMEOUT) << first.describe();
  open_gate(); // the late answer arrives; nothing may act on it
  Call &second = c.get("http://slow.test:" + port + "/?size=3&seed=3");
  WAIT_DONE(second);
  ASSERT_TRUE(second.ok) << second.describe();
  EXPECT_EQ(second.body, test_body(3, 3));
}

// The resolver itself: lookups run side by side, and identical ones in
// flight share one getaddrinfo() call.
TEST_F(Resolve, SystemResolverRunsLookupsInParallelAndSharesIdenticalOnes) {
  h2pool_core::Loop loop;
  ASSERT_EQ(loop.init([](h2pool_core::Loop::Batch &b) {
    for (auto &task : b.tasks)
      task();
  }),
            H2POOL_OK);
  ASSERT_EQ(loop.start(), H2POOL_OK);
  h2pool_core::SystemResolver resolver(loop);
  constexpr int kLookups = 6;
  std::promise<void> all_done;
  std::atomic<int> answered{0};
  std::atomic<int> ok{0};
  auto done = [&](std::string error, std::vector<h2pool_core::Address> a) {
    if (error.empty() && !a.empty() && a[0].to_string() == "127.0.0.1:80")
      ++ok;
    if (++answered == kLookups)
      all_done.set_value();
  };
  // Lookups start on the loop thread, as the pool makes them.
  ASSERT_EQ(loop.post([&] {
    resolver.resolve("slow-a.test", 80, done);
    resolver.resolve("slow-b.test", 80, done);
    resolver.resolve("slow-c.test", 80, done);
    for (int i = 0; i < 3; ++i)
      resolver.resolve("slow-same.test", 80, done);
  }),
            H2POOL_OK);
  ASSERT_TRUE(wait_until([] {
    std::lock_guard<std::mutex> lock(g_mu);
    return g_in_flight == 4;
  })) << "four distinct lookups should be under way at once";
  open_gate();
  auto fut = all_done.get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(ok.load(), kLookups);
  std::lock_guard<std::mutex> lock(g_mu);
  EXPECT_EQ(g_calls, 4); // slow-same.test once for its three callers
  EXPECT_EQ(g_peak_in_flight, 4);
  loop.close([&loop] { loop.stop(); });
  loop.join();
  resolver.shutdown();
}

} // namespace
} // namespace faults
