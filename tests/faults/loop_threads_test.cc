// Pools with several loop threads (h2pool_config_set_loop_threads): requests
// spread over the loops in turn, a callback's own submissions stay on its
// loop, calls naming a request id reach the loop holding it, the statistics
// are one view of every loop, and destruction ends every loop (also from a
// callback on one of them). Each accepted request still gets exactly one
// completion. These also run under the TSan build, which is where a loop
// touching another's state would show.
#include "fault_util.h"
#include "test_server.h"

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace faults {
namespace {

using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

// A completion seen on some thread: which, and how often.
struct Seen {
  std::atomic<int> calls{0};
  std::atomic<int> code{1};
  std::thread::id thread;
  uint64_t id = 0;
  uint64_t connection = 0;
};

void seen_cb(const h2pool_response *resp, const h2pool_error *err, void *ud) {
  auto s = static_cast<Seen *>(ud);
  s->thread = std::this_thread::get_id();
  if (resp)
    s->connection = h2pool_response_connection_id(resp);
  s->code.store(err ? h2pool_error_code(err) : H2POOL_OK);
  s->calls.fetch_add(1);
}

// Submits one GET of `url` per element of `seen`, each reporting to it.
bool submit_all(h2pool *pool, const std::string &url, std::vector<Seen> &seen) {
  for (Seen &s : seen)
    if (h2pool_request(pool, "GET", url.c_str(), nullptr, 0, nullptr, 0,
                       nullptr, seen_cb, &s, &s.id) != H2POOL_OK)
      return false;
  return true;
}

bool all_done(const std::vector<Seen> &seen) {
  for (const Seen &s : seen)
    if (s.calls.load() == 0)
      return false;
  return true;
}

class LoopThreads : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(server_.start(), 0);
    base_ = server_.base_url();
  }
  h2pool *make_pool(uint32_t loops, uint32_t max_connections) {
    Config cfg;
    EXPECT_EQ(h2pool_config_set_loop_threads(cfg, loops), H2POOL_OK);
    EXPECT_EQ(
        h2pool_config_set_max_connections_per_endpoint(cfg, max_connections),
        H2POOL_OK);
    h2pool *pool = nullptr;
    EXPECT_EQ(h2pool_create(cfg, &pool), H2POOL_OK);
    return pool;
  }
  TestServer server_{ServerOptions{}};
  std::string base_;
};

// Three loops, one connection each: every loop carries a third of the
// requests, on one thread of its own, and the pool's figures add them up.
TEST_F(LoopThreads, RequestsSpreadOverEveryLoop) {
  h2pool *pool = make_pool(3, 3);
  ASSERT_NE(pool, nullptr);
  std::vector<Seen> seen(60);
  std::string url = base_ + "/spread?delay_ms=20";
  ASSERT_TRUE(submit_all(pool, url, seen));
  ASSERT_TRUE(wait_until([&] { return all_done(seen); }));

  // The loop's index is the id's low two bits (four slots for three loops).
  std::map<uint64_t, std::set<std::thread::id>> threads_of_loop;
  std::map<uint64_t, std::set<uint64_t>> connections_of_loop;
  std::set<uint64_t> connections;
  std::map<uint64_t, int> requests_of_loop;
  std::set<uint64_t> ids;
  for (const Seen &s : seen) {
    EXPECT_EQ(s.calls.load(), 1);
    EXPECT_EQ(s.code.load(), H2POOL_OK);
    threads_of_loop[s.id & 3].insert(s.thread);
    ++requests_of_loop[s.id & 3];
    connections_of_loop[s.id & 3].insert(s.connection);
    connections.insert(s.connection);
    ids.insert(s.id);
  }
  EXPECT_EQ(ids.size(), seen.size()) << "request ids are unique";
  ASSERT_EQ(requests_of_loop.size(), 3u);
  std::set<std::thread::id> threads;
  for (auto &[loop, count] : requests_of_loop) {
    EXPECT_LT(loop, 3u);
    EXPECT_EQ(count, 20) << "loop " << loop;
    EXPECT_EQ(threads_of_loop[loop].size(), 1u) << "loop " << loop;
    EXPECT_EQ(connections_of_loop[loop].size(), 1u) << "loop " << loop;
    threads.insert(*threads_of_loop[loop].begin());
  }
  EXPECT_EQ(threads.size(), 3u) << "each loop has a thread of its own";
  EXPECT_EQ(connections.size(), 3u) << "connection ids are the pool's";
  EXPECT_EQ(connections.count(0), 0u);
  // Ids whose low bits name no loop (3 of 0..3) are no request of the pool:
  // answered as any unknown id is.
  EXPECT_EQ(h2pool_cancel(pool, 3), H2POOL_OK);
  EXPECT_EQ(h2pool_request_set_priority(pool, 7, 1, 0), H2POOL_OK);
  EXPECT_EQ(h2pool_request_pause_download(pool, 11), H2POOL_OK);
  EXPECT_NE(threads.count(std::this_thread::get_id()), 1u);

  // A limit of 3 shared out over 3 loops: one connection each.
  EXPECT_EQ(server_.stats().connections_accepted, 3u);
  h2pool_stats *stats = nullptr;
  ASSERT_EQ(h2pool_stats_get(pool, &stats), H2POOL_OK);
  EXPECT_EQ(h2pool_stats_value(stats, H2POOL_STAT_REQUESTS_COMPLETED), 60u);
  EXPECT_EQ(h2pool_stats_value(stats, H2POOL_STAT_CONNECTIONS_OPEN), 3u);
  EXPECT_EQ(h2pool_stats_value(stats, H2POOL_STAT_CONNECTIONS_CREATED), 3u);
  ASSERT_EQ(h2pool_stats_endpoint_count(stats), 1u) << "one endpoint, once";
  EXPECT_EQ(
      h2pool_stats_endpoint_value(stats, 0, H2POOL_STAT_REQUESTS_COMPLETED),
      60u);
  EXPECT_EQ(h2pool_stats_endpoint_state(stats, 0), H2POOL_ENDPOINT_READY);
  h2pool_stats_free(stats);
  h2pool_destroy(pool);
}

// A request submitted from a completion callback goes to the loop running
// the callback, and a stats snapshot cannot be taken from there.
struct Chain {
  h2pool *pool = nullptr;
  std::string url;
  Seen first, second;
  std::atomic<int> stats_rc{1};
};

void second_cb(const h2pool_response *resp, const h2pool_error *err, void *ud) {
  seen_cb(resp, err, &static_cast<Chain *>(ud)->second);
}

void first_cb(const h2pool_response *resp, const h2pool_error *err, void *ud) {
  auto c = static_cast<Chain *>(ud);
  h2pool_stats *stats = nullptr;
  c->stats_rc.store(h2pool_stats_get(c->pool, &stats));
  h2pool_stats_free(stats);
  int rc = h2pool_request(c->pool, "GET", c->url.c_str(), nullptr, 0, nullptr,
                          0, nullptr, second_cb, c, &c->second.id);
  if (rc != H2POOL_OK)
    c->second.code.store(rc);
  seen_cb(resp, err, &c->first);
}

TEST_F(LoopThreads, CallbackSubmissionsStayOnTheirLoop) {
  h2pool *pool = make_pool(2, 2);
  ASSERT_NE(pool, nullptr);
  std::vector<Chain> chains(8);
  for (Chain &c : chains) {
    c.pool = pool;
    c.url = base_ + "/chain";
    ASSERT_EQ(h2pool_request(pool, "GET", c.url.c_str(), nullptr, 0, nullptr, 0,
                             nullptr, first_cb, &c, &c.first.id),
              H2POOL_OK);
  }
  ASSERT_TRUE(wait_until([&] {
    for (Chain &c : chains)
      if (c.second.calls.load() == 0)
        return false;
    return true;
  }));
  std::set<uint64_t> loops;
  for (Chain &c : chains) {
    EXPECT_EQ(c.first.calls.load(), 1);
    EXPECT_EQ(c.second.calls.load(), 1);
    EXPECT_EQ(c.second.code.load(), H2POOL_OK);
    EXPECT_EQ(c.second.id & 1, c.first.id & 1);
    EXPECT_EQ(c.second.thread, c.first.thread);
    EXPECT_EQ(c.stats_rc.load(), H2POOL_ERR_WRONG_THREAD);
    loops.insert(c.first.id & 1);
  }
  EXPECT_EQ(loops.size(), 2u) << "the first requests used both loops";
  h2pool_destroy(pool);
}

// Cancelling by id reaches whichever loop holds the request.
TEST_F(LoopThreads, CancelReachesTheLoopHoldingTheRequest) {
  h2pool *pool = make_pool(2, 2);
  ASSERT_NE(pool, nullptr);
  std::vector<Seen> seen(6);
  std::string url = base_ + "/held?stall=1&fault_at=before";
  ASSERT_TRUE(submit_all(pool, url, seen));
  ASSERT_TRUE(server_.wait_for_stats(
      [&](const h2pool_testing::ServerStats &st) {
        return st.streams_stalled == seen.size();
      },
      kWait));
  for (Seen &s : seen)
    EXPECT_EQ(h2pool_cancel(pool, s.id), H2POOL_OK);
  ASSERT_TRUE(wait_until([&] { return all_done(seen); }));
  for (Seen &s : seen) {
    EXPECT_EQ(s.calls.load(), 1);
    EXPECT_EQ(s.code.load(), H2POOL_ERR_CANCELLED);
  }
  EXPECT_TRUE(server_.wait_for_stats(
      [&](const h2pool_testing::ServerStats &st) {
        return st.client_resets == seen.size();
      },
      kWait));
  h2pool_destroy(pool);
}

// h2pool_destroy() from a callback on one loop ends the others too: the
// requests they hold complete with POOL_CLOSED, and the pool's last log
// line comes once every loop is gone.
struct Ender {
  h2pool *pool = nullptr;
  Seen seen;
};

void destroying_cb(const h2pool_response *resp, const h2pool_error *err,
                   void *ud) {
  auto e = static_cast<Ender *>(ud);
  seen_cb(resp, err, &e->seen);
  h2pool_destroy(e->pool);
}

std::atomic<bool> g_destroyed{false};

void log_cb(int, const char *msg, void *) {
  if (std::string(msg) == "pool destroyed")
    g_destroyed.store(true);
}

TEST_F(LoopThreads, DestroyFromACallbackEndsEveryLoop) {
  Config cfg;
  ASSERT_EQ(h2pool_config_set_loop_threads(cfg, 2), H2POOL_OK);
  ASSERT_EQ(h2pool_config_set_log(cfg, log_cb, H2POOL_LOG_DEBUG, nullptr),
            H2POOL_OK);
  g_destroyed.store(false);
  h2pool *pool = nullptr;
  ASSERT_EQ(h2pool_create(cfg, &pool), H2POOL_OK);
  std::vector<Seen> held(8);
  std::string stalled = base_ + "/held?stall=1&fault_at=before";
  ASSERT_TRUE(submit_all(pool, stalled, held));
  ASSERT_TRUE(server_.wait_for_stats(
      [&](const h2pool_testing::ServerStats &st) {
        return st.streams_stalled == held.size();
      },
      kWait));
  Ender ender;
  ender.pool = pool;
  std::string url = base_ + "/end";
  ASSERT_EQ(h2pool_request(pool, "GET", url.c_str(), nullptr, 0, nullptr, 0,
                           nullptr, destroying_cb, &ender, &ender.seen.id),
            H2POOL_OK);
  ASSERT_TRUE(wait_until([] { return g_destroyed.load(); }));
  EXPECT_EQ(ender.seen.calls.load(), 1);
  EXPECT_EQ(ender.seen.code.load(), H2POOL_OK);
  std::set<uint64_t> loops;
  for (Seen &s : held) {
    EXPECT_EQ(s.calls.load(), 1);
    EXPECT_EQ(s.code.load(), H2POOL_ERR_POOL_CLOSED);
    loops.insert(s.id & 1);
  }
  EXPECT_EQ(loops.size(), 2u);
}

// Several loops need threads of h2pool's own.
void no_socket(int, int, void *) {}
void no_timer(long, void *) {}

TEST(LoopThreadsConfig, CallersLoopRunsOneLoop) {
  Config cfg;
  ASSERT_EQ(h2pool_config_set_loop_threads(cfg, 2), H2POOL_OK);
  ASSERT_EQ(h2pool_config_set_socket_callback(cfg, no_socket, nullptr),
            H2POOL_OK);
  ASSERT_EQ(h2pool_config_set_timer_callback(cfg, no_timer, nullptr),
            H2POOL_OK);
  h2pool *pool = reinterpret_cast<h2pool *>(1);
  EXPECT_EQ(h2pool_create_external(cfg, &pool), H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(pool, nullptr);
  EXPECT_EQ(h2pool_config_set_loop_threads(cfg, 0),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_config_set_loop_threads(cfg, 65),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_config_set_loop_threads(nullptr, 2),
            H2POOL_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(h2pool_config_set_loop_threads(cfg, 1), H2POOL_OK);
  ASSERT_EQ(h2pool_create_external(cfg, &pool), H2POOL_OK);
  h2pool_destroy(pool);
}

} // namespace
} // namespace faults
