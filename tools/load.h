// A closed-loop load driver on the public API: it keeps up to `window`
// requests outstanding in one pool, submitting the next request from the
// completion callback of the previous one (or, with submit_from_thread(),
// from a caller thread the callbacks hand their slots to), until `count`
// have completed. Used by `h2pool bench` and `h2pool demo`.
#pragma once

#include <h2pool.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace h2pool_cli {

class LoadRunner {
public:
  // The URL of request `index` (0-based, below count). Costs a heap
  // allocation per request once URLs outgrow the small-string buffer; for one
  // URL throughout, use the constructor that takes it.
  using UrlFn = std::function<std::string(uint64_t index)>;
  // Called once per request on the pool's loop thread (or, for a request the
  // pool refused synchronously, on the submitting thread with `resp` and
  // `err` null and `refused` the H2POOL_ERR_* code). `latency_ns` runs from
  // just before h2pool_request() to the start of the callback. Must be
  // thread-safe and must not block.
  using CompleteFn = std::function<void(
      uint64_t index, const h2pool_response *resp, const h2pool_error *err,
      int refused, uint64_t latency_ns)>;

  LoadRunner(uint64_t count, uint64_t window, UrlFn url, CompleteFn on_complete,
             const h2pool_request_opts *opts);
  // Every request goes to `url`, which the runner keeps: submitting one
  // allocates nothing here, so a benchmark measures the pool, not this.
  LoadRunner(uint64_t count, uint64_t window, std::string url,
             CompleteFn on_complete, const h2pool_request_opts *opts);
  ~LoadRunner();
  LoadRunner(const LoadRunner &) = delete;
  LoadRunner &operator=(const LoadRunner &) = delete;

  // Before start(): submit from a thread of the runner's own, which takes
  // the completions from a completion queue (h2pool_queue) and submits the
  // next request for each, as an application that produces requests
  // elsewhere (and every binding) drives the pool: completions reach that
  // thread in batches, one wake-up per loop pass, and each batch's
  // submissions reach the loop with one wake-up. `queue_opts` are the
  // options of those requests (no callbacks: the queue refuses them), null
  // for the defaults; bodies arrive whole in the completion event.
  void submit_from_thread(const h2pool_request_opts *queue_opts) {
    use_feeder_ = true;
    queue_opts_ = queue_opts;
  }

  // Submits the first `window` requests from the calling thread. The runner
  // must outlive every callback: destroy the pool before the runner.
  void start(h2pool *pool);

  // Blocks until every request has completed.
  void wait();
  // Blocks until every request has completed or `timeout` passes; returns
  // whether all have completed.
  bool wait_for(std::chrono::milliseconds timeout);

  uint64_t completed() const {
    return completed_.load(std::memory_order_relaxed);
  }
  uint64_t count() const { return count_; }
  Clock::time_point started_at() const { return started_at_; }
  // When the last request completed (valid once wait() returned).
  Clock::time_point finished_at() const { return finished_at_; }

private:
  // One outstanding request's bookkeeping; reused for the next request once
  // its callback runs, so at most `window` exist.
  struct Slot {
    LoadRunner *runner = nullptr;
    uint64_t index = 0;
    Clock::time_point sent;
  };

  static void on_response(const h2pool_response *resp, const h2pool_error *err,
                          void *user_data);
  // Claims indexes for `slot` until a submission is accepted or none remain;
  // through the queue once submit_from_thread() has made one.
  // `now`, if given, is a clock reading just taken (by the completion that
  // freed the slot).
  void submit_next(Slot *slot, const Clock::time_point *now = nullptr);
  void mark_completed();
  // The submitting thread of submit_from_thread().
  void feed();
  // A request of the queue has completed.
  void complete_queued(h2pool_event *ev);

  const uint64_t count_;
  UrlFn url_; // empty when every request goes to fixed_url_
  std::string fixed_url_;
  CompleteFn on_complete_;
  const h2pool_request_opts *opts_;
  h2pool *pool_ = nullptr;
  std::vector<Slot> slots_;
  std::atomic<uint64_t> next_index_{0};
  std::atomic<uint64_t> completed_{0};
  Clock::time_point started_at_;
  Clock::time_point finished_at_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;

  bool use_feeder_ = false;
  const h2pool_request_opts *queue_opts_ = nullptr;
  h2pool_queue *queue_ = nullptr; // submit_from_thread(): owned
  std::thread feeder_;
};

// Latency summary over the given samples (nanoseconds), which it reorders.
struct LatencySummary {
  double min_ms = 0, mean_ms = 0, max_ms = 0, p50_ms = 0, p99_ms = 0;
};
LatencySummary summarize_latencies(std::vector<uint64_t> &samples_ns);

} // namespace h2pool_cli
