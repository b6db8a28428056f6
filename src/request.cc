#include "request.h"

#include <cassert>
#include <cstring>
#include <strings.h>

#include "h2pool.h"

namespace h2pool_core {

void Request::reset_for_retry() {
  body_offset = 0;
  got_headers = false;
  end_stream = false;
  in_trailers = false;
  header_bytes = 0;
  header_fields = 0;
  body_eof = false;
  upload_deferred = false;
  headers_delivered = false;
  download_paused = false;
  pending_raw.clear();
  body_bytes = 0;
  decoder.reset();
  response.trailers.clear();
  response.content_encoding.clear();
  local_error = Error{};
  response.status = 0;
  response.headers.clear();
  response.body.clear();
  response.stream_id = 0;
  response.connection_id = 0;
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
  return resp ? resp->trailers.size() : 0;
}

int h2pool_response_trailer_at(const h2pool_response *resp, size_t index,
                               h2pool_header *out) {
  if (resp == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return field_at(resp->trailers, index, out);
}

const char *h2pool_response_trailer(const h2pool_response *resp,
                                    const char *name, size_t *value_len) {
  return resp ? field_find(resp->trailers, name, value_len) : nullptr;
}

const char *h2pool_response_content_encoding(const h2pool_response *resp) {
  if (resp == nullptr || resp->content_encoding.empty())
    return nullptr;
  return resp->content_encoding.c_str();
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
