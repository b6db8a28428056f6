// RFC 9218 extensible priorities: the Priority field value a request
// carries (urgency 0..7, lower is more urgent, and the incremental flag),
// and the urgency-ordered queue an endpoint keeps its waiting requests in.
//
// The pool only signals priorities and orders its own queue by them; what
// the server does with the signal (schedule DATA by urgency, or ignore it)
// is the server's decision (RFC 9218 section 2).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "request.h"

namespace h2pool_core {

// RFC 9218 section 4: absent parameters mean u=3 and i=0.
constexpr uint8_t kDefaultUrgency = 3;
constexpr uint8_t kUrgencyLevels = 8;

struct Priority {
  uint8_t urgency = kDefaultUrgency;
  bool incremental = false;
  bool is_default() const { return urgency == kDefaultUrgency && !incremental; }
  bool operator==(const Priority &o) const {
    return urgency == o.urgency && incremental == o.incremental;
  }
};

// The field value (RFC 9218 section 5, a Structured Fields dictionary):
// "u=N", "i" or "u=N, i". The default is written "u=3": a PRIORITY_UPDATE
// back to the default needs a non-empty value to be unambiguous to readers.
std::string format_priority(Priority p);

// Reads a Priority field value as RFC 9218 section 4 asks: the `u` and `i`
// members are used when valid, unknown members and parameters are ignored,
// and an invalid member leaves its default. Never fails: a value that is not
// a dictionary at all gives the defaults.
Priority parse_priority(std::string_view value);

// An endpoint's waiting requests: most urgent first, first come first
// served within an urgency. The interface of RequestList, so the pool's
// queue code reads the same; each urgency is its own intrusive list, so
// every operation is O(1) (eight lists to look at, at most).
//
// A request's urgency (Request::urgency) decides its list when it is
// pushed; to change it while queued, remove it, change it, push it again.
class PriorityQueue {
public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The most urgent request that came first; null when empty.
  Request *front() const;
  // At the back of its urgency: after every request of that urgency.
  void push_back(Request *r);
  // At the front of its urgency: for a request sent back to the queue
  // (retried, or a placement that failed), which was accepted before the
  // others of its urgency still waiting. It does not jump ahead of more
  // urgent ones.
  void push_front(Request *r);
  void remove(Request *r);
  Request *pop_front();
  bool contains(const Request *r) const;
  // Calls `fn(Request *)` for each request, in the order pop_front() would
  // take them. `fn` must not change the queue.
  template <typename Fn> void for_each(Fn &&fn) const {
    for (const RequestList &list : lists_)
      for (Request *r = list.front(); r; r = r->next)
        fn(r);
  }

private:
  RequestList &list_for(const Request *r);

  std::array<RequestList, kUrgencyLevels> lists_;
  size_t size_ = 0;
};

} // namespace h2pool_core
