// Bandwidth-delay product estimation for adaptive flow-control windows, as
// gRPC and hyper do it.
//
// A window smaller than bandwidth x round-trip time caps a download at
// window / RTT however fast the link is; a window far larger than that lets a
// paused or slow stream hold that much data in memory for nothing. So a
// connection starts with small windows and grows them to what it measures:
// once 64 KiB of DATA has arrived since the last probe and none is out, a
// PING goes out, and the DATA bytes that arrive until its ACK are one round
// trip's worth. (The 64 KiB keep connections that carry only small
// responses from probing for nothing.) The window is returned by
// WINDOW_UPDATE once half of it was taken (nghttp2's rule), so a transfer
// the window limits brings about half the window per round trip: a sample
// of at least a third of the window (two thirds of that half) says the
// window was the limit, and the window becomes four times the sample (the
// half that flows per round trip doubled), up to the cap. (A bottleneck with
// an overfull buffer lengthens the round trip as the window grows, so the
// estimate can overshoot the path's product: the cap bounds it.) A sample that
// does not grow the window pushes the next probe further out (100 ms, then four
// times longer each time, up to 10 s), so a connection whose window is right
// sends almost no PINGs; once the window reaches its cap, none.
//
// Pure arithmetic on times the caller passes in, so it is tested on its own
// (tests/unit/bdp_estimator_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace h2pool_core {

class BdpEstimator {
public:
  // Windows start at `initial` bytes and never grow beyond `cap`.
  BdpEstimator(uint32_t initial, uint32_t cap);

  // `len` DATA bytes arrived at `now_ns`. True when a probe PING should go
  // out now; the caller sends it and calls probe_sent().
  bool on_data(size_t len, int64_t now_ns);
  void probe_sent();
  // The probe's ACK arrived. Returns the new window when it grew, else 0.
  uint32_t on_ack(int64_t now_ns);

  // The window the measurements call for (initially `initial`).
  uint32_t window() const { return window_; }
  bool probing() const { return probe_out_; }
  // The window reached its cap: nothing more to measure.
  bool done() const { return window_ >= cap_; }

  static constexpr uint64_t kProbeAfterBytes = 64u << 10;
  static constexpr int64_t kFirstBackoffNs = 100'000'000;  // 100 ms
  static constexpr int64_t kMaxBackoffNs = 10'000'000'000; // 10 s

private:
  uint32_t window_;
  uint32_t cap_;
  bool probe_out_ = false;
  bool triggered_ = false; // on_data() asked for a probe not yet sent
  uint64_t sample_ = 0;    // bytes since the probe went out
  uint64_t unprobed_ = 0;  // bytes since the last probe was asked for
  int64_t next_probe_ns_ = 0;
  int64_t backoff_ns_ = 0; // 0: the last sample grew the window
};

} // namespace h2pool_core
