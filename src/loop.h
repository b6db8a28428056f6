// The pool's event-loop thread and the cross-thread submission queue.
//
// Callers on any thread push requests, cancellations and tasks; the first
// push into an empty queue wakes the loop through an eventfd, and the loop
// takes the whole batch at once. So a burst of N submissions costs one
// wake-up, not N. Submissions made on the loop thread itself (from a
// completion callback) wake it without a system call.
//
// The loop runs in one of three ways (Loop::Mode): on a thread of its own
// over a base of its own (h2pool_create), on a base the caller dispatches
// (h2pool_create_on_base), or over a base of its own that the caller drives
// through h2pool_socket_action (h2pool_create_external). In the last two
// there is no thread of h2pool's: the "loop thread" is the caller's.
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

  enum class Mode {
    own_thread,  // h2pool's thread dispatches h2pool's base
    caller_base, // the caller dispatches its own base
    external     // the caller calls drive() when h2pool's fds are ready
  };

  Loop() = default;
  ~Loop();
  Loop(const Loop &) = delete;
  Loop &operator=(const Loop &) = delete;

  // Creates the event base (or takes `caller_base`, which it never frees)
  // and the wake-up descriptor. Without a thread of its own, the calling
  // thread is taken as the loop thread. Returns an H2POOL_* code.
  int init(BatchHandler handler, Mode mode = Mode::own_thread,
           event_base *caller_base = nullptr);
  // Starts the loop thread (own_thread mode; a no-op otherwise).
  int start();
  Mode mode() const { return mode_; }
  // External mode, the driving thread: runs what is ready (without
  // blocking) until nothing is left to run now, the calling thread being
  // the loop thread from then on. Returns false when called from inside
  // itself (from a callback it runs).
  bool drive();
  bool driving() const { return driving_; }
  // External mode: the sockets closed during drive() since the last call.
  std::vector<int> take_closed_sockets() {
    std::vector<int> out;
    out.swap(closed_sockets_);
    return out;
  }
  // Loop thread, caller_base and external modes: runs the queued batch now,
  // outside any event callback (a synchronous h2pool_destroy()).
  void run_queued();
  // Loop thread: `hook` runs on the loop thread after the loop has ended,
  // as the thread's last action (it may free this Loop).
  void set_exit_hook(std::function<void()> hook) {
    exit_hook_ = std::move(hook);
  }
  event_base *base() const { return base_; }

  // Any thread. Each returns H2POOL_ERR_POOL_CLOSED once close() has run.
  int submit(std::unique_ptr<Request> request);
  int cancel(uint64_t id);
  int post(std::function<void()> task);
  // Any thread: refuses every later submission and queues `last_task`, which
  // thus runs after everything accepted before it.
  int close(std::function<void()> last_task);
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Loop thread: leave the loop once the current callback returns (own
  // thread only: a caller's base is the caller's to stop).
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
  bool local_wake() const;
  void wake_locked();
  void on_wake(short what);

  Mode mode_ = Mode::own_thread;
  EventBasePtr owned_base_;
  event_base *base_ = nullptr;      // owned_base_, or the caller's
  bool driving_ = false;            // external mode: inside drive()
  std::vector<int> closed_sockets_; // external mode: closed in drive()
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
