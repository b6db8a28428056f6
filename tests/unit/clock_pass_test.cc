// ClockPass: one clock reading shared by a pass over I/O, so that requests
// reaching an edge in the same pass read the clock once between them.
#include "timing.h"

#include <gtest/gtest.h>

#include <thread>

namespace h2pool_core {
namespace {

// Spins until the monotonic clock has moved past `t` (bounded: the clock
// advances by at least its resolution within microseconds).
void wait_past(int64_t t) {
  for (int i = 0; i < 10'000'000 && monotonic_ns() <= t; ++i) {
  }
  ASSERT_GT(monotonic_ns(), t);
}

TEST(ClockPass, OutsideAPassEveryCallReadsTheClock) {
  int64_t a = pass_now_ns();
  wait_past(a);
  EXPECT_GT(pass_now_ns(), a);
}

TEST(ClockPass, APassSharesOneReadingAndEndsWithIt) {
  int64_t before = monotonic_ns();
  int64_t reading;
  {
    ClockPass pass;
    reading = pass_now_ns();
    EXPECT_GE(reading, before);
    wait_past(reading);
    EXPECT_EQ(pass_now_ns(), reading);
  }
  EXPECT_GT(pass_now_ns(), reading);
}

TEST(ClockPass, NestedPassKeepsTheOuterReadingAndAFreshOneRenewsIt) {
  ClockPass outer;
  int64_t first = pass_now_ns();
  wait_past(first);
  {
    ClockPass inner;
    EXPECT_EQ(pass_now_ns(), first);
  }
  int64_t renewed;
  {
    ClockPass fresh(true);
    renewed = pass_now_ns();
    EXPECT_GT(renewed, first);
  }
  // The outer pass's reading applies again.
  EXPECT_EQ(pass_now_ns(), first);
}

TEST(ClockPass, EachThreadHasItsOwnPass) {
  ClockPass pass;
  int64_t mine = pass_now_ns();
  wait_past(mine);
  int64_t theirs = 0;
  std::thread([&] { theirs = pass_now_ns(); }).join();
  EXPECT_GT(theirs, mine);
  EXPECT_EQ(pass_now_ns(), mine);
}

} // namespace
} // namespace h2pool_core
