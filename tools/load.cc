#include "load.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace h2pool_cli {

LoadRunner::LoadRunner(uint64_t count, uint64_t window, UrlFn url,
                       CompleteFn on_complete, const h2pool_request_opts *opts)
    : count_(count), url_(std::move(url)), on_complete_(std::move(on_complete)),
      opts_(opts), slots_(std::min(count, std::max<uint64_t>(window, 1))) {
  for (Slot &s : slots_) {
    s.runner = this;
  }
  if (count_ == 0) {
    done_ = true;
  }
}

LoadRunner::LoadRunner(uint64_t count, uint64_t window, std::string url,
                       CompleteFn on_complete, const h2pool_request_opts *opts)
    : LoadRunner(count, window, UrlFn(), std::move(on_complete), opts) {
  fixed_url_ = std::move(url);
}

LoadRunner::~LoadRunner() {
  if (feeder_.joinable()) {
    feeder_.join();
  }
  h2pool_queue_destroy(queue_);
}

void LoadRunner::start(h2pool *pool) {
  pool_ = pool;
  started_at_ = Clock::now();
  finished_at_ = started_at_;
  if (use_feeder_) {
    int rc = h2pool_queue_create(&queue_);
    if (rc != H2POOL_OK) {
      // Without a queue nothing can be submitted: every request is refused.
      for (uint64_t i = next_index_.exchange(count_); i < count_; ++i) {
        on_complete_(i, nullptr, nullptr, rc, 0);
        mark_completed();
      }
      return;
    }
    feeder_ = std::thread([this] { feed(); });
    return;
  }
  for (Slot &s : slots_) {
    submit_next(&s);
  }
}

void LoadRunner::feed() {
  for (Slot &s : slots_) {
    submit_next(&s);
  }
  constexpr size_t kBatch = 512;
  h2pool_event *events[kBatch];
  // Every accepted request completes exactly once, so the queue delivers
  // until the last one has; the wait is bounded by the requests' own
  // outcomes (and their timeouts, if set).
  while (completed_.load(std::memory_order_acquire) < count_) {
    int n = h2pool_queue_next(queue_, events, kBatch, -1);
    if (n < 0) {
      break; // cannot happen while requests are under way
    }
    for (int i = 0; i < n; ++i) {
      if (h2pool_event_kind(events[i]) == H2POOL_EVENT_COMPLETE) {
        complete_queued(events[i]);
      } else {
        h2pool_event_free(events[i]);
      }
    }
  }
}

void LoadRunner::complete_queued(h2pool_event *ev) {
  auto slot = static_cast<Slot *>(h2pool_event_user_data(ev));
  auto now = Clock::now();
  auto latency =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - slot->sent)
          .count();
  on_complete_(slot->index, h2pool_event_response(ev), h2pool_event_error(ev),
               0, static_cast<uint64_t>(std::max<int64_t>(latency, 0)));
  h2pool_event_free(ev);
  mark_completed();
  submit_next(slot, &now);
}

void LoadRunner::submit_next(Slot *slot, const Clock::time_point *now) {
  for (;;) {
    uint64_t index = next_index_.fetch_add(1, std::memory_order_relaxed);
    if (index >= count_) {
      return;
    }
    slot->index = index;
    std::string generated;
    const char *url = fixed_url_.c_str();
    if (url_) {
      generated = url_(index);
      url = generated.c_str();
    }
    // The completion that freed this slot just read the clock: its reading
    // serves as this request's start, one clock read per request as h2load.
    slot->sent = now ? *now : Clock::now();
    now = nullptr; // a refused request's successor reads it afresh
    int rc =
        queue_ ? h2pool_queue_request(pool_, queue_, "GET", url, nullptr, 0,
                                      nullptr, 0, queue_opts_, slot, nullptr)
               : h2pool_request(pool_, "GET", url, nullptr, 0, nullptr, 0,
                                opts_, &LoadRunner::on_response, slot, nullptr);
    if (rc == H2POOL_OK) {
      // From here the slot belongs to the callback (which may already be
      // running on the loop thread) or to the queue's completion.
      return;
    }
    on_complete_(index, nullptr, nullptr, rc, 0);
    mark_completed();
  }
}

void LoadRunner::on_response(const h2pool_response *resp,
                             const h2pool_error *err, void *user_data) {
  auto slot = static_cast<Slot *>(user_data);
  LoadRunner *self = slot->runner;
  auto now = Clock::now();
  auto latency =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - slot->sent)
          .count();
  self->on_complete_(slot->index, resp, err, 0,
                     static_cast<uint64_t>(std::max<int64_t>(latency, 0)));
  // Count this one before reusing the slot: the next request's callback
  // may run (on the loop thread) before submit_next() returns here.
  self->mark_completed();
  self->submit_next(slot, &now);
}

void LoadRunner::mark_completed() {
  uint64_t n = completed_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (n == count_) {
    std::lock_guard<std::mutex> lock(mu_);
    finished_at_ = Clock::now();
    done_ = true;
    // Notify under the lock: once the waiter sees done_, it may tear the
    // pool down, and this object must not be touched after the unlock.
    cv_.notify_all();
  }
}

void LoadRunner::wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
}

bool LoadRunner::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return done_; });
}

LatencySummary summarize_latencies(std::vector<uint64_t> &samples_ns) {
  LatencySummary s;
  if (samples_ns.empty()) {
    return s;
  }
  auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  // Nearest-rank percentile: the index the sample would have once sorted.
  auto rank_index = [&](double p) {
    auto rank = static_cast<size_t>(
        std::ceil(p / 100.0 * static_cast<double>(samples_ns.size())));
    return std::clamp<size_t>(rank, 1, samples_ns.size()) - 1;
  };
  // Two selections instead of a full sort: linear rather than n log n in the
  // sample count, which is one per request (up to 10^8). The p50 selection
  // stays left of the p99 one, whose element the first call put in place.
  size_t i99 = rank_index(99), i50 = rank_index(50);
  std::nth_element(samples_ns.begin(), samples_ns.begin() + i99,
                   samples_ns.end());
  std::nth_element(samples_ns.begin(), samples_ns.begin() + i50,
                   samples_ns.begin() + i99);
  long double sum = 0;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (uint64_t v : samples_ns) {
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  s.min_ms = ms(lo);
  s.max_ms = ms(hi);
  s.mean_ms = static_cast<double>(sum / samples_ns.size()) / 1e6;
  s.p50_ms = ms(samples_ns[i50]);
  s.p99_ms = ms(samples_ns[i99]);
  return s;
}

} // namespace h2pool_cli
