// h2pool_destroy() racing other calls on the same pool: submitters on other
// threads, completion callbacks that destroy the pool again, and two threads
// destroying at once. The header promises H2POOL_ERR_POOL_CLOSED (and no
// callback) for a call made while destruction is under way, exactly one
// completion per accepted request, and that only the first h2pool_destroy()
// destroys. These run under the ASan+UBSan and TSan builds too: a
// use-after-free or double free shows up there, not as a failed assertion.
//
// A call that *starts* after h2pool_destroy() has returned is the caller's
// bug, and no gate can make it safe: the gate is freed with the pool. A
// thread that is merely between two calls (asleep in free(), say) while a
// whole destruction runs would make that call, so the threads here also
// check a flag right before each call, which the shutdown's own callbacks
// set (they run before h2pool_destroy() returns). What is left is a thread
// stalled between that check and its first instruction inside the library.
// The calls that race destroy are made long (a refused request with
// thousands of header fields), so a thread is almost always inside one
// when destruction begins: those are what destroy must wait for.
#include "fault_util.h"
#include "test_server.h"

#include <atomic>
#include <cstdlib>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

namespace faults {
namespace {

using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

// One accepted (or refused) request: how many completions it saw, and the
// last code.
// Set by the first completion the shutdown runs, before destroy returns:
// from then on no thread starts a call. A submitter checks it and makes its
// call under the shared lock, and the completion sets it under the
// exclusive one, so no call can slip in between a check that came too early
// and the pool being freed (which a preempted thread otherwise could).
// The completion never waits long: the shutdown runs once the calls that
// were inside the pool have left it, and later calls are refused at once.
struct Closing {
  std::shared_mutex mu;
  bool flag = false;
  void set() {
    std::unique_lock<std::shared_mutex> lock(mu);
    flag = true;
  }
};

struct Slot {
  std::atomic<int> calls{0};
  std::atomic<int> code{1};
  bool accepted = false;      // written by the submitting thread
  Closing *closing = nullptr; // set when completed by the shutdown
};

void slot_cb(const h2pool_response *, const h2pool_error *err, void *ud) {
  auto s = static_cast<Slot *>(ud);
  int code = err ? h2pool_error_code(err) : H2POOL_OK;
  if (code == H2POOL_ERR_POOL_CLOSED && s->closing)
    s->closing->set();
  s->code.store(code);
  s->calls.fetch_add(1);
}

// Counts completions and wakes a waiter; shared by a test's requests.
struct Tally {
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  void bump() {
    std::lock_guard<std::mutex> lock(mu);
    ++done;
    cv.notify_all();
  }
  bool wait_for(size_t n, Ms timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return done >= n; });
  }
};

// Records log messages and wakes whoever waits for one containing a text.
struct LogSink {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> messages;
  static void cb(int, const char *msg, void *ud) {
    auto s = static_cast<LogSink *>(ud);
    std::lock_guard<std::mutex> lock(s->mu);
    s->messages.emplace_back(msg);
    s->cv.notify_all();
  }
  bool wait_for(const std::string &text, Ms timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] {
      for (const auto &m : messages)
        if (m.find(text) != std::string::npos)
          return true;
      return false;
    });
  }
};

int rounds_from_env(const char *name, int fallback) {
  const char *v = std::getenv(name);
  int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : fallback;
}

class DestroyRace : public ::testing::Test {
protected:
  void SetUp() override {
    ServerOptions options;
    options.record_limit = 0; // thousands of requests; nothing to look at
    options.record_bodies = false;
    server_ = std::make_unique<TestServer>(std::move(options));
    ASSERT_EQ(server_->start(), 0);
    base_ = server_->base_url();
  }
  std::string url(const std::string &path_query) const {
    return base_ + path_query;
  }
  std::unique_ptr<TestServer> server_;
  std::string base_;
};

// (a) Four threads submit (and cancel, and take stats) in a loop while a
// fifth destroys the pool, a few hundred times over. Every call either
// succeeds, is refused for its own reason, or returns POOL_CLOSED; every
// accepted request gets exactly one completion; nothing is touched after it
// is freed.
TEST_F(DestroyRace, SubmittersRacingDestroyGetPoolClosedOrExactlyOneCallback) {
  constexpr int kSubmitters = 4;
  constexpr size_t kSlots = 512;   // accepted requests per submitter, at most
  constexpr size_t kWarm = 4;      // accepted by each before destroy starts
  constexpr size_t kFields = 3000; // the long, refused call's header fields
  const int rounds = rounds_from_env("H2POOL_DESTROY_RACE_ROUNDS", 300);

  // Valid fields, then one with a space in its name: the request is refused
  // only after all of them have been copied and checked.
  std::vector<std::string> names;
  for (size_t i = 0; i < kFields; ++i)
    names.push_back("x-field-" + std::to_string(i));
  std::vector<h2pool_header> long_headers;
  for (const auto &n : names)
    long_headers.push_back({n.data(), n.size(), "v", 1});
  long_headers.push_back({"bad name", 8, "v", 1});

  const std::string slow = url("/slow?delay_ms=10000");
  const std::string fast = url("/fast");
  size_t total_accepted = 0, total_closed = 0;
  std::atomic<size_t> refused_closed{0}; // calls that returned POOL_CLOSED

  for (int round = 0; round < rounds; ++round) {
    h2pool *pool = nullptr;
    ASSERT_EQ(h2pool_create(nullptr, &pool), H2POOL_OK);
    Closing closing;
    std::vector<std::unique_ptr<Slot[]>> slots;
    for (int t = 0; t < kSubmitters; ++t) {
      slots.push_back(std::make_unique<Slot[]>(kSlots));
      for (size_t i = 0; i < kSlots; ++i)
        slots.back()[i].closing = &closing;
    }
    std::atomic<size_t> warm[kSubmitters] = {};
    std::atomic<int> unexpected{0}; // a return code no call may give
    std::atomic<int> last_unexpected{0};

    auto submitter = [&](int t) {
      Slot *mine = slots[t].get();
      size_t used = 0;
      // Only fast requests are cancelled: the slow ones must still be
      // outstanding when the pool is destroyed, so that the shutdown
      // completes them (and sets `closing`).
      uint64_t last_fast_id = 0;
      for (uint64_t i = 0;; ++i) {
        std::shared_lock<std::shared_mutex> checked(closing.mu);
        if (closing.flag)
          return;
        int rc;
        switch (i % 4) {
        case 0: { // an accepted request, while there are slots for it
          if (used == kSlots) {
            rc = h2pool_cancel(pool, last_fast_id ? last_fast_id : 1);
            break;
          }
          Slot &s = mine[used];
          bool is_fast = i % 8 == 0;
          uint64_t id = 0;
          rc =
              h2pool_request(pool, "GET", (is_fast ? fast : slow).c_str(),
                             nullptr, 0, nullptr, 0, nullptr, slot_cb, &s, &id);
          if (rc == H2POOL_OK) {
            if (is_fast)
              last_fast_id = id;
            s.accepted = true;
            ++used;
            warm[t].store(used);
          }
          break;
        }
        case 1: // long, then refused for its own reason
          rc = h2pool_request(pool, "GET", fast.c_str(), long_headers.data(),
                              long_headers.size(), nullptr, 0, nullptr, slot_cb,
                              nullptr, nullptr);
          if (rc == H2POOL_ERR_INVALID_HEADER)
            rc = H2POOL_OK;
          break;
        case 2:
          rc = h2pool_cancel(pool, last_fast_id ? last_fast_id : 1);
          break;
        default: {
          h2pool_stats *st = nullptr;
          rc = h2pool_stats_get(pool, &st);
          h2pool_stats_free(st);
          break;
        }
        }
        if (rc == H2POOL_ERR_POOL_CLOSED) {
          refused_closed.fetch_add(1);
          return; // the pool is going: no further call
        }
        if (rc != H2POOL_OK) {
          unexpected.fetch_add(1);
          last_unexpected.store(rc);
          // Keep going until POOL_CLOSED: stopping early would let destroy
          // run without the race this test is for.
        }
      }
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < kSubmitters; ++t)
      threads.emplace_back(submitter, t);
    std::thread destroyer([&] {
      // Destroy once every submitter is in full swing (bounded: destroy
      // anyway, and the assertions below say what went wrong).
      wait_until(
          [&] {
            for (auto &w : warm)
              if (w.load() < kWarm)
                return false;
            return true;
          },
          kWait);
      h2pool_destroy(pool);
    });
    destroyer.join();
    for (auto &th : threads)
      th.join();

    // h2pool_destroy() from another thread returns after every completion.
    for (int t = 0; t < kSubmitters; ++t) {
      ASSERT_GE(warm[t].load(), kWarm) << "round " << round;
      for (size_t i = 0; i < kSlots; ++i) {
        const Slot &s = slots[t][i];
        int calls = s.calls.load();
        ASSERT_EQ(calls, s.accepted ? 1 : 0)
            << "round " << round << " submitter " << t << " slot " << i;
        if (s.accepted) {
          ++total_accepted;
          if (s.code.load() == H2POOL_ERR_POOL_CLOSED)
            ++total_closed;
        }
      }
    }
    ASSERT_EQ(unexpected.load(), 0)
        << "round " << round << ": last unexpected code "
        << last_unexpected.load() << " ("
        << h2pool_strerror(last_unexpected.load()) << ")";
  }
  // The slow requests were still outstanding: the shutdown completed them;
  // and calls did arrive while the pool was being destroyed.
  EXPECT_GT(total_closed, 0u);
  EXPECT_GT(refused_closed.load(), 0u);
  RecordProperty("accepted", std::to_string(total_accepted));
  RecordProperty("refused_pool_closed", std::to_string(refused_closed.load()));
}

// Callbacks that destroy the pool they run on; the first call must do the
// whole destruction, the others return at once.
struct DestroyingSlot {
  h2pool *pool = nullptr;
  Tally *tally = nullptr;
  std::atomic<int> calls{0};
  std::atomic<int> code{1};
};

void destroying_cb(const h2pool_response *, const h2pool_error *err, void *ud) {
  auto s = static_cast<DestroyingSlot *>(ud);
  s->code.store(err ? h2pool_error_code(err) : H2POOL_OK);
  s->calls.fetch_add(1);
  h2pool_destroy(s->pool);
  s->tally->bump();
}

// (b) A completion callback destroys the pool; the shutdown then completes
// the other outstanding requests, and each of their callbacks destroys it
// again: one destruction, one completion each.
TEST_F(DestroyRace, DestroyFromCallbackWhoseShutdownCallbacksAlsoDestroy) {
  constexpr size_t kSlow = 50;
  LogSink log;
  Config cfg;
  ASSERT_EQ(h2pool_config_set_log(cfg, &LogSink::cb, H2POOL_LOG_DEBUG, &log),
            H2POOL_OK);
  h2pool *pool = nullptr;
  ASSERT_EQ(h2pool_create(cfg, &pool), H2POOL_OK);
  Tally tally;
  std::vector<DestroyingSlot> slow(kSlow);
  for (auto &s : slow) {
    s.pool = pool;
    s.tally = &tally;
    ASSERT_EQ(h2pool_request(pool, "GET", url("/slow?delay_ms=10000").c_str(),
                             nullptr, 0, nullptr, 0, nullptr, destroying_cb, &s,
                             nullptr),
              H2POOL_OK);
  }
  ASSERT_TRUE(server_->wait_for_stats(
      [&](const auto &st) { return st.requests >= kSlow; }, kWait));
  DestroyingSlot first;
  first.pool = pool;
  first.tally = &tally;
  // From here the pool destroys itself.
  ASSERT_EQ(h2pool_request(pool, "GET", url("/fast").c_str(), nullptr, 0,
                           nullptr, 0, nullptr, destroying_cb, &first, nullptr),
            H2POOL_OK);
  ASSERT_TRUE(tally.wait_for(kSlow + 1)) << tally.done << " completions";
  // The loop thread frees the pool after its last callback; wait for that
  // before the slots go out of scope.
  ASSERT_TRUE(log.wait_for("pool destroyed"));
  EXPECT_EQ(first.calls.load(), 1);
  EXPECT_EQ(first.code.load(), H2POOL_OK);
  for (size_t i = 0; i < kSlow; ++i) {
    EXPECT_EQ(slow[i].calls.load(), 1) << i;
    EXPECT_EQ(slow[i].code.load(), H2POOL_ERR_POOL_CLOSED) << i;
  }
  std::lock_guard<std::mutex> lock(log.mu);
  size_t destroyed = 0;
  for (const auto &m : log.messages)
    destroyed += m.find("pool destroyed") != std::string::npos;
  EXPECT_EQ(destroyed, 1u);
}

// (b) The same with the first h2pool_destroy() on another thread: the
// callbacks it runs destroy again, and must not free the pool under it.
TEST_F(DestroyRace, DestroyFromThreadWhoseShutdownCallbacksAlsoDestroy) {
  constexpr size_t kSlow = 50;
  h2pool *pool = nullptr;
  ASSERT_EQ(h2pool_create(nullptr, &pool), H2POOL_OK);
  Tally tally;
  std::vector<DestroyingSlot> slow(kSlow);
  for (auto &s : slow) {
    s.pool = pool;
    s.tally = &tally;
    ASSERT_EQ(h2pool_request(pool, "GET", url("/slow?delay_ms=10000").c_str(),
                             nullptr, 0, nullptr, 0, nullptr, destroying_cb, &s,
                             nullptr),
              H2POOL_OK);
  }
  ASSERT_TRUE(server_->wait_for_stats(
      [&](const auto &st) { return st.requests >= kSlow; }, kWait));
  h2pool_destroy(pool);
  // Synchronous: every completion ran before it returned.
  EXPECT_EQ(tally.done, kSlow);
  for (size_t i = 0; i < kSlow; ++i) {
    EXPECT_EQ(slow[i].calls.load(), 1) << i;
    EXPECT_EQ(slow[i].code.load(), H2POOL_ERR_POOL_CLOSED) << i;
  }
}

// (c) Two threads call h2pool_destroy() at the same moment, with requests
// outstanding: one destroys, the other returns at once; every request
// completes once. The loop thread is held in a completion callback until
// one of the two calls has returned, so the winner cannot get past joining
// it, let alone free the pool, before the loser has come and gone: without
// that hold the loser could be scheduled only after the winner had freed
// the pool, which is the caller's bug (a call after destroy returned), not
// a race the library can win. The hold also proves that the loser does not
// wait for the winner.
struct LoopHold {
  std::atomic<bool> held{false};
  std::atomic<int> returned{0}; // h2pool_destroy() calls that returned
  std::atomic<int> calls{0};
  bool released = false; // the loser returned while the loop was held
};

void hold_loop_cb(const h2pool_response *, const h2pool_error *, void *ud) {
  auto h = static_cast<LoopHold *>(ud);
  h->calls.fetch_add(1);
  h->held.store(true);
  h->released = wait_until([&] { return h->returned.load() >= 1; }, kWait);
}

TEST_F(DestroyRace, ConcurrentDestroyFromTwoThreads) {
  constexpr size_t kSlow = 20;
  const int rounds = rounds_from_env("H2POOL_DESTROY_RACE_ROUNDS", 50);
  int first_thread_won = 0;
  for (int round = 0; round < rounds; ++round) {
    h2pool *pool = nullptr;
    ASSERT_EQ(h2pool_create(nullptr, &pool), H2POOL_OK);
    std::vector<Slot> slots(kSlow);
    for (auto &s : slots)
      ASSERT_EQ(h2pool_request(pool, "GET", url("/slow?delay_ms=10000").c_str(),
                               nullptr, 0, nullptr, 0, nullptr, slot_cb, &s,
                               nullptr),
                H2POOL_OK);
    LoopHold hold;
    ASSERT_EQ(h2pool_request(pool, "GET", url("/fast").c_str(), nullptr, 0,
                             nullptr, 0, nullptr, hold_loop_cb, &hold, nullptr),
              H2POOL_OK);
    ASSERT_TRUE(wait_until([&] { return hold.held.load(); }, kWait));
    // Both threads spin until both are running, then destroy at once.
    std::atomic<int> ready{0};
    std::atomic<int> order{0};
    int finished[2] = {0, 0};
    auto destroy = [&](int who) {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      h2pool_destroy(pool);
      finished[who] = order.fetch_add(1) + 1;
      hold.returned.fetch_add(1);
    };
    std::thread a(destroy, 0), b(destroy, 1);
    a.join();
    b.join();
    ASSERT_TRUE(hold.released)
        << "round " << round << ": the second h2pool_destroy() waited";
    EXPECT_EQ(hold.calls.load(), 1);
    // Whichever thread destroyed returned after every completion.
    for (size_t i = 0; i < kSlow; ++i) {
      ASSERT_EQ(slots[i].calls.load(), 1) << "round " << round << " " << i;
      EXPECT_EQ(slots[i].code.load(), H2POOL_ERR_POOL_CLOSED);
    }
    first_thread_won += finished[0] == 2; // the winner returns last
  }
  RecordProperty("first_thread_won", std::to_string(first_thread_won));
}

// (c) A second h2pool_destroy() from another thread while the first is still
// running returns at once: here the first is held inside a completion
// callback until the second has returned.
struct HoldingSlot {
  h2pool *pool = nullptr;
  std::atomic<int> calls{0};
  bool second_returned = false;
};

void holding_cb(const h2pool_response *, const h2pool_error *, void *ud) {
  auto s = static_cast<HoldingSlot *>(ud);
  if (s->calls.fetch_add(1) != 0)
    return;
  std::atomic<bool> done{false};
  std::thread second([&] {
    h2pool_destroy(s->pool);
    done.store(true);
  });
  // Bounded: if the second call waited for the first, this gives up and the
  // test fails rather than hanging.
  s->second_returned = wait_until([&] { return done.load(); }, kWait);
  second.join();
}

TEST_F(DestroyRace, SecondDestroyWhileFirstRunsReturnsAtOnce) {
  h2pool *pool = nullptr;
  ASSERT_EQ(h2pool_create(nullptr, &pool), H2POOL_OK);
  HoldingSlot slot;
  slot.pool = pool;
  ASSERT_EQ(h2pool_request(pool, "GET", url("/slow?delay_ms=10000").c_str(),
                           nullptr, 0, nullptr, 0, nullptr, holding_cb, &slot,
                           nullptr),
            H2POOL_OK);
  ASSERT_TRUE(server_->wait_for_stats(
      [&](const auto &st) { return st.requests >= 1; }, kWait));
  h2pool_destroy(pool); // runs holding_cb, which destroys again
  EXPECT_EQ(slot.calls.load(), 1);
  EXPECT_TRUE(slot.second_returned);
}

} // namespace
} // namespace faults
