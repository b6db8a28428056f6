// The fault-schedule simulator: for each seed, a random but reproducible
// schedule of requests, cancellations, time steps, server behaviours
// (refused streams, GOAWAY at any point, resets, connections closed or
// aborted, mid-frame closes, stalls, slow reads, SETTINGS changes,
// silent or broken connections) and name lookups (slow, failing, silent)
// is run against the real pool and scripted test servers on loopback.
// After every step the invariants are checked:
//
//   - every accepted request gets at most one callback, and by the end
//     exactly one; a refused one none;
//   - no request waits past its deadline (plus a scheduling slack);
//   - per endpoint, connections are bounded by what the requests and the
//     reconnect backoff allow (see check_connection_bounds);
//   - memory stays bounded across seeds (RSS).
//
// H2POOL_SIM_SEEDS=N runs seeds 1..N (default 200), H2POOL_SIM_FIRST=K
// starts at K, H2POOL_SIM_SEED=S replays seed S alone and prints its
// schedule, H2POOL_SIM_PARALLEL=P runs P seeds at a time (default 4),
// H2POOL_SIM_SLACK_MS=MS sets the deadline slack (default 400),
// H2POOL_SIM_PACE_TOLERANCE_MS=MS the backoff check's (default 5), and
// H2POOL_SIM_RSS_MB=MB how far RSS may grow past the warm-up (default 64);
// sanitizer builds need more of each. A failing seed is printed with the
// line that replays it. What a seed does is a pure function of the seed;
// only thread timing (and the pool's backoff jitter) varies.
#include <gtest/gtest.h>

#include <event2/event.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backoff.h"
#include "fault_util.h"
#include "h2pool.h"
#include "handles.h"
#include "loop.h"
#include "pool_observer.h"
#include "resolver.h"
#include "test_server.h"
#include "testing_hooks.h"

#if defined(__SANITIZE_ADDRESS__)
// The RSS check needs freed memory back: ASan's default 256 MiB quarantine
// would read as growth that is not the library's.
extern "C" const char *__asan_default_options() {
  return "quarantine_size_mb=16";
}
#endif

namespace sim {
namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;
using h2pool_testing::ConnectionScript;
using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

uint64_t env_u64(const char *name, uint64_t fallback) {
  const char *v = getenv(name);
  return v && *v ? strtoull(v, nullptr, 10) : fallback;
}

uint64_t mix(uint64_t a, uint64_t b) {
  h2pool_core::Rng r(a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull));
  return r.next();
}

// A small deterministic generator for one seed's choices.
class Dice {
public:
  explicit Dice(uint64_t seed) : rng_(seed) {}
  uint64_t below(uint64_t n) { return n ? rng_.next() % n : 0; }
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <typename T> const T &pick(const std::vector<T> &v) {
    return v[below(v.size())];
  }

private:
  h2pool_core::Rng rng_;
};

// --- scripted name lookups ---------------------------------------------

enum class Lookup { ok, delayed, fails, silent, flaky };

// Answers every name with 127.0.0.1 on the loop thread, as each
// endpoint's script says: at once, late, with an error, never, or
// alternating. The answer for the n-th lookup of a host is a function of
// the seed, the host and n.
class ScriptedResolver final : public h2pool_core::Resolver {
public:
  ScriptedResolver(h2pool_core::Loop &loop, uint64_t seed,
                   std::map<std::string, Lookup> modes)
      : loop_(loop), seed_(seed), modes_(std::move(modes)) {}
  ~ScriptedResolver() override { pending_.clear(); }

  void resolve(const std::string &host, uint16_t port,
               Callback callback) override {
    uint64_t n = lookups_[host]++;
    Lookup mode = modes_.count(host) ? modes_[host] : Lookup::ok;
    Dice d(mix(seed_, std::hash<std::string>()(host) + n));
    if (mode == Lookup::flaky)
      mode = (n % 2) ? Lookup::fails : Lookup::ok;
    if (mode == Lookup::silent)
      return; // the connector's deadline ends it
    uint32_t delay = mode == Lookup::delayed ? uint32_t(d.range(5, 150)) : 0;
    auto p = std::make_unique<Pending>();
    p->self = this;
    p->callback = std::move(callback);
    if (mode == Lookup::fails) {
      p->error = "scripted lookup failure for '" + host + "'";
    } else {
      h2pool_core::Address a;
      h2pool_core::parse_ip_literal("127.0.0.1", port, &a);
      p->addresses.push_back(a);
    }
    p->timer.reset(evtimer_new(loop_.base(), fire, p.get()));
    timeval tv = h2pool_core::ms_to_timeval(delay);
    evtimer_add(p->timer.get(), &tv);
    pending_.push_back(std::move(p));
  }
  void shutdown() override {}

private:
  struct Pending {
    ScriptedResolver *self;
    Callback callback;
    std::string error;
    std::vector<h2pool_core::Address> addresses;
    h2pool_core::EventPtr timer;
  };
  static void fire(evutil_socket_t, short, void *arg) {
    auto p = static_cast<Pending *>(arg);
    ScriptedResolver *self = p->self;
    Callback cb = std::move(p->callback);
    std::string error = std::move(p->error);
    std::vector<h2pool_core::Address> addresses = std::move(p->addresses);
    self->pending_.remove_if(
        [p](const std::unique_ptr<Pending> &q) { return q.get() == p; });
    cb(std::move(error), std::move(addresses));
  }

  h2pool_core::Loop &loop_;
  uint64_t seed_;
  std::map<std::string, Lookup> modes_;
  std::map<std::string, uint64_t> lookups_;
  std::list<std::unique_ptr<Pending>> pending_;
};

// --- one seed -----------------------------------------------------------

class SeedRun;

struct Request {
  SeedRun *run = nullptr;
  size_t endpoint = 0;
  std::string method;
  std::string url;
  std::string body;
  // What a success must carry: the echoed body, or test_body(seed, size).
  bool echo = false;
  uint64_t body_seed = 0;
  size_t size = 0;
  int64_t timeout_ms = -1; // -1: none
  uint64_t id = 0;
  int rc = H2POOL_OK; // what h2pool_request returned
  Clock::time_point submitted;
  // Written by the completion callback under the run's mutex.
  int calls = 0;
  int code = H2POOL_OK;
  bool exact = false;
  std::string message;
  Clock::time_point done_at;
};

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  Lookup lookup = Lookup::ok;
};

const char *lookup_name(Lookup l) {
  switch (l) {
  case Lookup::ok:
    return "ok";
  case Lookup::delayed:
    return "delayed";
  case Lookup::fails:
    return "fails";
  case Lookup::silent:
    return "silent";
  case Lookup::flaky:
    return "flaky";
  }
  return "?";
}

// Watches the pool's connections and checks, at each opening, that the
// endpoint's reconnect backoff was kept: after the k-th failed connection
// in a row, the next opens no sooner than the shortest wait the policy
// allows (half of min(max, initial * 2^(k-1))), and only once the
// connections being set up are gone (one probe at a time). A connection
// that serves ends the streak.
class PaceChecker final : public h2pool_core::PoolObserver {
public:
  PaceChecker(h2pool_core::BackoffPolicy policy, Ms tolerance)
      : policy_(policy), tolerance_(tolerance) {}

  void on_connection_event(const std::string &endpoint, uint64_t id,
                           Event event) override {
    auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    State &st = endpoints_[endpoint];
    switch (event) {
    case Event::opened:
      ++opened_;
      if (st.streak > 0) {
        auto waited = std::chrono::duration_cast<Ms>(now - st.last_failure);
        Ms least(policy_.nominal_ms(st.streak) / 2);
        if (waited + tolerance_ < least)
          fail(endpoint + ": connection " + std::to_string(id) + " opened " +
               std::to_string(waited.count()) + " ms after " +
               std::to_string(st.streak) +
               " failed connections in a row; the backoff allows no less "
               "than " +
               std::to_string(least.count()) + " ms");
        if (!st.setting_up.empty())
          fail(endpoint + ": connection " + std::to_string(id) +
               " opened during a failure streak while " +
               std::to_string(st.setting_up.size()) +
               " others were being set up");
      }
      st.setting_up.insert(id);
      break;
    case Event::ready:
      st.setting_up.erase(id);
      break;
    case Event::useful:
      st.streak = 0;
      break;
    case Event::failed:
      ++failed_;
      ++st.streak;
      st.last_failure = now;
      break;
    case Event::closed:
      st.setting_up.erase(id);
      break;
    }
  }
  void on_endpoint_forgotten(const std::string &endpoint) override {
    auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    State &st = endpoints_[endpoint];
    // Forgetting ends the streak, but not before the longest wait.
    if (st.streak > 0 &&
        now - st.last_failure + tolerance_ < Ms(policy_.max_ms))
      fail(endpoint + ": forgotten " +
           std::to_string(
               std::chrono::duration_cast<Ms>(now - st.last_failure).count()) +
           " ms after a failed connection, before the longest backoff (" +
           std::to_string(policy_.max_ms) + " ms)");
    endpoints_.erase(endpoint);
  }
  std::string failure() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }
  uint64_t failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }

private:
  struct State {
    uint32_t streak = 0;
    Clock::time_point last_failure;
    std::set<uint64_t> setting_up;
  };
  void fail(const std::string &what) {
    if (failure_.empty())
      failure_ = what;
  }

  h2pool_core::BackoffPolicy policy_;
  Ms tolerance_;
  std::mutex mu_;
  std::map<std::string, State> endpoints_;
  uint64_t opened_ = 0, failed_ = 0;
  std::string failure_;
};

class SeedRun {
public:
  SeedRun(uint64_t seed, bool verbose, Ms slack, Ms pace_tolerance)
      : seed_(seed), verbose_(verbose), slack_(slack),
        pace_tolerance_(pace_tolerance), dice_(seed) {}
  ~SeedRun() {
    h2pool_destroy(pool_); // before anything its callbacks touch
  }

  // Runs the seed; returns "" or the first invariant that broke.
  std::string go();

  static void on_done(const h2pool_response *resp, const h2pool_error *err,
                      void *user_data);

private:
  void log(const std::string &line) {
    if (verbose_)
      printf("seed %llu +%lldms: %s\n", (unsigned long long)seed_,
             (long long)std::chrono::duration_cast<Ms>(Clock::now() - start_)
                 .count(),
             line.c_str());
  }
  void violation(const std::string &what) {
    if (failure_.empty())
      failure_ = what;
  }
  h2pool_config *make_config();
  static ConnectionScript connection_script(uint64_t seed, uint64_t server,
                                            uint64_t conn_id);
  void submit();
  void cancel();
  void advance(Ms ms);
  // Checks every invariant; `final` after the pool is gone.
  void check(bool final);
  void check_connection_bounds();
  bool all_done();

  uint64_t seed_;
  bool verbose_;
  Ms slack_;
  Ms pace_tolerance_;
  Dice dice_;
  std::unique_ptr<PaceChecker> pace_;
  uint32_t max_connections_ = 10;
  h2pool_core::BackoffPolicy reconnect_;
  std::vector<std::unique_ptr<TestServer>> servers_;
  std::vector<Endpoint> endpoints_;
  h2pool *pool_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> requests_; // stable addresses for the callbacks
  Clock::time_point start_;
  std::string failure_;
};

void SeedRun::on_done(const h2pool_response *resp, const h2pool_error *err,
                      void *user_data) {
  auto &req = *static_cast<Request *>(user_data);
  SeedRun &run = *req.run;
  bool exact = false;
  if (!err) {
    size_t n = 0;
    const uint8_t *b = h2pool_response_body(resp, &n);
    if (req.echo) {
      exact = n == req.body.size() && std::equal(b, b + n, req.body.begin());
    } else if (n == req.size) {
      std::vector<uint8_t> want(n);
      h2pool_testing::fill_test_body(req.body_seed, 0, n, want.data());
      exact = std::equal(want.begin(), want.end(), b);
    }
  }
  {
    std::lock_guard<std::mutex> lock(run.mu_);
    if (++req.calls == 1) {
      req.done_at = Clock::now();
      req.code = err ? h2pool_error_code(err) : H2POOL_OK;
      req.exact = exact;
      if (err)
        req.message = h2pool_error_message(err);
    }
  }
  run.cv_.notify_all();
}

ConnectionScript SeedRun::connection_script(uint64_t seed, uint64_t server,
                                            uint64_t conn_id) {
  Dice d(mix(seed, server * 1000003 + conn_id));
  using h2pool_testing::AfterSettings;
  using h2pool_testing::ProtocolErrorKind;
  ConnectionScript s;
  uint64_t roll = d.below(100);
  if (roll < 6) {
    s.send_settings = false; // a silent server: the SETTINGS timeout ends it
  } else if (roll < 10) {
    s.ignore_ping = true;
  } else if (roll < 20) {
    s.goaway_after_requests = uint32_t(d.range(1, 5));
    s.goaway_code = d.chance(50) ? 0 : 2;
    s.goaway_last_stream_id = d.chance(30) ? 0 : -1;
    s.goaway_graceful = d.chance(40);
    s.goaway_grace_ms = uint32_t(d.range(5, 50));
  } else if (roll < 30) {
    // Ready, then gone before serving anything.
    s.after_settings = d.pick<AfterSettings>(
        {AfterSettings::goaway, AfterSettings::protocol_error,
         AfterSettings::close, AfterSettings::reset});
    s.after_settings_goaway_code = uint32_t(d.pick<int>({0, 2, 11}));
    s.after_settings_protocol_error =
        d.pick<ProtocolErrorKind>({ProtocolErrorKind::settings_ack_with_payload,
                                   ProtocolErrorKind::ping_wrong_length,
                                   ProtocolErrorKind::data_on_stream_0});
  } else if (roll < 35) {
    // A slow reader with windows wide enough for uploads to block on it.
    s.read_pause_ms = uint32_t(d.range(1, 30));
    s.initial_window_size = 1u << 20;
  } else if (roll < 40) {
    s.settings_mcs_initial = uint32_t(d.range(1, 2));
  }
  return s;
}

h2pool_config *SeedRun::make_config() {
  h2pool_config *cfg = nullptr;
  h2pool_config_new(&cfg);
  Dice &d = dice_;
  max_connections_ = uint32_t(d.range(1, 4));
  h2pool_config_set_max_connections_per_endpoint(cfg, max_connections_);
  if (d.chance(50))
    h2pool_config_set_max_concurrent_streams(cfg, uint32_t(d.range(1, 10)));
  h2pool_config_set_connect_timeout_ms(cfg, 300);
  h2pool_config_set_settings_timeout_ms(cfg, uint32_t(d.range(30, 200)));
  h2pool_config_set_resolve_timeout_ms(cfg, uint32_t(d.range(20, 200)));
  h2pool_config_set_idle_timeout_ms(
      cfg, d.chance(30) ? 0 : uint32_t(d.range(5, 200)));
  if (d.chance(30))
    h2pool_config_set_max_lifetime_ms(cfg, uint32_t(d.range(20, 400)));
  if (d.chance(25))
    h2pool_config_set_response_header_timeout_ms(cfg,
                                                 uint32_t(d.range(40, 400)));
  if (d.chance(40))
    h2pool_config_set_ping(cfg, uint32_t(d.range(15, 100)),
                           uint32_t(d.range(15, 80)));
  else
    h2pool_config_set_ping(cfg, 0, 1000);
  if (d.chance(25))
    h2pool_config_set_max_requests_per_connection(cfg, uint32_t(d.range(1, 8)));
  h2pool_config_set_max_retries(cfg, uint32_t(d.range(0, 3)));
  h2pool_config_set_retry_idempotent(cfg, d.chance(30));
  reconnect_.initial_ms = uint32_t(d.range(2, 10));
  reconnect_.max_ms = uint32_t(d.range(reconnect_.initial_ms, 100));
  h2pool_config_set_reconnect_backoff(cfg, reconnect_.initial_ms,
                                      reconnect_.max_ms);
  uint32_t retry_initial = uint32_t(d.range(1, 5));
  h2pool_config_set_retry_backoff(cfg, retry_initial,
                                  uint32_t(d.range(retry_initial, 30)));
  h2pool_config_set_retry_budget(cfg, uint32_t(d.range(0, 10)),
                                 uint32_t(d.range(0, 300)));
  if (d.chance(10))
    h2pool_config_set_max_pending_requests(cfg, uint32_t(d.range(1, 8)));
  if (d.chance(25))
    h2pool_config_set_flow_control_windows(cfg,
                                           uint32_t(d.range(1024, 1 << 20)),
                                           uint32_t(d.range(65535, 4 << 20)));
  return cfg;
}

void SeedRun::submit() {
  Dice &d = dice_;
  size_t n = d.range(1, 6);
  for (size_t i = 0; i < n; ++i) {
    requests_.emplace_back();
    Request &r = requests_.back();
    r.run = this;
    r.endpoint = d.below(endpoints_.size());
    const Endpoint &ep = endpoints_[r.endpoint];
    bool deadline = d.chance(75);
    r.timeout_ms = deadline ? int64_t(d.range(30, 800)) : -1;
    r.echo = d.chance(25);
    r.method = r.echo ? "POST" : (d.chance(10) ? "HEAD" : "GET");
    std::ostringstream q;
    if (r.echo) {
      r.body.assign(d.chance(20) ? d.range(20000, 150000) : d.range(0, 2000),
                    'b');
      for (size_t k = 0; k < r.body.size(); k += 97)
        r.body[k] = char('a' + (k / 97) % 26);
      q << "/echo?";
    } else {
      r.size = d.chance(15) ? d.range(20000, 300000) : d.range(0, 3000);
      r.body_seed = d.below(1000);
      q << "/?size=" << r.size << "&seed=" << r.body_seed << "&";
      if (r.method == "HEAD")
        r.size = 0;
    }
    uint64_t fault = d.below(100);
    const char *at = d.chance(50) ? "before" : nullptr;
    std::string fault_at =
        at ? std::string("before") : std::to_string(d.range(0, r.size));
    if (fault < 10) {
      q << "refuse=" << (d.chance(50) ? "1&fault_times=1" : "0.5");
    } else if (fault < 17) {
      q << "rst=" << d.pick<int>({1, 2, 8}) << "&fault_at=" << fault_at;
    } else if (fault < 27) {
      q << "goaway=" << d.pick<int>({0, 0, 2})
        << "&goaway_last=" << d.pick<int>({-1, 0})
        << (d.chance(40) ? "&goaway_graceful=1" : "")
        << "&goaway_grace_ms=" << d.range(2, 40);
    } else if (fault < 36) {
      q << "drop=" << d.pick<std::string>({"close", "reset", "midframe"})
        << "&fault_at=" << fault_at << "&fault_delay_ms=" << d.range(0, 20);
    } else if (fault < 40 && deadline) {
      q << "stall=1&fault_at=" << fault_at;
    } else if (fault < 48) {
      q << "delay_ms=" << d.range(0, 80);
    } else if (fault < 53) {
      q << "settings_mcs=" << d.pick<int>({1, 2, 5});
    } else if (fault < 58) {
      q << "early=103";
    } else if (fault < 63 && !r.echo) {
      q << "ce=gzip";
    }
    if (d.chance(20))
      q << "&fault_conn=" << d.range(1, 3);
    r.url = "http://" + ep.host + ":" + std::to_string(ep.port) + q.str();
    h2pool_request_opts *opts = nullptr;
    h2pool_request_opts_new(&opts);
    if (deadline)
      h2pool_request_opts_set_timeout_ms(opts, uint32_t(r.timeout_ms));
    r.submitted = Clock::now();
    r.rc = h2pool_request(pool_, r.method.c_str(), r.url.c_str(), nullptr, 0,
                          reinterpret_cast<const uint8_t *>(r.body.data()),
                          r.body.size(), opts, &SeedRun::on_done, &r, &r.id);
    h2pool_request_opts_free(opts);
    log("submit #" + std::to_string(requests_.size() - 1) + " " + r.method +
        " " + r.url + " timeout " + std::to_string(r.timeout_ms) + " -> " +
        std::to_string(r.rc));
  }
}

void SeedRun::cancel() {
  if (requests_.empty())
    return;
  Request &r = requests_[dice_.below(requests_.size())];
  if (r.rc != H2POOL_OK)
    return;
  log("cancel " + std::to_string(r.id));
  if (h2pool_cancel(pool_, r.id) != H2POOL_OK)
    violation("h2pool_cancel refused a valid id");
}

void SeedRun::advance(Ms ms) {
  // Time passes in the schedule; completions wake us early so that the
  // invariants are checked as they happen.
  auto until = Clock::now() + ms;
  std::unique_lock<std::mutex> lock(mu_);
  size_t seen = 0;
  for (const Request &r : requests_)
    seen += r.calls;
  cv_.wait_until(lock, until, [&] {
    size_t now = 0;
    for (const Request &r : requests_)
      now += r.calls;
    return now != seen;
  });
}

bool SeedRun::all_done() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Request &r : requests_)
    if (r.rc == H2POOL_OK && r.calls == 0)
      return false;
  return true;
}

void SeedRun::check(bool final) {
  auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < requests_.size(); ++i) {
      const Request &r = requests_[i];
      std::string who =
          "request #" + std::to_string(i) + " (" + r.method + " " + r.url + ")";
      if (r.rc != H2POOL_OK) {
        if (r.calls != 0)
          violation(who + " was refused with " + std::to_string(r.rc) +
                    " yet called back");
        continue;
      }
      if (r.calls > 1)
        violation(who + " got " + std::to_string(r.calls) + " callbacks");
      if (final && r.calls != 1)
        violation(who + " got no callback by the end");
      if (r.timeout_ms >= 0) {
        auto deadline = r.submitted + Ms(r.timeout_ms) + slack_;
        if ((r.calls == 0 && now > deadline) ||
            (r.calls > 0 && r.done_at > deadline))
          violation(who + " waited past its deadline of " +
                    std::to_string(r.timeout_ms) + " ms");
      }
      if (r.calls > 0 && r.code == H2POOL_OK && !r.exact)
        violation(who + " succeeded with a body that is not byte-exact");
      if (r.calls > 0 && r.code == H2POOL_ERR_INTERNAL)
        violation(who + " failed with INTERNAL: " + r.message);
    }
  }
  if (!final)
    check_connection_bounds();
  std::string pace = pace_ ? pace_->failure() : std::string();
  if (!pace.empty())
    violation(pace);
}

// Every connection the pool opens ends one of four ways: it failed (closed
// before serving anything), it served (a response began on it), it was
// closed unused by the pool (its requests went elsewhere or left), or it
// is still open. A connection that serves needs a stream, and an unused
// one needs a request that waited for it and then did not use it, so
//
//   created <= failed + 2 * (accepted + retried) + open.
//
// Failed connections are paced: after one fails, the endpoint opens the
// next only after a backoff that grows (min half the nominal delay) and
// one at a time, until a connection serves again; before the first
// failure at most max_connections can fail together. Each serving
// connection can start a new streak, so with W(T) the number of backoff
// waits that fit in the elapsed time T,
//
//   failed <= endpoints * (served + 1) * (max_connections + W(T)),
//
// with served bounded by accepted + retried. Loose, but a reconnect storm
// (thousands of connections in seconds) breaks either at once.
void SeedRun::check_connection_bounds() {
  h2pool_stats *s = nullptr;
  if (h2pool_stats_get(pool_, &s) != H2POOL_OK) {
    violation("h2pool_stats_get failed");
    return;
  }
  uint64_t created = h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_CREATED);
  uint64_t failed = h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_FAILED);
  uint64_t open = h2pool_stats_value(s, H2POOL_STAT_CONNECTIONS_OPEN);
  uint64_t retried = h2pool_stats_value(s, H2POOL_STAT_REQUESTS_RETRIED);
  h2pool_stats_free(s);
  uint64_t accepted = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Request &r : requests_)
      accepted += r.rc == H2POOL_OK;
  }
  uint64_t t_ms =
      uint64_t(std::chrono::duration_cast<Ms>(Clock::now() - start_).count());
  uint64_t windows = 0;
  double waited = 0;
  while (windows < 100000) {
    waited += reconnect_.nominal_ms(uint32_t(windows + 1)) / 2.0;
    if (waited > double(t_ms))
      break;
    ++windows;
  }
  uint64_t served = accepted + retried;
  uint64_t max_failed =
      endpoints_.size() * (served + 1) * (max_connections_ + windows);
  if (created > failed + 2 * served + open)
    violation("connections created " + std::to_string(created) + " > failed " +
              std::to_string(failed) +
              " + 2 * (accepted + "
              "retried) " +
              std::to_string(2 * served) + " + open " + std::to_string(open));
  if (failed > max_failed)
    violation("failed connections " + std::to_string(failed) +
              " exceed the backoff bound " + std::to_string(max_failed));
}

std::string SeedRun::go() {
  start_ = Clock::now();
  Dice &d = dice_;
  size_t nservers = d.range(1, 2);
  for (size_t i = 0; i < nservers; ++i) {
    ServerOptions o;
    o.max_concurrent_streams = uint32_t(d.pick<int>({0, 1, 2, 5, 100, 100}));
    o.seed = mix(seed_, 77 + i);
    o.refuse_every = uint32_t(d.pick<int>({0, 0, 0, 2, 3}));
    o.record_limit = 0;
    o.record_bodies = false;
    uint64_t seed = seed_;
    o.connection_script = [seed, i](uint64_t id) {
      return connection_script(seed, i, id);
    };
    servers_.push_back(std::make_unique<TestServer>(o));
    if (servers_.back()->start() != 0)
      return "cannot start a test server";
  }
  size_t nendpoints = d.range(1, 3);
  std::map<std::string, Lookup> modes;
  for (size_t i = 0; i < nendpoints; ++i) {
    Endpoint ep;
    ep.host = "ep" + std::to_string(i) + ".sim.test";
    ep.port = servers_[d.below(servers_.size())]->port();
    uint64_t roll = d.below(100);
    ep.lookup = roll < 70   ? Lookup::ok
                : roll < 85 ? Lookup::delayed
                : roll < 90 ? Lookup::fails
                : roll < 95 ? Lookup::silent
                            : Lookup::flaky;
    modes[ep.host] = ep.lookup;
    log("endpoint " + ep.host + ":" + std::to_string(ep.port) + " lookup " +
        lookup_name(ep.lookup));
    endpoints_.push_back(ep);
  }
  h2pool_config *cfg = make_config();
  if (verbose_)
    // Replaying one seed: the pool's own account of what it did.
    h2pool_config_set_log(
        cfg,
        [](int, const char *msg, void *ud) {
          static_cast<SeedRun *>(ud)->log(std::string("pool: ") + msg);
        },
        H2POOL_LOG_DEBUG, this);
  pace_ = std::make_unique<PaceChecker>(reconnect_, pace_tolerance_);
  uint64_t seed = seed_;
  int rc = h2pool_core::create_pool_with_resolver(
      cfg,
      [seed, modes](h2pool_core::Loop &loop) {
        return std::make_unique<ScriptedResolver>(loop, seed, modes);
      },
      &pool_, pace_.get());
  h2pool_config_free(cfg);
  if (rc != H2POOL_OK)
    return "cannot create the pool: " + std::to_string(rc);

  size_t steps = d.range(6, 16);
  for (size_t i = 0; i < steps && failure_.empty(); ++i) {
    uint64_t roll = d.below(100);
    if (roll < 50)
      submit();
    else if (roll < 62)
      cancel();
    else
      advance(Ms(d.range(0, 40)));
    check(false);
  }
  // The end: everything accepted completes, within its deadline, or for
  // requests without one within a bound nothing legitimate comes near
  // (the longest chain of timeouts and backoffs a schedule can build is a
  // few seconds).
  auto cap = Clock::now() + Ms(10000);
  while (failure_.empty() && !all_done() && Clock::now() < cap) {
    advance(Ms(20));
    check(false);
  }
  if (failure_.empty() && !all_done()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < requests_.size(); ++i)
      if (requests_[i].rc == H2POOL_OK && requests_[i].calls == 0) {
        violation("request #" + std::to_string(i) + " (" + requests_[i].method +
                  " " + requests_[i].url +
                  ", no deadline) was still waiting 10 s after the schedule "
                  "ended: lost or hung");
        break;
      }
  }
  h2pool_destroy(pool_);
  pool_ = nullptr;
  check(true);
  for (auto &s : servers_)
    s->stop();
  return failure_;
}

// --- the driver -----------------------------------------------------------

TEST(Simulator, EverySeedKeepsTheInvariants) {
  uint64_t one = env_u64("H2POOL_SIM_SEED", 0);
  uint64_t first = one ? one : env_u64("H2POOL_SIM_FIRST", 1);
  uint64_t count = one ? 1 : env_u64("H2POOL_SIM_SEEDS", 200);
  size_t parallel = one ? 1 : size_t(env_u64("H2POOL_SIM_PARALLEL", 4));
  Ms slack(env_u64("H2POOL_SIM_SLACK_MS", 400));
  Ms pace_tolerance(env_u64("H2POOL_SIM_PACE_TOLERANCE_MS", 5));
  const uint64_t rss_budget = uint64_t(env_u64("H2POOL_SIM_RSS_MB", 64)) << 20;

  std::atomic<uint64_t> next{first};
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> failures;
  uint64_t rss_after_warmup = 0;
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> peak_rss{0};
  auto start = Clock::now();
  auto worker = [&] {
    for (;;) {
      uint64_t seed = next.fetch_add(1);
      if (seed >= first + count)
        return;
      std::string why;
      {
        SeedRun run(seed, one != 0, slack, pace_tolerance);
        why = run.go();
      }
      uint64_t rss = faults::rss_bytes();
      uint64_t prev = peak_rss.load();
      while (rss > prev && !peak_rss.compare_exchange_weak(prev, rss)) {
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!why.empty())
        failures.emplace_back(seed, why);
      if (++done == std::min<uint64_t>(count, 20))
        rss_after_warmup = rss;
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < parallel; ++i)
    threads.emplace_back(worker);
  for (auto &t : threads)
    t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t rss_end = faults::rss_bytes();
  printf("simulator: %llu seeds from %llu in %.1f s (%d at a time), %zu "
         "failed; RSS after warm-up %.1f MiB, peak %.1f MiB, end %.1f MiB\n",
         (unsigned long long)count, (unsigned long long)first, secs,
         int(parallel), failures.size(), rss_after_warmup / 1048576.0,
         peak_rss.load() / 1048576.0, rss_end / 1048576.0);
  std::sort(failures.begin(), failures.end());
  for (auto &[seed, why] : failures)
    ADD_FAILURE() << "seed " << seed << ": " << why
                  << "\n  replay: H2POOL_SIM_SEED=" << seed << " "
                  << ::testing::internal::GetArgvs()[0];
  EXPECT_LE(peak_rss.load(), rss_after_warmup + rss_budget)
      << "memory grew across seeds";
}

} // namespace
} // namespace sim
