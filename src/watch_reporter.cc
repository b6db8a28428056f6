#include "watch_reporter.h"

#include <event2/event.h>

#include <algorithm>
#include <ctime>

namespace h2pool_core {

namespace {

struct Walk {
  std::vector<std::pair<int, int>> *watches;
  bool has_timeout = false;
  timeval earliest{};
};

// event_base_foreach_event() callback: collects the descriptors the base's
// added events wait on, and the earliest timeout among all its events.
int collect(const event_base *, const event *ev, void *arg) {
  auto *walk = static_cast<Walk *>(arg);
  short what = event_get_events(ev);
  evutil_socket_t fd = event_get_fd(ev);
  if (fd >= 0 && !(what & EV_SIGNAL)) {
    short waiting =
        short(event_pending(ev, what & (EV_READ | EV_WRITE), nullptr));
    int bits = ((waiting & EV_READ) ? H2POOL_POLL_IN : 0) |
               ((waiting & EV_WRITE) ? H2POOL_POLL_OUT : 0);
    if (bits)
      walk->watches->emplace_back(int(fd), bits);
  }
  timeval tv;
  if (event_pending(ev, EV_TIMEOUT, &tv) & EV_TIMEOUT) {
    if (!walk->has_timeout || evutil_timercmp(&tv, &walk->earliest, <)) {
      walk->earliest = tv;
      walk->has_timeout = true;
    }
  }
  return 0;
}

int64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

} // namespace

void WatchReporter::report(event_base *base, const std::vector<int> &closed) {
  for (int fd : closed) {
    auto it =
        std::lower_bound(reported_.begin(), reported_.end(), Watch{fd, 0});
    if (it != reported_.end() && it->first == fd) {
      reported_.erase(it);
      socket_cb_(fd, H2POOL_POLL_REMOVE, socket_user_data_);
    }
  }
  scratch_.clear();
  Walk walk{&scratch_};
  event_base_foreach_event(base, collect, &walk);
  // One descriptor may carry a read and a write event: merge them.
  std::sort(scratch_.begin(), scratch_.end());
  size_t out = 0;
  for (size_t i = 0; i < scratch_.size(); ++i) {
    if (out > 0 && scratch_[out - 1].first == scratch_[i].first)
      scratch_[out - 1].second |= scratch_[i].second;
    else
      scratch_[out++] = scratch_[i];
  }
  scratch_.resize(out);

  int64_t deadline = -1;
  int64_t now = monotonic_ms();
  if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0) {
    deadline = now; // work is left over: come back at once
  } else if (walk.has_timeout) {
    // event_pending() gives the expiry on the wall clock libevent keeps in
    // step with its monotonic one; read that clock to turn it into a delay.
    timeval wall, left;
    evutil_gettimeofday(&wall, nullptr);
    evutil_timersub(&walk.earliest, &wall, &left);
    int64_t left_ms = left.tv_sec < 0 ? 0
                                      : int64_t(left.tv_sec) * 1000 +
                                            (left.tv_usec + 999) / 1000;
    deadline = now + left_ms;
  }
  apply(scratch_, deadline);
}

void WatchReporter::report_none() { apply({}, -1); }

void WatchReporter::apply(const std::vector<Watch> &now, int64_t deadline) {
  // Both lists are sorted by descriptor: one merge finds what changed. The
  // new list is kept before any callback runs, so a callback that submits a
  // request (and so may reach report() again later) sees a settled state.
  std::vector<Watch> before;
  before.swap(reported_);
  reported_ = now;
  size_t i = 0, j = 0;
  while (i < before.size() || j < now.size()) {
    if (j == now.size() ||
        (i < before.size() && before[i].first < now[j].first)) {
      socket_cb_(before[i].first, H2POOL_POLL_REMOVE, socket_user_data_);
      ++i;
    } else if (i == before.size() || now[j].first < before[i].first) {
      socket_cb_(now[j].first, now[j].second, socket_user_data_);
      ++j;
    } else {
      if (before[i].second != now[j].second)
        socket_cb_(now[j].first, now[j].second, socket_user_data_);
      ++i;
      ++j;
    }
  }
  if (deadline != reported_deadline_ms_) {
    reported_deadline_ms_ = deadline;
    long ms = deadline < 0
                  ? -1L
                  : long(std::max<int64_t>(0, deadline - monotonic_ms()));
    timer_cb_(ms, timer_user_data_);
  }
}

} // namespace h2pool_core
