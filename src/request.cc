#include "request.h"

#include <algorithm>

#include <event2/event.h>

#include <cassert>
#include <cstring>
#include <memory>
#include <strings.h>
#include <type_traits>

#include "h2pool.h"
#include "pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define H2POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2POOL_ASAN 1
#endif
#endif
#ifdef H2POOL_ASAN
#include <sanitizer/asan_interface.h>
#define H2POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define H2POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define H2POOL_POISON(p, n) ((void)(p), (void)(n))
#define H2POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

const std::string &h2pool_response::reason() const {
  static const std::string none;
  return rare ? rare->reason : none;
}

const std::string &h2pool_response::content_encoding() const {
  static const std::string none;
  return rare ? rare->content_encoding : none;
}

void h2pool_response::reset_for_reuse(size_t budget) noexcept {
  auto fits = [&budget](size_t bytes) {
    if (bytes > budget)
      return false;
    budget -= bytes;
    return true;
  };
  h2pool_core::FieldList kept_headers;
  std::string kept_body;
  h2pool_core::DeepPtr<h2pool_core::ResponseRare> kept_rare;
  if (fits(headers.heap_bytes()))
    kept_headers = std::move(headers);
  if (fits(body.capacity()))
    kept_body = std::move(body);
  if (rare && fits(sizeof(h2pool_core::ResponseRare))) {
    kept_rare = std::move(rare);
    *kept_rare = h2pool_core::ResponseRare{};
  }
  // Re-created rather than assigned from a fresh one, because assigning a
  // short string keeps the target's heap buffer.
  static_assert(std::is_nothrow_default_constructible_v<h2pool_response>);
  std::destroy_at(this);
  std::construct_at(this);
  kept_headers.clear();
  headers = std::move(kept_headers);
  kept_body.clear();
  body = std::move(kept_body);
  rare = std::move(kept_rare);
}

namespace h2pool_core {

Method &Method::operator=(std::string_view m) {
  static constexpr std::string_view kCommon[] = {"GET",   "HEAD",    "POST",
                                                 "PUT",   "DELETE",  "OPTIONS",
                                                 "PATCH", "CONNECT", "TRACE"};
  for (std::string_view c : kCommon)
    if (m == c) {
      release();
      data_ = c.data();
      size_ = uint32_t(c.size());
      return *this;
    }
  // Allocated before the old one goes, so a failure leaves it unchanged.
  char *copy = new char[m.size() + 1];
  std::memcpy(copy, m.data(), m.size());
  copy[m.size()] = '\0';
  release();
  data_ = copy;
  size_ = uint32_t(m.size());
  owned_ = true;
  return *this;
}

void Method::release() noexcept {
  if (owned_)
    delete[] data_;
  data_ = "";
  size_ = 0;
  owned_ = false;
}

const std::string &Request::protocol() const {
  static const std::string none;
  return rare ? rare->protocol : none;
}

const Error &Request::local_error() const {
  static const Error none;
  return rare ? rare->local_error : none;
}

const Error &Request::retry_error() const {
  static const Error none;
  return rare ? rare->retry_error : none;
}

h2pool_response &Request::resp() {
  if (!response)
    response = owner ? owner->cache().take_response()
                     : std::make_unique<h2pool_response>();
  return *response;
}

void Request::record_timings(Error *err) {
  // Inside a read pass, the pass's reading: when the last bytes arrived.
  // Never before an edge this request already reached.
  int64_t end = std::max({pass_now_ns(), edges.submitted, edges.placed,
                          edges.pretransfer, edges.first_byte});
  auto fill = [&](Timings &t) {
    t.edges = edges;
    t.end = end;
    t.remote_ip = remote_ip;
    t.remote_port = remote_port;
  };
  if (err) {
    Timings t;
    fill(t);
    err->timings.set(t);
  }
  if (response) {
    fill(response->timings);
    response->stream_id = stream_id;
    response->connection_id = connection_id;
    response->protocol = wire_protocol;
    response->request_id = id;
  }
}

void Request::reset_for_retry() {
  times().new_attempt();
  body_offset = 0;
  got_headers = false;
  response_begun = false;
  end_stream = false;
  in_trailers = false;
  header_bytes = 0;
  header_fields = 0;
  body_eof = false;
  upload_deferred = false;
  headers_delivered = false;
  download_paused = false;
  if (rare) {
    rare->pending_raw.clear();
    rare->pending_raw_pos = 0;
    rare->local_error = Error{};
  }
  body_bytes = 0;
  decoder.reset();
  // The attempt's response, if one began, is dropped: retries are rare,
  // and a request waiting to be sent again should hold no response.
  response.reset();
  stream_id = 0;
  connection_id = 0;
  wire_protocol = H2POOL_PROTOCOL_UNKNOWN;
}

void Request::reset_for_reuse() noexcept {
  assert(owner_list == nullptr);
  // The pool disarms its deadlines before it lets go of a request; should
  // one still be armed, it would fire into the next request.
  assert(!timeout.armed() && !phase_deadline.armed());

  // Buffers are kept in the order they are most often needed, while they
  // fit a budget, so one large response cannot pin its memory in the cache.
  size_t budget = RequestCache::kMaxRetainedBytes;
  auto fits = [&budget](size_t bytes) {
    if (bytes > budget)
      return false;
    budget -= bytes;
    return true;
  };
  std::vector<HeaderField> kept_request_headers;
  if (fits(headers.capacity() * sizeof(HeaderField)))
    kept_request_headers = std::move(headers);
  // The box of rarely used state stays allocated (emptied) once a request
  // has needed it; its contents go. (The response, if still attached, is
  // freed: the cache recycles responses on its own.)
  std::unique_ptr<RequestRare> kept_rare;
  if (rare && fits(sizeof(RequestRare))) {
    kept_rare = std::move(rare);
    *kept_rare = RequestRare{};
  }

  // Everything else as a new request has it: re-created rather than
  // assigned from a fresh one, because assigning a short string keeps the
  // target's heap buffer (the request body, say). Value-initialisation
  // zeroes the `struct event`s.
  static_assert(std::is_nothrow_default_constructible_v<Request>);
  std::destroy_at(this);
  std::construct_at(this);

  kept_request_headers.clear();
  headers = std::move(kept_request_headers);
  rare = std::move(kept_rare);
}

RequestCache::~RequestCache() {
  free_list(head_);
  free_list(local_head_);
}

void RequestCache::free_list(Request *r) {
  while (r) {
    H2POOL_UNPOISON(r, sizeof *r);
    Request *next = r->next;
    delete r;
    r = next;
  }
}

std::unique_ptr<Request> RequestCache::take(bool loop_thread) {
  if (loop_thread && local_head_)
    return std::unique_ptr<Request>(pop(&local_head_, &local_count_));
  {
    std::lock_guard lock(mutex_);
    if (head_) {
      shared_count_.store(count_ - 1, std::memory_order_relaxed);
      return std::unique_ptr<Request>(pop(&head_, &count_));
    }
  }
  return std::make_unique<Request>();
}

std::unique_ptr<h2pool_response> RequestCache::take_response() {
  if (responses_.empty())
    return std::make_unique<h2pool_response>();
  std::unique_ptr<h2pool_response> r = std::move(responses_.back());
  responses_.pop_back();
  return r;
}

void RequestCache::put_response(
    std::unique_ptr<h2pool_response> resp) noexcept {
  if (!resp || responses_.size() >= kMaxCached)
    return; // `resp` frees it
  resp->reset_for_reuse(kMaxRetainedBytes);
  try {
    responses_.push_back(std::move(resp));
  } catch (...) {
    // No memory to grow the list: the response is freed instead.
  }
}

void RequestCache::put(std::unique_ptr<Request> req,
                       bool loop_thread) noexcept {
  if (!req)
    return;
  if (loop_thread)
    put_response(std::move(req->response));
  // Outside the lock: resetting frees the buffers that are not kept.
  req->reset_for_reuse();
  // The shared list comes first, up to kShared, so that callers on other
  // threads find requests to take; beyond that the loop thread keeps them
  // for the submissions its own callbacks make, without locking.
  if (loop_thread && shared_count_.load(std::memory_order_relaxed) >= kShared) {
    if (local_count_ < kMaxCached - kShared)
      push(&local_head_, &local_count_, req.release());
    return; // else `req` frees it
  }
  {
    std::lock_guard lock(mutex_);
    if (count_ < kShared || (!loop_thread && count_ < kMaxCached)) {
      push(&head_, &count_, req.release());
      shared_count_.store(count_, std::memory_order_relaxed);
      return;
    }
  }
  req.reset(); // full: freed outside the lock
}

Request *RequestCache::pop(Request **head, size_t *count) {
  Request *r = *head;
  H2POOL_UNPOISON(r, sizeof *r);
  *head = r->next;
  --*count;
  r->next = nullptr;
  return r;
}

void RequestCache::push(Request **head, size_t *count, Request *r) {
  r->next = *head;
  *head = r;
  ++*count;
  // Under AddressSanitizer a cached request is off limits, so a stale
  // pointer to a completed request is still reported as it would be after
  // a free.
  H2POOL_POISON(r, sizeof *r);
}

void RequestList::push_back(Request *r) {
  assert(r->owner_list == nullptr);
  r->owner_list = this;
  r->prev = tail_;
  r->next = nullptr;
  if (tail_)
    tail_->next = r;
  else
    head_ = r;
  tail_ = r;
  ++size_;
}

void RequestList::push_front(Request *r) {
  assert(r->owner_list == nullptr);
  r->owner_list = this;
  r->prev = nullptr;
  r->next = head_;
  if (head_)
    head_->prev = r;
  else
    tail_ = r;
  head_ = r;
  ++size_;
}

void RequestList::remove(Request *r) {
  assert(r->owner_list == this);
  if (r->prev)
    r->prev->next = r->next;
  else
    head_ = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    tail_ = r->prev;
  r->prev = r->next = nullptr;
  r->owner_list = nullptr;
  --size_;
}

Request *RequestList::pop_front() {
  Request *r = head_;
  if (r)
    remove(r);
  return r;
}

} // namespace h2pool_core

// --- Response accessors (public C API) -------------------------------------

extern "C" {

int h2pool_response_status(const h2pool_response *resp) {
  return resp ? resp->status : 0;
}

size_t h2pool_response_header_count(const h2pool_response *resp) {
  return resp ? resp->headers.size() : 0;
}

namespace {

int field_at(const h2pool_core::FieldList &list, size_t index,
             h2pool_header *out) {
  if (out == nullptr || index >= list.size())
    return H2POOL_ERR_INVALID_ARGUMENT;
  std::string_view n = list.name(index), v = list.value(index);
  out->name = n.data();
  out->name_len = n.size();
  out->value = v.data();
  out->value_len = v.size();
  return H2POOL_OK;
}

const char *field_find(const h2pool_core::FieldList &list, const char *name,
                       size_t *value_len) {
  if (name == nullptr)
    return nullptr;
  long i = list.find(name);
  if (i < 0)
    return nullptr;
  std::string_view v = list.value(size_t(i));
  if (value_len)
    *value_len = v.size();
  return v.data();
}

} // namespace

int h2pool_response_header_at(const h2pool_response *resp, size_t index,
                              h2pool_header *out) {
  if (resp == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return field_at(resp->headers, index, out);
}

const char *h2pool_response_header(const h2pool_response *resp,
                                   const char *name, size_t *value_len) {
  return resp ? field_find(resp->headers, name, value_len) : nullptr;
}

size_t h2pool_response_trailer_count(const h2pool_response *resp) {
  return resp && resp->trailers() ? resp->trailers()->size() : 0;
}

int h2pool_response_trailer_at(const h2pool_response *resp, size_t index,
                               h2pool_header *out) {
  if (resp == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  static const h2pool_core::FieldList none;
  return field_at(resp->trailers() ? *resp->trailers() : none, index, out);
}

const char *h2pool_response_trailer(const h2pool_response *resp,
                                    const char *name, size_t *value_len) {
  static const h2pool_core::FieldList none;
  return resp ? field_find(resp->trailers() ? *resp->trailers() : none, name,
                           value_len)
              : nullptr;
}

const char *h2pool_response_content_encoding(const h2pool_response *resp) {
  if (resp == nullptr || resp->content_encoding().empty())
    return nullptr;
  return resp->content_encoding().c_str();
}

const uint8_t *h2pool_response_body(const h2pool_response *resp, size_t *len) {
  if (resp == nullptr) {
    if (len)
      *len = 0;
    return nullptr;
  }
  if (len)
    *len = resp->body.size();
  return reinterpret_cast<const uint8_t *>(resp->body.data());
}

int h2pool_response_protocol(const h2pool_response *resp) {
  return resp ? resp->protocol : H2POOL_PROTOCOL_UNKNOWN;
}

const char *h2pool_protocol_name(int protocol) {
  switch (protocol) {
  case H2POOL_PROTOCOL_HTTP_1_0:
    return "HTTP/1.0";
  case H2POOL_PROTOCOL_HTTP_1_1:
    return "HTTP/1.1";
  case H2POOL_PROTOCOL_HTTP_2:
    return "HTTP/2";
  default:
    return "unknown";
  }
}

const char *h2pool_response_reason(const h2pool_response *resp) {
  return resp ? resp->reason().c_str() : "";
}

int32_t h2pool_response_stream_id(const h2pool_response *resp) {
  return resp ? resp->stream_id : 0;
}

uint64_t h2pool_response_connection_id(const h2pool_response *resp) {
  return resp ? resp->connection_id : 0;
}

uint64_t h2pool_response_request_id(const h2pool_response *resp) {
  return resp ? resp->request_id : 0;
}

} // extern "C"
