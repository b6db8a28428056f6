// The pool's event-loop thread and the cross-thread submission queue.
//
// Callers on any thread push requests, cancellations and tasks; the first
// push into an empty queue wakes the loop through an eventfd, and the loop
// takes the whole batch at once. So a burst of N submissions costs one
// wake-up, not N. Submissions made on the loop thread itself (from a
// completion callback) wake it without a system call.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "handles.h"
#include "request.h"

namespace h2pool_core {

class Loop {
public:
  struct Batch {
    std::vector<std::unique_ptr<Request>> requests;
    std::vector<uint64_t> cancels;
    std::vector<std::function<void()>> tasks;
  };
  using BatchHandler = std::function<void(Batch &)>;

  Loop() = default;
  ~Loop();
  Loop(const Loop &) = delete;
  Loop &operator=(const Loop &) = delete;

  // Creates the event base and the wake-up descriptor. Returns an H2POOL_*
  // code.
  int init(BatchHandler handler);
  // Starts the loop thread.
  int start();
  // Loop thread: `hook` runs on the loop thread after the loop has ended,
  // as the thread's last action (it may free this Loop).
  void set_exit_hook(std::function<void()> hook) {
    exit_hook_ = std::move(hook);
  }
  event_base *base() const { return base_.get(); }

  // Any thread. Each returns H2POOL_ERR_POOL_CLOSED once close() has run.
  int submit(std::unique_ptr<Request> request);
  int cancel(uint64_t id);
  int post(std::function<void()> task);
  // Any thread: refuses every later submission and queues `last_task`, which
  // thus runs after everything accepted before it.
  int close(std::function<void()> last_task);
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Loop thread: leave the loop once the current callback returns.
  void stop();
  bool on_loop_thread() const {
    return std::this_thread::get_id() == thread_id_.load();
  }
  // Another thread: wait for the loop thread to end.
  void join();
  // Loop thread: let the thread run on without anyone joining it (used when
  // the pool is destroyed from its own callback).
  void detach();

private:
  void wake_locked();
  void on_wake(short what);

  EventBasePtr base_;
  EventPtr wake_event_;
  int wake_fd_ = -1;
  BatchHandler handler_;
  std::function<void()> exit_hook_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};

  Batch draining_; // loop thread: the batch being handled
  // Loop thread: requests submitted by its own callbacks, and whether the
  // wake-up event is already activated for them.
  std::vector<std::unique_ptr<Request>> local_requests_;
  bool local_pending_ = false;
  std::mutex mutex_;
  Batch incoming_;            // guarded by mutex_
  bool wake_pending_ = false; // guarded by mutex_
  std::atomic<bool> closed_{false};
};

} // namespace h2pool_core
