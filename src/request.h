// One request from submission to completion, and the response it collects.
// A Request is plain data: the pool moves it between its queue and a
// connection, and the connection fills in the response.
#pragma once

#include <event2/event_struct.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "headers.h"
#include "url.h"

// The public opaque response type (global namespace, as in the C header).
struct h2pool_response {
  int status = 0;
  std::vector<h2pool_core::HeaderField> headers;
  std::string body;
  int32_t stream_id = 0;
  uint64_t connection_id = 0;
  uint64_t request_id = 0;
};

namespace h2pool_core {

struct Request {
  enum class State { submitted, queued, in_flight, done };

  // Set on the caller's thread at submission; read-only afterwards.
  uint64_t id = 0;
  std::string method;
  Url url;
  std::string authority; // :authority actually sent
  std::vector<HeaderField> headers;
  std::string body;
  bool add_content_length = false;
  uint32_t timeout_ms = 0; // 0: none
  h2pool_response_cb cb = nullptr;
  void *user_data = nullptr;

  std::string endpoint_key; // Url::endpoint_name(), computed once

  // Loop-thread state.
  State state = State::submitted;
  void *owner = nullptr;       // the pool handling it (opaque here)
  void *endpoint = nullptr;    // the pool's endpoint for it (opaque here)
  uint32_t attempts = 0;       // streams opened for this request so far
  size_t body_offset = 0;      // request body bytes handed to nghttp2
  bool got_headers = false;    // a final response HEADERS arrived
  bool end_stream = false;     // the response ended with END_STREAM
  bool in_trailers = false;    // receiving the header block after the final one
  bool counted_waiting = true; // still counted against max_pending_requests
  size_t header_bytes = 0;     // response header bytes, for the limit
  size_t header_fields = 0;    // response header fields, for the limit
  Error local_error;           // set when we reset the stream ourselves
  h2pool_response response;
  struct event timer; // request timeout (event_assign'ed)
  bool timer_armed = false;
  struct event header_timer; // response-header timeout, while in flight
  bool header_timer_armed = false;

  // Intrusive list links: a request sits in exactly one list at a time, the
  // endpoint's pending queue or its connection's stream list.
  Request *prev = nullptr;
  Request *next = nullptr;
  void *owner_list = nullptr; // the list it is in, for assertions and removal

  // Resets the per-attempt response state before a retry.
  void reset_for_retry();
};

// A doubly-linked list of requests that does not allocate: queueing and
// dequeueing are pointer updates, and removal from the middle (cancel,
// timeout) is O(1).
class RequestList {
public:
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }
  Request *front() const { return head_; }
  void push_back(Request *r);
  void push_front(Request *r);
  void remove(Request *r);
  Request *pop_front();
  bool contains(const Request *r) const { return r->owner_list == this; }

private:
  Request *head_ = nullptr;
  Request *tail_ = nullptr;
  size_t size_ = 0;
};

} // namespace h2pool_core
