// What an external pool (h2pool_create_external) asks its caller's loop to
// wait for. The pool keeps its events on a libevent base of its own that no
// thread dispatches; after each h2pool_socket_action() pass, the reporter
// reads which descriptors that base's events wait on and its earliest
// timeout, and tells the caller what changed since the last report through
// the socket and timer callbacks (libcurl's CURLMOPT_SOCKETFUNCTION and
// CURLMOPT_TIMERFUNCTION do the same for a multi handle).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "h2pool.h"

struct event_base;

namespace h2pool_core {

class WatchReporter {
public:
  WatchReporter(h2pool_socket_cb socket_cb, void *socket_user_data,
                h2pool_timer_cb timer_cb, void *timer_user_data)
      : socket_cb_(socket_cb), socket_user_data_(socket_user_data),
        timer_cb_(timer_cb), timer_user_data_(timer_user_data) {}

  // Loop thread, outside the base's loop: reports what differs between what
  // `base` waits for now and what was last reported. Descriptors in
  // `closed` were closed since (their numbers may have been reused): one
  // that was reported is reported removed first, and anew if still watched.
  void report(event_base *base, const std::vector<int> &closed);
  // Reports every descriptor removed and the timer cancelled.
  void report_none();

private:
  using Watch = std::pair<int, int>; // descriptor, H2POOL_POLL_* bits
  void apply(const std::vector<Watch> &now, int64_t deadline_ms);

  h2pool_socket_cb socket_cb_;
  void *socket_user_data_;
  h2pool_timer_cb timer_cb_;
  void *timer_user_data_;
  std::vector<Watch> reported_; // sorted by descriptor
  std::vector<Watch> scratch_;
  int64_t reported_deadline_ms_ = -1; // monotonic ms; -1: no timer
};

} // namespace h2pool_core
