// Pacing for failure: jittered exponential backoff and the retry budget.
//
// Both exist so that a struggling server sees less load from us, not more:
// reconnects after failed connections wait longer each time, a refused
// request waits before it goes again, and refusals cannot be retried faster
// than the server serves.
#pragma once

#include <algorithm>
#include <cstdint>

namespace h2pool_core {

// splitmix64: a small, fast generator for jitter (nothing here needs more).
class Rng {
public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

private:
  uint64_t state_;
};

// The n-th consecutive wait (n >= 1) is a random time in [d/2, d], where
// d = min(max_ms, initial_ms * 2^(n-1)): "equal jitter", so that clients
// that failed together do not come back together, while every wait is at
// least half its nominal length (which bounds how often we can try).
struct BackoffPolicy {
  uint32_t initial_ms = 100;
  uint32_t max_ms = 10000;

  uint32_t nominal_ms(uint32_t n) const {
    uint64_t d = initial_ms;
    for (uint32_t i = 1; i < n && d < max_ms; ++i)
      d *= 2;
    return uint32_t(std::min<uint64_t>(d, max_ms));
  }
  uint32_t delay_ms(uint32_t n, Rng &rng) const {
    uint32_t d = nominal_ms(n);
    uint32_t half = d / 2;
    return half + uint32_t(rng.next() % (uint64_t(d - half) + 1));
  }
};

// A token bucket per endpoint, after gRPC's retry throttling: it holds up
// to `burst` retries and starts full; each retry takes one, each completed
// response gives back `percent`/100 of one. A server that refuses more
// than it serves therefore gets at most `burst` retries beyond what its
// successes pay for. (Refused requests that find the bucket empty wait for
// it rather than fail, while anything that could refill it is under way.)
class RetryBudget {
public:
  RetryBudget(uint32_t burst, uint32_t percent)
      : cap_(uint64_t(burst) * 100), tokens_(cap_), earn_(percent) {}
  bool available() const { return tokens_ >= 100; }
  bool take() {
    if (!available())
      return false;
    tokens_ -= 100;
    return true;
  }
  void earn() { tokens_ = std::min(cap_, tokens_ + earn_); }

private:
  uint64_t cap_;    // in hundredths of a retry
  uint64_t tokens_; // likewise
  uint64_t earn_;   // likewise, per completed response
};

} // namespace h2pool_core
