// Counts the calls under way on one object so that its destruction can wait
// for them, and refuses calls once destruction has begun.
//
// Every exported function that takes an h2pool * passes through the pool's
// gate: enter() on the way in, leave() as its very last touch of the pool.
// h2pool_destroy() close()s the gate, then wait_drained() before it frees
// anything, so no call that got in can find the pool gone.
//
// Why it is race-free. The count and the closing flag share one atomic word
// (bit 0: closing; the rest: calls inside, in units of kOne), so every
// enter(), leave() and close() is one read-modify-write in that word's single
// modification order; no ordering between two variables is involved, and
// none of them needs seq_cst.
//  - enter() is a fetch_add: it either comes before close() in that order
//    (and close() then sees the call counted) or after it (and enter() sees
//    the flag, and gives up). There is no third case.
//  - leave() before close() is a compare-and-swap that only succeeds while
//    the flag is clear; after its success the caller touches nothing of the
//    object. Once the flag is set every CAS fails, so every later decrement
//    (leave() of a call that got in before close(), and the undo of an
//    enter() that came after it) happens under mutex_, with the notify.
//  - wait_drained() reads the count under mutex_. So when it sees zero,
//    every decrement made after close() has finished its critical section,
//    unlock included, and those made before close() touch nothing more:
//    the caller may free the gate. (The destroying thread takes mutex_ after
//    the last leaver released it; freeing a mutex after that is allowed.)
//  - Memory: a leave() that decrements is a release (the CAS, or the
//    fetch_sub under mutex_), close() is acq_rel and wait_drained()'s load
//    an acquire; every RMW continues the release sequence, so all that the
//    calls did to the object happens before whatever the destroyer does
//    after wait_drained() returns.
// What no gate can do: a call that starts after the object is freed reads
// freed memory. The caller must not start calls once destruction returned.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace h2pool_core {

class CallGate {
public:
  CallGate() = default;
  CallGate(const CallGate &) = delete;
  CallGate &operator=(const CallGate &) = delete;

  // Any thread: true if the call may go on (it must then leave()); false
  // once close() has run (the call is not counted and must not leave()).
  bool enter() noexcept {
    uint64_t before = state_.fetch_add(kOne, std::memory_order_acquire);
    if ((before & kClosing) == 0)
      return true;
    leave_closing();
    return false;
  }

  // Any thread, once per successful enter(), as the call's last touch of the
  // guarded object.
  void leave() noexcept {
    uint64_t s = state_.load(std::memory_order_relaxed);
    while ((s & kClosing) == 0)
      if (state_.compare_exchange_weak(s, s - kOne, std::memory_order_release,
                                       std::memory_order_relaxed))
        return;
    leave_closing();
  }

  // Any thread: refuses every later enter(). Returns true for the one call
  // that closed the gate, false if it was closed already.
  bool close() noexcept {
    return (state_.fetch_or(kClosing, std::memory_order_acq_rel) & kClosing) ==
           0;
  }

  bool closed() const noexcept {
    return (state_.load(std::memory_order_acquire) & kClosing) != 0;
  }

  // After close(): blocks until no call is inside. The calling thread must
  // not be inside itself.
  void wait_drained() {
    std::unique_lock lock(mutex_);
    drained_.wait(
        lock, [this] { return state_.load(std::memory_order_acquire) < kOne; });
  }

private:
  static constexpr uint64_t kClosing = 1;
  static constexpr uint64_t kOne = 2;

  // The decrement and the notify happen under mutex_, so wait_drained()
  // cannot see zero and free the gate while a leaver still uses it.
  void leave_closing() noexcept {
    std::lock_guard lock(mutex_);
    if (state_.fetch_sub(kOne, std::memory_order_acq_rel) < 2 * kOne)
      drained_.notify_all();
  }

  std::atomic<uint64_t> state_{0};
  std::mutex mutex_;
  std::condition_variable drained_;
};

// Enters `gate` for the lifetime of a scope; leaves it on the way out, after
// every later-declared local has been destroyed.
class GateGuard {
public:
  explicit GateGuard(CallGate &gate) noexcept
      : gate_(gate), entered_(gate.enter()) {}
  ~GateGuard() {
    if (entered_)
      gate_.leave();
  }
  GateGuard(const GateGuard &) = delete;
  GateGuard &operator=(const GateGuard &) = delete;
  explicit operator bool() const noexcept { return entered_; }

private:
  CallGate &gate_;
  bool entered_;
};

} // namespace h2pool_core
