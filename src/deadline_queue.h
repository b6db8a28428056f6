// Deadlines of many requests under one libevent timer.
//
// Every request in flight may carry two deadlines (its overall timeout, and
// the response-header timeout or retry delay of its current phase). A
// libevent `struct event` for each is 128 bytes, two of them a fifth of a
// request's footprint; a Deadline is 24. The queue keeps them in a binary
// min-heap on the monotonic clock and keeps one timer armed for the
// earliest. Most deadlines of a pool share a duration and are armed in
// order, so an insertion is normally a single comparison; a removal
// (the request finished first, the usual case) is O(log n).
//
// The timer is not re-armed when the earliest deadline is removed: it goes
// off at the old time, finds nothing due, and is set for the new earliest.
// That costs at most one empty wake-up per removal of the minimum, where
// moving the timer would cost a libevent call on every completion.
//
// Threading: none; a queue and its deadlines belong to one loop thread.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <vector>

#include "handles.h"

namespace h2pool_core {

// One deadline, embedded in whatever it times out. Not copyable while armed
// (the heap points at it); disarm it before it goes away.
struct Deadline {
  static constexpr uint32_t kUnarmed = UINT32_MAX;

  int64_t when_ns = 0;      // monotonic (timing.h), while armed
  void *target = nullptr;   // handed back to the fire function
  uint32_t slot = kUnarmed; // index in the heap
  uint32_t tag = 0;         // which of the target's deadlines this is

  bool armed() const { return slot != kUnarmed; }
};

class DeadlineQueue {
public:
  // Called once per deadline that falls due, after it has been disarmed; it
  // may arm and disarm any deadline, this one included.
  using FireFn = void (*)(void *ctx, Deadline &deadline);

  DeadlineQueue(event_base *base, FireFn fire, void *ctx);
  ~DeadlineQueue();
  DeadlineQueue(const DeadlineQueue &) = delete;
  DeadlineQueue &operator=(const DeadlineQueue &) = delete;

  // Arms `d` to fall due `after_ms` from `now_ns` (re-arms it if armed).
  // `target` and `tag` are what the fire function will see. Returns false
  // only if memory for the heap could not be had (`d` is then unarmed).
  bool arm(Deadline &d, int64_t now_ns, uint32_t after_ms, void *target,
           uint32_t tag) noexcept;
  // Takes `d` out of the queue; a no-op if it is not armed.
  void disarm(Deadline &d) noexcept;

  size_t size() const { return heap_.size(); }
  // The earliest deadline, or null when none is armed.
  const Deadline *earliest() const {
    return heap_.empty() ? nullptr : heap_.front();
  }
  // Fires, earliest first, every deadline due by `now_ns`, then sets the
  // timer for what is left. The timer calls it; tests may too.
  void fire_due(int64_t now_ns);

private:
  static void on_timer(evutil_socket_t, short, void *arg);
  void place(uint32_t slot, Deadline *d);
  void sift_up(uint32_t slot);
  void sift_down(uint32_t slot);
  void remove_slot(uint32_t slot);
  // Sets the timer if the earliest deadline comes before it would go off.
  void schedule(int64_t now_ns);

  std::vector<Deadline *> heap_;
  EventPtr timer_;
  int64_t timer_at_ns_ = INT64_MAX; // when the timer goes off; MAX: not set
  FireFn fire_;
  void *ctx_;
  bool firing_ = false; // inside fire_due(): it schedules once at the end
};

} // namespace h2pool_core
