// One request from submission to completion, and the response it collects.
// A Request is plain data: the pool moves it between its queue and a
// connection, and the connection fills in the response.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "deadline_queue.h"
#include "decompress.h"
#include "error.h"
#include "fields.h"
#include "headers.h"
#include "timing.h"
#include "url.h"

namespace h2pool_core {
// An owning pointer whose copies copy what it points at (a response is
// copied into the completion queue's events).
template <class T> class DeepPtr : public std::unique_ptr<T> {
public:
  DeepPtr() noexcept = default;
  DeepPtr(const DeepPtr &o)
      : std::unique_ptr<T>(o ? std::make_unique<T>(*o) : nullptr) {}
  DeepPtr &operator=(const DeepPtr &o) {
    if (this != &o)
      this->reset(o ? new T(*o) : nullptr);
    return *this;
  }
  DeepPtr(DeepPtr &&) noexcept = default;
  DeepPtr &operator=(DeepPtr &&) noexcept = default;
  DeepPtr &operator=(std::unique_ptr<T> &&p) noexcept {
    std::unique_ptr<T>::operator=(std::move(p));
    return *this;
  }
};

// A request method. The common ones point at a static name and any other
// is a copy of its own, so most requests hold 16 bytes for it and allocate
// nothing.
class Method {
public:
  Method() noexcept = default;
  ~Method() { release(); }
  Method(const Method &) = delete;
  Method &operator=(const Method &) = delete;
  Method(Method &&o) noexcept
      : data_(o.data_), size_(o.size_), owned_(o.owned_) {
    o.data_ = "";
    o.size_ = 0;
    o.owned_ = false;
  }
  Method &operator=(Method &&o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, "");
      size_ = std::exchange(o.size_, 0);
      owned_ = std::exchange(o.owned_, false);
    }
    return *this;
  }
  // Throws std::bad_alloc (an uncommon method only).
  Method &operator=(std::string_view m);

  std::string_view view() const { return {data_, size_}; }
  friend bool operator==(const Method &a, std::string_view b) {
    return a.view() == b;
  }
  friend bool operator!=(const Method &a, std::string_view b) {
    return a.view() != b;
  }

private:
  void release() noexcept;
  const char *data_ = "";
  uint32_t size_ = 0;
  bool owned_ = false; // data_ is ours (new[])
};

// What few responses have: kept out of line, allocated on first use.
struct ResponseRare {
  std::string reason; // HTTP/1.x reason phrase
  FieldList trailers;
  std::string content_encoding; // set when the body was decoded
};
} // namespace h2pool_core

// The public opaque response type (global namespace, as in the C header).
// (Members ordered to leave no padding: there is one per stream in flight.)
struct h2pool_response {
  int status = 0;
  int32_t stream_id = 0;
  int protocol = H2POOL_PROTOCOL_UNKNOWN; // an h2pool_protocol
  uint32_t reserved_ = 0;                 // (padding, named)
  h2pool_core::FieldList headers;
  std::string body;
  h2pool_core::DeepPtr<h2pool_core::ResponseRare> rare; // null: none of it
  uint64_t connection_id = 0;
  uint64_t request_id = 0;
  h2pool_core::Timings timings; // filled in as the request completes

  h2pool_core::ResponseRare &make_rare() {
    if (!rare)
      rare = std::make_unique<h2pool_core::ResponseRare>();
    return *rare;
  }
  const std::string &reason() const;
  const h2pool_core::FieldList *trailers() const {
    return rare ? &rare->trailers : nullptr;
  }
  const std::string &content_encoding() const;
  // Makes it as a default-constructed one, except that header and body
  // buffers and the rare box keep their heap memory while it fits `budget`
  // bytes, for the next response to fill.
  void reset_for_reuse(size_t budget) noexcept;
};

namespace h2pool_core {

class Endpoint;
class Pool;

using BodyTrailersFn = void (*)(void *user_data, std::vector<HeaderField> *out);

// Request state most requests never need, kept out of line and allocated
// on first use, so that it costs a pointer until then.
struct RequestRare {
  // The :authority sent, when the caller's Host header differs from the
  // URL's; empty: the URL's.
  std::string authority;
  // Extended CONNECT (RFC 8441): the :protocol of the tunnel this request
  // opens; empty for every other request.
  std::string protocol;
  // Trailer fields to send after a body from `body_reader` (streamed
  // uploads of the completion queue); called on the loop thread once the
  // reader reported the end. Null: none.
  BodyTrailersFn body_trailers = nullptr;
  std::string pending_raw;    // body bytes received while paused ...
  size_t pending_raw_pos = 0; // ... of which this many are delivered
  // Why it is waiting to be retried: what it fails with if it is not.
  Error retry_error;
  Error local_error; // set when we reset the stream ourselves
};

// Members are grouped by who sets them, and within a group the small ones
// sit together so that the struct has no padding holes: there is one per
// request in flight.
struct Request {
  // queued: waiting in its endpoint's queue for a stream slot.
  // retrying: the server did not process it; waiting out a retry delay.
  // throttled: likewise, waiting for the endpoint's retry budget.
  // parked: the stream has ended but a paused streaming response still
  // holds body bytes the caller has not taken.
  enum class State : uint8_t {
    submitted,
    queued,
    retrying,
    throttled,
    in_flight,
    parked,
    done
  };

  // Set on the caller's thread at submission; read-only afterwards.
  uint64_t id = 0;
  Method method;
  Url url;
  std::vector<HeaderField> headers;
  // The request body: `body_data`/`body_size` point into `body_copy` or at
  // the caller's buffer (borrowed, released through `body_release`), or
  // the body comes from `body_reader`.
  std::unique_ptr<uint8_t[]> body_copy;
  const uint8_t *body_data = nullptr;
  size_t body_size = 0;
  h2pool_body_release_cb body_release = nullptr;
  h2pool_body_read_cb body_reader = nullptr;
  int64_t body_content_length = -1; // for the reader; -1: unknown
  // Streaming responses and decoding.
  h2pool_headers_cb on_headers = nullptr;
  h2pool_data_cb on_data = nullptr;
  h2pool_response_cb cb = nullptr;
  void *user_data = nullptr;
  uint32_t timeout_ms = 0; // 0: none
  bool add_content_length = false;
  bool add_accept_encoding = false; // kAcceptEncoding, for auto-decoding
  bool auto_decompress = true;
  uint8_t http_version = H2POOL_HTTP_VERSION_DEFAULT; // h2pool_http_version
  // RFC 9218 priority (priority.h); changed later only on the loop thread,
  // by h2pool_request_set_priority(). The urgency orders the endpoint's
  // queue. `caller_priority`: the caller sent a `priority` header of its
  // own, which goes out instead of one made from these.
  uint8_t urgency = 3;
  bool incremental = false;
  bool caller_priority = false;
  // A tunnel (`protocol` set) under the pool's default timeout: it bounds
  // the setup only, not the open tunnel (see tunnel_open()).
  bool timeout_until_open = false;

  // Loop-thread state.
  Pool *owner = nullptr;        // the pool handling it
  Endpoint *endpoint = nullptr; // the pool's endpoint for it
  uint64_t refused_by = 0;      // connection that refused it; retry elsewhere
  // The last connection whose failure counted against this request (each
  // failed connection counts once), and how many have.
  uint64_t charged_connection = 0;
  uint32_t failed_connections = 0;
  uint32_t retries = 0;    // times sent back to the queue
  size_t body_offset = 0;  // request body bytes handed to nghttp2
  uint64_t body_bytes = 0; // body bytes kept or delivered, for the limit
  std::unique_ptr<ContentDecoder> decoder;
  // Response header bytes and fields so far, for the limits (which are
  // 32-bit; add_header_bytes() saturates).
  uint32_t header_bytes = 0;
  uint32_t header_fields = 0;
  // The connection and stream of the current attempt, the edges of its
  // timings and the server's address; copied into the response when it is
  // handed over (record_timings).
  uint64_t connection_id = 0;
  RequestTimes edges;
  std::string remote_ip;
  // Allocated when the response begins (resp()), so that a request still
  // waiting for its response holds none of it; null until then.
  std::unique_ptr<h2pool_response> response;
  std::unique_ptr<RequestRare> rare; // null: none of it yet
  Deadline timeout; // the request timeout (the pool's DeadlineQueue)
  // In flight: the response-header timeout; retrying: the retry delay.
  Deadline phase_deadline;
  uint32_t attempts = 0; // streams opened for this request so far
  int32_t stream_id = 0; // the current attempt's HTTP/2 stream; 0: none
  State state = State::submitted;
  uint8_t wire_protocol = H2POOL_PROTOCOL_UNKNOWN; // of the connection
  bool body_eof = false;          // the body reader reported its end
  bool upload_deferred = false;   // the body reader said H2POOL_BODY_WAIT
  bool headers_delivered = false; // final headers processed (on_headers)
  bool download_paused = false;
  bool got_headers = false; // a final response HEADERS arrived
  // Any response HEADERS (interim ones too) arrived: the server acted on
  // this attempt, so the request is never sent again.
  bool response_begun = false;
  bool end_stream = false;     // the response ended with END_STREAM
  bool in_trailers = false;    // receiving the header block after the final one
  bool counted_waiting = true; // still counted against max_pending_requests
  // Coalescing: on a connection of another origin's endpoint; answered 421
  // there (to be sent again on one of its own); kept off shared ones.
  bool coalesced = false;
  bool misdirected = false;
  bool no_coalesce = false;
  uint16_t remote_port = 0;

  // Intrusive list links: a request sits in exactly one list at a time: one
  // of its endpoint's waiting lists or its session's stream list.
  Request *prev = nullptr;
  Request *next = nullptr;
  void *owner_list = nullptr; // the list it is in, for assertions and removal

  // The edges its timings are computed from, kept where the response's
  // accessors read them.
  RequestTimes &times() { return edges; }
  // Counts `n` more response header bytes, saturating at the type's limit.
  void add_header_bytes(size_t n) {
    header_bytes = n >= UINT32_MAX - header_bytes ? UINT32_MAX
                                                  : uint32_t(header_bytes + n);
  }
  void add_header_field() {
    if (header_fields < UINT32_MAX)
      ++header_fields;
  }
  // The response, allocated on first use from the pool's cache (loop
  // thread only). Throws std::bad_alloc when out of memory.
  h2pool_response &resp();
  RequestRare &make_rare() {
    if (!rare)
      rare = std::make_unique<RequestRare>();
    return *rare;
  }
  // The :authority it sends.
  const std::string &authority() const {
    return rare && !rare->authority.empty() ? rare->authority : url.authority;
  }
  const std::string &protocol() const;
  BodyTrailersFn body_trailers() const {
    return rare ? rare->body_trailers : nullptr;
  }
  // The error of a stream we reset ourselves (code H2POOL_OK: none).
  const Error &local_error() const;
  Error &set_local_error(Error e) {
    return make_rare().local_error = std::move(e);
  }
  const Error &retry_error() const;
  // Puts the timings as of now, and the ids of the request, its stream and
  // connection, into the response if there is one (and the timings into
  // `err`, if any).
  void record_timings(Error *err);
  // Resets the per-attempt response state before a retry.
  void reset_for_retry();
  // Makes this request indistinguishable from a default-constructed one,
  // except that small header and body buffers keep their heap capacity for
  // the next request to fill. No timer may be pending and the request may
  // not be in any list.
  void reset_for_reuse() noexcept;
  // A retry must resend the body; a body read from a callback can only be
  // resent if none of it was read yet.
  bool body_replayable() const { return !body_reader || body_offset == 0; }
  // An extended CONNECT whose 2xx response arrived: the tunnel is open.
  bool tunnel_open() const {
    return !protocol().empty() && got_headers && response &&
           response->status / 100 == 2;
  }
  // Whether a paused streaming response still holds undelivered bytes.
  bool has_pending_body() const {
    return (rare && rare->pending_raw.size() > rare->pending_raw_pos) ||
           (decoder && decoder->has_pending());
  }
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

// Request objects recycled from completed requests to new ones, so that a
// steady stream of requests does not go through malloc and free for each
// (with hundreds in flight, glibc's per-thread caches hold too few to absorb
// that). Callers' threads take; the loop thread puts back once a completion
// callback has returned, and takes too when a callback submits the next
// request. A shared list (locked) serves other threads; past kShared
// entries the loop thread keeps requests in a list of its own, which it
// takes from and puts to without locking.
//
// Bounded: at most kMaxCached objects in all, each keeping at most
// kMaxRetainedBytes of buffers; what exceeds that is freed.
class RequestCache {
public:
  static constexpr size_t kMaxCached = 1024;
  static constexpr size_t kShared = 256;
  static constexpr size_t kMaxRetainedBytes = 4 * 1024;

  RequestCache() = default;
  ~RequestCache();
  RequestCache(const RequestCache &) = delete;
  RequestCache &operator=(const RequestCache &) = delete;

  // A request as a default-constructed one. `loop_thread`: the caller is
  // the pool's loop thread. Throws std::bad_alloc only if nothing is cached
  // and allocation fails.
  std::unique_ptr<Request> take(bool loop_thread);
  // Resets `req` (see Request::reset_for_reuse) and keeps it for a later
  // take(), or frees it if the cache is full. Accepts null. On the loop
  // thread its response, if any, goes to the responses kept below.
  void put(std::unique_ptr<Request> req, bool loop_thread) noexcept;

  // Responses, recycled likewise but on the loop thread only: they are
  // allocated there when a response begins (Request::resp()) and come back
  // through put() once their request has completed. At most kMaxCached,
  // each keeping at most kMaxRetainedBytes of buffers.
  std::unique_ptr<h2pool_response> take_response();
  void put_response(std::unique_ptr<h2pool_response> resp) noexcept;

private:
  static void free_list(Request *head);
  static Request *pop(Request **head, size_t *count);
  static void push(Request **head, size_t *count, Request *r);

  std::mutex mutex_;
  Request *head_ = nullptr; // linked through Request::next; guarded by mutex_
  size_t count_ = 0;        // guarded by mutex_
  std::atomic<size_t> shared_count_{0}; // count_, readable without the lock
  Request *local_head_ = nullptr;       // loop thread only
  size_t local_count_ = 0;              // loop thread only
  std::vector<std::unique_ptr<h2pool_response>> responses_; // loop thread
};

} // namespace h2pool_core
