#include "deadline_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "timing.h"

namespace h2pool_core {
namespace {

constexpr int64_t kMs = 1000 * 1000;

struct Base {
  event_base *base = event_base_new();
  ~Base() { event_base_free(base); }
};

// Records what fires, in order.
struct Recorder {
  std::vector<uint32_t> fired; // tags
  static void fire(void *ctx, Deadline &d) {
    auto self = static_cast<Recorder *>(ctx);
    EXPECT_FALSE(d.armed()); // disarmed before its fire function runs
    self->fired.push_back(d.tag);
  }
};

TEST(DeadlineQueue, FiresDueDeadlinesEarliestFirst) {
  Base b;
  Recorder rec;
  DeadlineQueue q(b.base, &Recorder::fire, &rec);
  std::vector<Deadline> d(6);
  const int64_t t0 = 1'000'000 * kMs;
  // Armed out of order; tag = the deadline's delay in ms.
  for (uint32_t ms : {50u, 10u, 40u, 20u, 60u, 30u})
    ASSERT_TRUE(q.arm(d[ms / 10 - 1], t0, ms, nullptr, ms));
  EXPECT_EQ(q.size(), 6u);
  EXPECT_EQ(q.earliest()->tag, 10u);
  q.fire_due(t0 + 35 * kMs);
  EXPECT_EQ(rec.fired, (std::vector<uint32_t>{10, 20, 30}));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_FALSE(d[0].armed());
  EXPECT_TRUE(d[3].armed());
  q.fire_due(t0 + 100 * kMs);
  EXPECT_EQ(rec.fired, (std::vector<uint32_t>{10, 20, 30, 40, 50, 60}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.earliest(), nullptr);
}

TEST(DeadlineQueue, DisarmAndRearmKeepTheOrder) {
  Base b;
  Recorder rec;
  DeadlineQueue q(b.base, &Recorder::fire, &rec);
  // Random delays, a third disarmed, a third moved; what fires must be
  // exactly the armed ones, in order of their final deadlines.
  std::mt19937 rng(7);
  std::vector<Deadline> d(500);
  std::vector<std::pair<uint32_t, uint32_t>> expect; // (delay, index)
  const int64_t t0 = 5'000 * kMs;
  for (uint32_t i = 0; i < d.size(); ++i)
    ASSERT_TRUE(q.arm(d[i], t0, 1 + rng() % 10000, nullptr, i));
  for (uint32_t i = 0; i < d.size(); ++i) {
    switch (rng() % 3) {
    case 0:
      q.disarm(d[i]);
      q.disarm(d[i]); // twice is harmless
      break;
    case 1: {
      uint32_t ms = 1 + rng() % 10000;
      ASSERT_TRUE(q.arm(d[i], t0, ms, nullptr, i));
      expect.emplace_back(ms, i);
      break;
    }
    default:
      expect.emplace_back(uint32_t((d[i].when_ns - t0) / kMs), i);
    }
  }
  EXPECT_EQ(q.size(), expect.size());
  std::stable_sort(expect.begin(), expect.end(),
                   [](auto a, auto b) { return a.first < b.first; });
  q.fire_due(t0 + 20000 * kMs);
  ASSERT_EQ(rec.fired.size(), expect.size());
  for (size_t i = 1; i < rec.fired.size(); ++i)
    EXPECT_LE(d[rec.fired[i - 1]].when_ns, d[rec.fired[i]].when_ns) << i;
  std::vector<uint32_t> want, got = rec.fired;
  for (auto [ms, i] : expect)
    want.push_back(i);
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
}

// A fire function that re-arms its own deadline for "now" cannot keep the
// queue firing forever.
TEST(DeadlineQueue, RearmFromFireIsBounded) {
  Base b;
  struct Ctx {
    DeadlineQueue *q = nullptr;
    int fired = 0;
  } ctx;
  DeadlineQueue q(
      b.base,
      [](void *c, Deadline &d) {
        auto self = static_cast<Ctx *>(c);
        ++self->fired;
        self->q->arm(d, d.when_ns, 0, nullptr, 0);
      },
      &ctx);
  ctx.q = &q;
  Deadline d;
  ASSERT_TRUE(q.arm(d, 0, 0, nullptr, 0));
  q.fire_due(10 * kMs);
  EXPECT_EQ(ctx.fired, 1);
  EXPECT_TRUE(d.armed());
  q.disarm(d);
}

// Through libevent: the one timer goes off for the earliest deadline, an
// empty wake-up after the earliest was disarmed re-arms for the next.
TEST(DeadlineQueue, TimerFiresThroughTheLoop) {
  Base b;
  Recorder rec;
  DeadlineQueue q(b.base, &Recorder::fire, &rec);
  Deadline first, second;
  const int64_t now = monotonic_ns();
  ASSERT_TRUE(q.arm(first, now, 5, nullptr, 1));
  ASSERT_TRUE(q.arm(second, now, 15, nullptr, 2));
  q.disarm(first);
  // Bounded: each pass of the loop waits for the timer; a handful suffice.
  for (int i = 0; i < 50 && rec.fired.empty(); ++i)
    event_base_loop(b.base, EVLOOP_ONCE);
  EXPECT_EQ(rec.fired, (std::vector<uint32_t>{2}));
  EXPECT_GE(monotonic_ns() + kMs, now + 15 * kMs); // not (much) early
  EXPECT_EQ(q.size(), 0u);
}

TEST(DeadlineQueue, DestroyedQueueLeavesDeadlinesUnarmed) {
  Base b;
  Recorder rec;
  Deadline d;
  {
    DeadlineQueue q(b.base, &Recorder::fire, &rec);
    ASSERT_TRUE(q.arm(d, 0, 1000, nullptr, 0));
    EXPECT_TRUE(d.armed());
  }
  EXPECT_FALSE(d.armed());
}

} // namespace
} // namespace h2pool_core
