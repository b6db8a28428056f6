// RAII owners for the C resources h2pool holds, so that no error path leaks
// and destruction order is explicit in member order.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <memory>

namespace h2pool_core {

struct EventBaseDeleter {
  void operator()(event_base *b) const { event_base_free(b); }
};
struct EventDeleter {
  void operator()(event *e) const { event_free(e); }
};
struct BuffereventDeleter {
  void operator()(bufferevent *b) const { bufferevent_free(b); }
};
struct SessionDeleter {
  void operator()(nghttp2_session *s) const { nghttp2_session_del(s); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks *c) const {
    nghttp2_session_callbacks_del(c);
  }
};
struct OptionDeleter {
  void operator()(nghttp2_option *o) const { nghttp2_option_del(o); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using BuffereventPtr = std::unique_ptr<bufferevent, BuffereventDeleter>;
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;
using CallbacksPtr =
    std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter>;
using OptionPtr = std::unique_ptr<nghttp2_option, OptionDeleter>;

// Converts milliseconds to the timeval libevent timers take.
inline timeval ms_to_timeval(uint32_t ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

// Arms `timer` to fire in `ms` milliseconds; 0 (or no timer) leaves it off,
// which is what every "0: never" setting means.
inline void arm_timer(const EventPtr &timer, uint32_t ms) {
  if (!timer || ms == 0)
    return;
  timeval tv = ms_to_timeval(ms);
  evtimer_add(timer.get(), &tv);
}

// The loop's clock in milliseconds, as cached for this loop turn (what its
// timers are measured against).
inline uint64_t loop_now_ms(event_base *base) {
  timeval tv;
  event_base_gettimeofday_cached(base, &tv);
  return uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
}

} // namespace h2pool_core
