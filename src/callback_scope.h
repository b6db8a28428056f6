// Marks the stretch of a thread during which h2pool runs a callback of the
// caller's (completion, streaming, body, release, log). A pool on the
// caller's loop asks whether any is running to decide whether
// h2pool_destroy() can free the pool at once or must leave that to the
// loop: libevent cannot say whether a base is inside a callback
// (event_base_get_running_event() may only be asked from inside one).
#pragma once

namespace h2pool_core {

class CallbackScope {
public:
  CallbackScope() noexcept { ++depth_; }
  ~CallbackScope() { --depth_; }
  CallbackScope(const CallbackScope &) = delete;
  CallbackScope &operator=(const CallbackScope &) = delete;

  // Whether this thread is inside a callback h2pool is running.
  static bool active() noexcept { return depth_ > 0; }

private:
  static inline thread_local int depth_ = 0;
};

} // namespace h2pool_core
