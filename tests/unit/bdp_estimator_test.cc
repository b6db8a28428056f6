// BdpEstimator on its own: samples and times are fed in directly, so every
// case is exact.
#include "bdp_estimator.h"

#include <gtest/gtest.h>

namespace h2pool_core {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr uint32_t kKiB = 1024;

// Feeds 16 KiB chunks at `now` until the estimator asks for a probe (true)
// or `limit` bytes went by.
bool until_probe(BdpEstimator &e, int64_t now, uint64_t limit) {
  for (uint64_t fed = 0; fed < limit; fed += 16 * kKiB)
    if (e.on_data(16 * kKiB, now))
      return true;
  return false;
}

// One probe round: once a probe is asked for, `bytes` (the chunk that
// prompted it included) arrive in chunks of 16 KiB within one round trip
// of `rtt_ms`, starting at `*now`. Returns what on_ack() returned.
uint32_t round_trip(BdpEstimator &e, int64_t *now, uint64_t bytes,
                    int64_t rtt_ms) {
  EXPECT_TRUE(until_probe(e, *now, BdpEstimator::kProbeAfterBytes));
  e.probe_sent();
  for (uint64_t got = 16 * kKiB; got < bytes; got += 16 * kKiB)
    EXPECT_FALSE(e.on_data(16 * kKiB, *now + 1));
  *now += rtt_ms * kMs;
  return e.on_ack(*now);
}

TEST(BdpEstimator, StartsAtTheInitialWindowCappedByTheCap) {
  EXPECT_EQ(BdpEstimator(256 * kKiB, 8u << 20).window(), 256 * kKiB);
  BdpEstimator small(256 * kKiB, 64 * kKiB);
  EXPECT_EQ(small.window(), 64 * kKiB);
  EXPECT_TRUE(small.done());
  EXPECT_FALSE(until_probe(small, 0, 1u << 20)) << "no probes at the cap";
}

TEST(BdpEstimator, SmallResponsesAloneNeverProbe) {
  BdpEstimator e(256 * kKiB, 8u << 20);
  // 63 KiB in all: under the 64 KiB that must arrive before a probe.
  for (int i = 0; i < 63; ++i)
    EXPECT_FALSE(e.on_data(kKiB, i * kMs));
  EXPECT_TRUE(e.on_data(kKiB, 63 * kMs));
}

// The window is returned half at a time, so when it limits, about half of
// it arrives per round trip: such a sample doubles it.
TEST(BdpEstimator, AWindowLimitedSampleDoublesTheWindow) {
  BdpEstimator e(256 * kKiB, 8u << 20);
  int64_t now = 0;
  EXPECT_EQ(round_trip(e, &now, 128 * kKiB, 50), 512 * kKiB);
  EXPECT_EQ(e.window(), 512 * kKiB);
  // The next probe may go at once, and growth goes on while the window
  // limits: the window is four times the sample.
  EXPECT_EQ(round_trip(e, &now, 256 * kKiB, 50), 1024 * kKiB);
  EXPECT_EQ(round_trip(e, &now, 512 * kKiB, 50), 2048 * kKiB);
}

TEST(BdpEstimator, GrowthStopsAtTheCapAndSoDoProbes) {
  BdpEstimator e(256 * kKiB, 768 * kKiB);
  int64_t now = 0;
  EXPECT_EQ(round_trip(e, &now, 128 * kKiB, 50), 512 * kKiB);
  EXPECT_EQ(round_trip(e, &now, 256 * kKiB, 50), 768 * kKiB);
  EXPECT_TRUE(e.done());
  EXPECT_FALSE(until_probe(e, now + 1000 * kMs, 1u << 20));
}

TEST(BdpEstimator, ASampleBelowAThirdOfTheWindowDoesNotGrowIt) {
  BdpEstimator e(300 * kKiB, 8u << 20);
  int64_t now = 0;
  // 96 KiB of a 300 KiB window is under a third: the link, not the
  // window, limits.
  EXPECT_EQ(round_trip(e, &now, 96 * kKiB, 50), 0u);
  EXPECT_EQ(e.window(), 300 * kKiB);
  // 112 KiB is over a third: window-limited.
  now += BdpEstimator::kFirstBackoffNs;
  EXPECT_EQ(round_trip(e, &now, 112 * kKiB, 50), 448 * kKiB);
}

TEST(BdpEstimator, ProbesThatDoNotGrowTheWindowBackOff) {
  BdpEstimator e(1024 * kKiB, 8u << 20);
  int64_t now = 0;
  EXPECT_EQ(round_trip(e, &now, 64 * kKiB, 10), 0u);
  // 100 ms until the next probe, then 400 ms, 1.6 s, 6.4 s, 10 s, 10 s.
  int64_t waits[] = {100, 400, 1600, 6400, 10000, 10000};
  for (int64_t wait : waits) {
    EXPECT_FALSE(until_probe(e, now + wait * kMs - 1, 1u << 20)) << wait;
    now += wait * kMs;
    EXPECT_EQ(round_trip(e, &now, 64 * kKiB, 10), 0u) << wait;
  }
}

TEST(BdpEstimator, ALongerRoundTripThatStillFillsTheWindowGrowsIt) {
  BdpEstimator e(256 * kKiB, 8u << 20);
  int64_t now = 0;
  EXPECT_EQ(round_trip(e, &now, 128 * kKiB, 50), 512 * kKiB);
  // 192 KiB over 100 ms: slower than the sample before, but still over a
  // third of the window. A rate taken from one late burst must not hold
  // the window small, so this grows (the cap bounds it).
  EXPECT_EQ(round_trip(e, &now, 192 * kKiB, 100), 768 * kKiB);
}

TEST(BdpEstimator, OneProbeAtATimeAndAnUnsolicitedAckIsIgnored) {
  BdpEstimator e(256 * kKiB, 8u << 20);
  EXPECT_EQ(e.on_ack(5 * kMs), 0u) << "no probe was out";
  EXPECT_TRUE(until_probe(e, 0, BdpEstimator::kProbeAfterBytes));
  // Asked for, not yet sent: no second request.
  EXPECT_FALSE(e.on_data(16 * kKiB, 0));
  e.probe_sent();
  EXPECT_TRUE(e.probing());
  EXPECT_FALSE(e.on_data(16 * kKiB, 1));
  e.on_ack(10 * kMs);
  EXPECT_FALSE(e.probing());
}

} // namespace
} // namespace h2pool_core
