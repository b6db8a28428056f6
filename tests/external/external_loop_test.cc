// Pools on the caller's loop: h2pool_create_on_base() (the caller's libevent
// base) and h2pool_create_external() (any loop, here a plain epoll loop, told
// which descriptors to watch and when to call in). Against the scriptable
// test server on loopback; every loop here runs under a deadline.
#include <gtest/gtest.h>

#include <dirent.h>
#include <event2/event.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dns_responder.h"
#include "h2pool.h"
#include "self_signed_cert.h"
#include "test_server.h"

namespace {

using h2pool_testing::DnsResponder;
using h2pool_testing::SelfSignedCert;
using h2pool_testing::ServerOptions;
using h2pool_testing::test_body;
using h2pool_testing::TestServer;
using Clock = std::chrono::steady_clock;

constexpr auto kBudget = std::chrono::seconds(20);

int thread_count() {
  int n = 0;
  if (DIR *d = opendir("/proc/self/task")) {
    while (dirent *e = readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    closedir(d);
  }
  return n;
}

// One request's outcome, written by its completion callback.
struct Outcome {
  int calls = 0;
  int code = 1; // H2POOL_OK or the error's code once called
  int status = 0;
  std::string body;
  std::thread::id thread;
  std::function<void()> then; // runs inside the callback, after recording
};

void record(const h2pool_response *resp, const h2pool_error *err, void *ud) {
  auto *o = static_cast<Outcome *>(ud);
  ++o->calls;
  o->thread = std::this_thread::get_id();
  if (err) {
    o->code = h2pool_error_code(err);
  } else {
    o->code = H2POOL_OK;
    o->status = h2pool_response_status(resp);
    size_t n = 0;
    const uint8_t *b = h2pool_response_body(resp, &n);
    o->body.assign(reinterpret_cast<const char *>(b), n);
  }
  if (o->then)
    o->then();
}

int submit(h2pool *pool, const std::string &url, Outcome &o,
           const h2pool_request_opts *opts = nullptr) {
  return h2pool_request(pool, "GET", url.c_str(), nullptr, 0, nullptr, 0, opts,
                        record, &o, nullptr);
}

// Requests the server holds for 10 s: still under way when a test destroys
// the pool.
void submit_held(h2pool *pool, const std::string &url,
                 std::vector<Outcome> &out) {
  for (Outcome &o : out)
    ASSERT_EQ(submit(pool, url, o), H2POOL_OK);
}

// What a destroy owes each request it cut short: one completion, POOL_CLOSED.
void expect_closed_once(const std::vector<Outcome> &out) {
  for (const Outcome &o : out) {
    EXPECT_EQ(o.calls, 1);
    EXPECT_EQ(o.code, H2POOL_ERR_POOL_CLOSED);
  }
}

bool all_done(const std::vector<Outcome> &v) {
  for (const Outcome &o : v)
    if (o.calls == 0)
      return false;
  return true;
}

// Log lines, for "pool destroyed" (the pool's last words).
struct Log {
  std::mutex mu;
  std::vector<std::string> lines;
  static void cb(int, const char *msg, void *ud) {
    auto *l = static_cast<Log *>(ud);
    std::lock_guard<std::mutex> lock(l->mu);
    l->lines.emplace_back(msg);
  }
  bool has(const std::string &s) {
    std::lock_guard<std::mutex> lock(mu);
    for (const std::string &l : lines)
      if (l.find(s) != std::string::npos)
        return true;
    return false;
  }
};

// ---------------------------------------------------------------------------
// The caller's libevent base.

class OnBase : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(server_.start(), 0);
    base_ = event_base_new();
    ASSERT_NE(base_, nullptr);
    ASSERT_EQ(h2pool_config_new(&cfg_), H2POOL_OK);
    h2pool_config_set_log(cfg_, Log::cb, H2POOL_LOG_DEBUG, &log_);
  }
  void TearDown() override {
    if (pool_)
      h2pool_destroy(pool_);
    h2pool_config_free(cfg_);
    event_base_free(base_);
  }
  // Dispatches the base until `done()` holds or the budget runs out;
  // returns whether it held.
  template <typename Done> bool run_until(Done done) {
    auto deadline = Clock::now() + kBudget;
    while (!done()) {
      if (Clock::now() > deadline)
        return false;
      timeval tick{0, 20000};
      event_base_loopexit(base_, &tick);
      event_base_dispatch(base_);
    }
    return true;
  }
  std::string url(const std::string &path) { return server_.base_url() + path; }

  TestServer server_;
  event_base *base_ = nullptr;
  h2pool_config *cfg_ = nullptr;
  h2pool *pool_ = nullptr;
  Log log_;
};

TEST_F(OnBase, RequestsCompleteOnTheDispatchingThreadWithNoThreadOfOurs) {
  int threads_before = thread_count();
  ASSERT_EQ(h2pool_create_on_base(cfg_, base_, &pool_), H2POOL_OK);
  std::vector<Outcome> out(40);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(submit(pool_,
                     url("/?size=" + std::to_string(1000 + i) +
                         "&seed=" + std::to_string(i)),
                     out[i]),
              H2POOL_OK);
  ASSERT_TRUE(run_until([&] { return all_done(out); }));
  EXPECT_EQ(thread_count(), threads_before) << "the pool started a thread";
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].calls, 1);
    ASSERT_EQ(out[i].code, H2POOL_OK) << i;
    EXPECT_EQ(out[i].body, test_body(i, 1000 + i));
    EXPECT_EQ(out[i].thread, std::this_thread::get_id());
  }
}

TEST_F(OnBase, SubmissionsFromAnotherThreadWakeTheBase) {
  ASSERT_EQ(h2pool_create_on_base(cfg_, base_, &pool_), H2POOL_OK);
  std::vector<Outcome> out(50);
  std::atomic<int> refused{0};
  std::thread submitter([&] {
    for (size_t i = 0; i < out.size(); ++i)
      if (submit(pool_, url("/?size=64&seed=" + std::to_string(i)), out[i]) !=
          H2POOL_OK)
        ++refused;
  });
  bool done = run_until([&] { return all_done(out) || refused > 0; });
  submitter.join();
  ASSERT_TRUE(done);
  ASSERT_EQ(refused.load(), 0);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].calls, 1);
    EXPECT_EQ(out[i].body, test_body(i, 64));
  }
}

TEST_F(OnBase, DestroyBetweenTurnsCompletesEverythingBeforeReturning) {
  ASSERT_EQ(h2pool_create_on_base(cfg_, base_, &pool_), H2POOL_OK);
  std::vector<Outcome> out(5);
  submit_held(pool_, url("/?delay_ms=10000"), out);
  ASSERT_TRUE(
      server_.wait_for_stats(
          [&](const h2pool_testing::ServerStats &s) { return s.requests >= 1; },
          std::chrono::milliseconds(1)) ||
      run_until([&] { return server_.stats().requests >= 5; }));
  h2pool_destroy(pool_);
  pool_ = nullptr;
  expect_closed_once(out);
  EXPECT_TRUE(log_.has("pool destroyed"));
  // Nothing of the pool is left on the base.
  EXPECT_EQ(event_base_get_num_events(base_, EVENT_BASE_COUNT_ADDED), 0);
}

TEST_F(OnBase, DestroyFromACallbackFinishesOnTheNextTurn) {
  ASSERT_EQ(h2pool_create_on_base(cfg_, base_, &pool_), H2POOL_OK);
  std::vector<Outcome> slow(4);
  submit_held(pool_, url("/?delay_ms=10000"), slow);
  Outcome first;
  h2pool *pool = pool_;
  first.then = [pool] { h2pool_destroy(pool); };
  ASSERT_EQ(submit(pool_, url("/?size=10"), first), H2POOL_OK);
  ASSERT_TRUE(run_until([&] { return log_.has("pool destroyed"); }));
  pool_ = nullptr;
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(first.code, H2POOL_OK);
  expect_closed_once(slow);
  EXPECT_EQ(event_base_get_num_events(base_, EVENT_BASE_COUNT_ADDED), 0);
}

TEST_F(OnBase, DestroyFromAnotherThreadFinishesOnTheLoop) {
  ASSERT_EQ(h2pool_create_on_base(cfg_, base_, &pool_), H2POOL_OK);
  std::vector<Outcome> slow(3);
  submit_held(pool_, url("/?delay_ms=10000"), slow);
  ASSERT_TRUE(run_until([&] { return server_.stats().requests >= 3; }));
  h2pool *pool = pool_;
  pool_ = nullptr;
  std::thread([pool] { h2pool_destroy(pool); }).join();
  ASSERT_TRUE(run_until([&] { return log_.has("pool destroyed"); }));
  expect_closed_once(slow);
}

// ---------------------------------------------------------------------------
// A plain epoll loop driving an external pool.

class EpollLoop {
public:
  EpollLoop() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~EpollLoop() { close(ep_); }

  static void socket_cb(int fd, int what, void *ud) {
    auto *l = static_cast<EpollLoop *>(ud);
    epoll_event ev{};
    ev.data.fd = fd;
    if (what == H2POOL_POLL_REMOVE) {
      l->watched_.erase(fd);
      epoll_ctl(l->ep_, EPOLL_CTL_DEL, fd, &ev);
      return;
    }
    if (what & ~H2POOL_POLL_INOUT)
      ++l->bad_reports_;
    ev.events = ((what & H2POOL_POLL_IN) ? uint32_t(EPOLLIN) : 0u) |
                ((what & H2POOL_POLL_OUT) ? uint32_t(EPOLLOUT) : 0u);
    bool known = l->watched_.count(fd) != 0;
    l->watched_[fd] = what;
    if (epoll_ctl(l->ep_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
      ++l->bad_reports_;
  }
  static void timer_cb(long ms, void *ud) {
    auto *l = static_cast<EpollLoop *>(ud);
    ++l->timer_calls_;
    if (ms < -1)
      ++l->bad_reports_;
    l->has_timer_ = ms >= 0;
    l->timer_at_ = Clock::now() + std::chrono::milliseconds(ms < 0 ? 0 : ms);
  }
  void configure(h2pool_config *cfg) {
    h2pool_config_set_socket_callback(cfg, socket_cb, this);
    h2pool_config_set_timer_callback(cfg, timer_cb, this);
  }

  // Runs one epoll_wait and the actions it calls for. Returns the last
  // h2pool_socket_action() result (H2POOL_POOL_FREED ends the pool).
  int turn(h2pool *pool) {
    int wait_ms = 20;
    if (has_timer_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      timer_at_ - Clock::now())
                      .count();
      wait_ms = int(std::max<long>(0, std::min<long>(left, wait_ms)));
    }
    epoll_event evs[64];
    int n = epoll_wait(ep_, evs, 64, wait_ms);
    int rc = H2POOL_OK;
    for (int i = 0; i < n && rc == H2POOL_OK; ++i) {
      int events =
          ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? H2POOL_POLL_IN
                                                             : 0) |
          ((evs[i].events & EPOLLOUT) ? H2POOL_POLL_OUT : 0);
      rc = h2pool_socket_action(pool, evs[i].data.fd, events);
    }
    if (rc == H2POOL_OK && has_timer_ && Clock::now() >= timer_at_) {
      has_timer_ = false;
      rc = h2pool_socket_action(pool, H2POOL_SOCKET_TIMEOUT, 0);
    }
    return rc;
  }
  template <typename Done> bool run_until(h2pool *pool, Done done) {
    auto deadline = Clock::now() + kBudget;
    while (!done()) {
      if (Clock::now() > deadline)
        return false;
      int rc = turn(pool);
      if (rc != H2POOL_OK) {
        last_rc_ = rc;
        return done();
      }
    }
    return true;
  }

  std::map<int, int> watched_;
  bool has_timer_ = false;
  Clock::time_point timer_at_;
  int timer_calls_ = 0, bad_reports_ = 0;
  int last_rc_ = H2POOL_OK;

private:
  int ep_;
};

class External : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(h2pool_config_new(&cfg_), H2POOL_OK);
    h2pool_config_set_log(cfg_, Log::cb, H2POOL_LOG_DEBUG, &log_);
    loop_.configure(cfg_);
  }
  void TearDown() override {
    if (pool_)
      h2pool_destroy(pool_);
    h2pool_config_free(cfg_);
  }
  void start_server(ServerOptions opts = {}) {
    server_ = std::make_unique<TestServer>(std::move(opts));
    ASSERT_EQ(server_->start(), 0);
  }
  void create() {
    ASSERT_EQ(h2pool_create_external(cfg_, &pool_), H2POOL_OK);
    // The wake-up eventfd is watched from the start.
    ASSERT_EQ(loop_.watched_.size(), 1u);
  }
  void start(ServerOptions opts = {}) {
    start_server(std::move(opts));
    create();
  }
  std::string url(const std::string &path) {
    return server_->base_url() + path;
  }

  std::unique_ptr<TestServer> server_;
  h2pool_config *cfg_ = nullptr;
  h2pool *pool_ = nullptr;
  EpollLoop loop_;
  Log log_;
};

TEST_F(External, EpollLoopCompletesEveryRequestOnItsThread) {
  start_server();
  int threads_before = thread_count();
  create();
  std::vector<Outcome> out(60);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(submit(pool_,
                     url("/?size=" + std::to_string(20000 + i) +
                         "&seed=" + std::to_string(i)),
                     out[i]),
              H2POOL_OK);
  ASSERT_TRUE(loop_.run_until(pool_, [&] { return all_done(out); }));
  EXPECT_EQ(thread_count(), threads_before) << "the pool started a thread";
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].calls, 1);
    ASSERT_EQ(out[i].code, H2POOL_OK) << i;
    EXPECT_EQ(out[i].body, test_body(i, 20000 + i));
    EXPECT_EQ(out[i].thread, std::this_thread::get_id());
  }
  EXPECT_EQ(loop_.bad_reports_, 0);
  // The connection's socket was reported beside the eventfd.
  EXPECT_GE(loop_.watched_.size(), 2u);
}

TEST_F(External, RequestTimeoutFiresThroughTheTimerCallback) {
  start();
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_timeout_ms(opts, 200);
  Outcome o;
  ASSERT_EQ(submit(pool_, url("/?delay_ms=10000"), o, opts), H2POOL_OK);
  h2pool_request_opts_free(opts);
  auto t0 = Clock::now();
  ASSERT_TRUE(loop_.run_until(pool_, [&] { return o.calls > 0; }));
  EXPECT_EQ(o.code, H2POOL_ERR_TIMEOUT);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(190));
  EXPECT_GT(loop_.timer_calls_, 0);
}

TEST_F(External, DestroyBetweenTurnsReportsEveryDescriptorRemoved) {
  start();
  std::vector<Outcome> slow(4);
  submit_held(pool_, url("/?delay_ms=10000"), slow);
  ASSERT_TRUE(loop_.run_until(
      pool_, [&] { return server_->stats().requests >= slow.size(); }));
  ASSERT_GE(loop_.watched_.size(), 2u);
  h2pool_destroy(pool_);
  pool_ = nullptr;
  expect_closed_once(slow);
  EXPECT_TRUE(loop_.watched_.empty());
  EXPECT_FALSE(loop_.has_timer_);
  EXPECT_TRUE(log_.has("pool destroyed"));
}

TEST_F(External, DestroyFromACallbackFreesThePoolAtTheEndOfThePass) {
  start();
  std::vector<Outcome> slow(3);
  submit_held(pool_, url("/?delay_ms=10000"), slow);
  Outcome first;
  h2pool *pool = pool_;
  first.then = [pool] { h2pool_destroy(pool); };
  ASSERT_EQ(submit(pool_, url("/?size=10"), first), H2POOL_OK);
  loop_.run_until(pool_, [] { return false; });
  EXPECT_EQ(loop_.last_rc_, H2POOL_POOL_FREED);
  pool_ = nullptr;
  EXPECT_EQ(first.code, H2POOL_OK);
  expect_closed_once(slow);
  EXPECT_TRUE(loop_.watched_.empty());
  EXPECT_FALSE(loop_.has_timer_);
  EXPECT_TRUE(log_.has("pool destroyed"));
}

TEST_F(External, DestroyFromAnotherThreadIsFinishedByTheNextAction) {
  start();
  std::vector<Outcome> slow(3);
  submit_held(pool_, url("/?delay_ms=10000"), slow);
  ASSERT_TRUE(loop_.run_until(
      pool_, [&] { return server_->stats().requests >= slow.size(); }));
  h2pool *pool = pool_;
  pool_ = nullptr;
  std::thread([pool] { h2pool_destroy(pool); }).join();
  // The destroying thread only woke the loop: the pool ends in an action.
  loop_.run_until(pool, [] { return false; });
  EXPECT_EQ(loop_.last_rc_, H2POOL_POOL_FREED);
  expect_closed_once(slow);
  EXPECT_TRUE(loop_.watched_.empty());
}

TEST_F(External, StatsFromAnotherThreadAreAnsweredByTheLoop) {
  start();
  Outcome o;
  ASSERT_EQ(submit(pool_, url("/?size=5"), o), H2POOL_OK);
  ASSERT_TRUE(loop_.run_until(pool_, [&] { return o.calls > 0; }));
  std::atomic<bool> got{false};
  uint64_t completed = 0;
  std::thread asker([&] {
    h2pool_stats *st = nullptr;
    if (h2pool_stats_get(pool_, &st) == H2POOL_OK) {
      completed = h2pool_stats_value(st, H2POOL_STAT_REQUESTS_COMPLETED);
      h2pool_stats_free(st);
    }
    got = true;
  });
  bool answered = loop_.run_until(pool_, [&] { return got.load(); });
  asker.join();
  ASSERT_TRUE(answered);
  EXPECT_EQ(completed, 1u);
}

TEST_F(External, NameLookupsRunOnTheCallersLoop) {
  DnsResponder dns;
  ASSERT_TRUE(dns.ok());
  DnsResponder::Record r;
  r.v4 = {"127.0.0.1"};
  dns.set("ext.test", r);
  ASSERT_EQ(h2pool_config_set_dns_servers(cfg_, dns.server().c_str()),
            H2POOL_OK);
  start();
  Outcome o;
  std::string u = "http://ext.test:" + std::to_string(server_->port()) +
                  "/?size=300&seed=3";
  ASSERT_EQ(submit(pool_, u, o), H2POOL_OK);
  bool done = loop_.run_until(pool_, [&] { return o.calls > 0; });
  ASSERT_TRUE(done);
  ASSERT_EQ(o.code, H2POOL_OK);
  EXPECT_EQ(o.body, test_body(3, 300));
  EXPECT_GE(dns.questions("ext.test"), 1);
}

// Writing to a peer that reset the connection, on the caller's thread, where
// SIGPIPE is not blocked: over TLS the write goes through h2pool's own
// socket BIO, which sends with MSG_NOSIGNAL (a SIGPIPE would end this
// process).
TEST_F(External, UploadToAServerThatHangsUpRaisesNoSigpipe) {
  SelfSignedCert cert("IP:127.0.0.1");
  ASSERT_TRUE(cert.ok());
  ServerOptions opts;
  opts.tls_cert_file = cert.cert_file();
  opts.tls_key_file = cert.key_file();
  opts.connection.initial_window_size = 1u << 30;
  ASSERT_EQ(h2pool_config_set_tls_ca_file(cfg_, cert.cert_file().c_str()),
            H2POOL_OK);
  start(opts);
  std::string body(16 << 20, 'x');
  Outcome o;
  std::string u = "https://127.0.0.1:" + std::to_string(server_->port()) +
                  "/?drop=reset&fault_at=before";
  ASSERT_EQ(h2pool_request(pool_, "POST", u.c_str(), nullptr, 0,
                           reinterpret_cast<const uint8_t *>(body.data()),
                           body.size(), nullptr, record, &o, nullptr),
            H2POOL_OK);
  ASSERT_TRUE(loop_.run_until(pool_, [&] { return o.calls > 0; }));
  EXPECT_NE(o.code, H2POOL_OK);
}

// ---------------------------------------------------------------------------
// Arguments.

void no_socket(int, int, void *) {}
void no_timer(long, void *) {}

TEST(CallersLoopArgs, EveryBadArgumentIsRefused) {
  h2pool *pool = reinterpret_cast<h2pool *>(0x1);
  EXPECT_EQ(h2pool_create_on_base(nullptr, nullptr, &pool),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(pool, nullptr);
  event_base *base = event_base_new();
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(h2pool_create_on_base(nullptr, base, nullptr),
            H2POOL_ERR_INVALID_ARGUMENT);

  h2pool_config *cfg = nullptr;
  ASSERT_EQ(h2pool_config_new(&cfg), H2POOL_OK);
  EXPECT_EQ(h2pool_config_set_socket_callback(nullptr, no_socket, nullptr),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_config_set_timer_callback(nullptr, no_timer, nullptr),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_create_external(nullptr, &pool),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_create_external(cfg, &pool), H2POOL_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(h2pool_config_set_socket_callback(cfg, no_socket, nullptr),
            H2POOL_OK);
  EXPECT_EQ(h2pool_create_external(cfg, &pool), H2POOL_ERR_INVALID_ARGUMENT)
      << "no timer callback";
  ASSERT_EQ(h2pool_config_set_timer_callback(cfg, no_timer, nullptr),
            H2POOL_OK);
  EXPECT_EQ(h2pool_create_external(cfg, nullptr), H2POOL_ERR_INVALID_ARGUMENT);

  EXPECT_EQ(h2pool_socket_action(nullptr, 3, H2POOL_POLL_IN),
            H2POOL_ERR_INVALID_ARGUMENT);
  h2pool *threaded = nullptr;
  ASSERT_EQ(h2pool_create(nullptr, &threaded), H2POOL_OK);
  EXPECT_EQ(h2pool_socket_action(threaded, H2POOL_SOCKET_TIMEOUT, 0),
            H2POOL_ERR_INVALID_ARGUMENT);
  h2pool_destroy(threaded);
  h2pool *on_base = nullptr;
  ASSERT_EQ(h2pool_create_on_base(nullptr, base, &on_base), H2POOL_OK);
  EXPECT_EQ(h2pool_socket_action(on_base, H2POOL_SOCKET_TIMEOUT, 0),
            H2POOL_ERR_INVALID_ARGUMENT);
  h2pool_destroy(on_base);

  h2pool *ext = nullptr;
  ASSERT_EQ(h2pool_create_external(cfg, &ext), H2POOL_OK);
  EXPECT_EQ(h2pool_socket_action(ext, -2, 0), H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_socket_action(ext, 3, 8), H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_socket_action(ext, H2POOL_SOCKET_TIMEOUT, 0), H2POOL_OK);
  h2pool_destroy(ext);
  h2pool_config_free(cfg);
  event_base_free(base);
}

TEST_F(External, ActionFromInsideACallbackIsRefused) {
  start();
  Outcome o;
  h2pool *pool = pool_;
  int inner = 1;
  o.then = [pool, &inner] {
    inner = h2pool_socket_action(pool, H2POOL_SOCKET_TIMEOUT, 0);
  };
  ASSERT_EQ(submit(pool_, url("/?size=5"), o), H2POOL_OK);
  ASSERT_TRUE(loop_.run_until(pool_, [&] { return o.calls > 0; }));
  EXPECT_EQ(inner, H2POOL_ERR_INVALID_ARGUMENT);
}

} // namespace
