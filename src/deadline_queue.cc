#include "deadline_queue.h"

#include <cassert>
#include <new>

#include "timing.h"

namespace h2pool_core {
namespace {

constexpr int64_t kNsPerMs = 1000 * 1000;
// libevent measures its timers on the coarse monotonic clock, which lags
// the precise one by up to a tick (a few ms), so the timer can go off a
// little before the deadline it was set for. What falls due within this
// much is fired in that wake-up rather than in another one right after.
constexpr int64_t kEarlyNs = kNsPerMs;

} // namespace

DeadlineQueue::DeadlineQueue(event_base *base, FireFn fire, void *ctx)
    : timer_(evtimer_new(base, &DeadlineQueue::on_timer, this)), fire_(fire),
      ctx_(ctx) {
  if (!timer_)
    throw std::bad_alloc();
}

DeadlineQueue::~DeadlineQueue() {
  // The deadlines outlive the queue in their owners; leave them unarmed.
  for (Deadline *d : heap_)
    d->slot = Deadline::kUnarmed;
}

bool DeadlineQueue::arm(Deadline &d, int64_t now_ns, uint32_t after_ms,
                        void *target, uint32_t tag) noexcept {
  d.when_ns = now_ns + int64_t(after_ms) * kNsPerMs;
  d.target = target;
  d.tag = tag;
  if (d.armed()) {
    // Either way may be right: the new time can be earlier or later.
    sift_up(d.slot);
    sift_down(d.slot);
  } else {
    try {
      heap_.push_back(&d);
    } catch (const std::bad_alloc &) {
      return false;
    }
    d.slot = uint32_t(heap_.size() - 1);
    sift_up(d.slot);
  }
  if (!firing_)
    schedule(now_ns);
  return true;
}

void DeadlineQueue::disarm(Deadline &d) noexcept {
  if (!d.armed())
    return;
  assert(d.slot < heap_.size() && heap_[d.slot] == &d);
  remove_slot(d.slot);
}

void DeadlineQueue::fire_due(int64_t now_ns) {
  firing_ = true;
  // A deadline re-armed from its own fire function for "now" would be due
  // again at once; taking no more than were queued at the start bounds the
  // pass whatever the fire function does.
  for (size_t budget = heap_.size(); budget > 0 && !heap_.empty(); --budget) {
    Deadline *d = heap_.front();
    if (d->when_ns > now_ns + kEarlyNs)
      break;
    remove_slot(0);
    fire_(ctx_, *d);
  }
  firing_ = false;
  schedule(now_ns);
}

void DeadlineQueue::on_timer(evutil_socket_t, short, void *arg) {
  auto self = static_cast<DeadlineQueue *>(arg);
  self->timer_at_ns_ = INT64_MAX;
  // The fire functions (timeouts, retries) share one reading of the clock.
  ClockPass pass(true);
  self->fire_due(pass_now_ns());
}

void DeadlineQueue::place(uint32_t slot, Deadline *d) {
  heap_[slot] = d;
  d->slot = slot;
}

void DeadlineQueue::sift_up(uint32_t slot) {
  Deadline *d = heap_[slot];
  while (slot > 0) {
    uint32_t parent = (slot - 1) / 2;
    if (heap_[parent]->when_ns <= d->when_ns)
      break;
    place(slot, heap_[parent]);
    slot = parent;
  }
  place(slot, d);
}

void DeadlineQueue::sift_down(uint32_t slot) {
  Deadline *d = heap_[slot];
  const size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * size_t(slot) + 1;
    if (child >= n)
      break;
    if (child + 1 < n && heap_[child + 1]->when_ns < heap_[child]->when_ns)
      ++child;
    if (d->when_ns <= heap_[child]->when_ns)
      break;
    place(slot, heap_[child]);
    slot = uint32_t(child);
  }
  place(slot, d);
}

void DeadlineQueue::remove_slot(uint32_t slot) {
  Deadline *gone = heap_[slot];
  Deadline *last = heap_.back();
  heap_.pop_back();
  gone->slot = Deadline::kUnarmed;
  if (last == gone)
    return;
  place(slot, last);
  sift_up(slot);
  sift_down(last->slot);
}

void DeadlineQueue::schedule(int64_t now_ns) {
  if (heap_.empty())
    return;
  int64_t when = heap_.front()->when_ns;
  if (when >= timer_at_ns_)
    return; // the timer goes off first and looks again then
  int64_t wait_ns = when > now_ns ? when - now_ns : 0;
  // Whole milliseconds, rounded up: going off early only buys another
  // wake-up.
  int64_t wait_ms = (wait_ns + kNsPerMs - 1) / kNsPerMs;
  timeval tv;
  tv.tv_sec = time_t(wait_ms / 1000);
  tv.tv_usec = suseconds_t((wait_ms % 1000) * 1000);
  evtimer_add(timer_.get(), &tv);
  timer_at_ns_ = when;
}

} // namespace h2pool_core
