#include "bdp_estimator.h"

#include <algorithm>

namespace h2pool_core {

BdpEstimator::BdpEstimator(uint32_t initial, uint32_t cap)
    : window_(std::min(initial, cap)), cap_(cap) {}

bool BdpEstimator::on_data(size_t len, int64_t now_ns) {
  if (probe_out_) {
    sample_ += len;
    return false;
  }
  if (done() || triggered_)
    return false;
  unprobed_ += len;
  if (unprobed_ < kProbeAfterBytes || now_ns < next_probe_ns_)
    return false;
  unprobed_ = 0;
  // The bytes that prompted the probe count: they arrived in the round trip
  // the probe measures, as gRPC counts them.
  triggered_ = true;
  sample_ = len;
  return true;
}

void BdpEstimator::probe_sent() {
  triggered_ = false;
  probe_out_ = true;
}

uint32_t BdpEstimator::on_ack(int64_t now_ns) {
  if (!probe_out_)
    return 0;
  probe_out_ = false;
  // Window-limited: one round trip brought most of the half of the window
  // that flows while the other half waits to be returned. (gRPC
  // also asks that the sample's rate be the best yet, against round trips
  // inflated by queueing; but then one burst read late, as a busy reader
  // sees it, holds the window small for good. Here the cap bounds what an
  // overfull buffer on the path can make the estimate overshoot.)
  bool grow = sample_ * 3 >= uint64_t(window_) && !done();
  if (grow) {
    window_ = uint32_t(std::min<uint64_t>(sample_ * 4, cap_));
    backoff_ns_ = 0;
    next_probe_ns_ = now_ns;
    return window_;
  }
  backoff_ns_ = backoff_ns_ == 0 ? kFirstBackoffNs
                                 : std::min(backoff_ns_ * 4, kMaxBackoffNs);
  next_probe_ns_ = now_ns + backoff_ns_;
  return 0;
}

} // namespace h2pool_core
