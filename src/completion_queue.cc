#include "completion_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

h2pool_event::~h2pool_event() {
  if (call && kind == H2POOL_EVENT_DATA)
    call->release_data(data.size());
}

namespace h2pool_core {

// --- QueueCore ---------------------------------------------------------------

QueueCore::~QueueCore() {
  h2pool_event *ev = head_;
  while (ev) {
    h2pool_event *next = ev->next;
    delete ev;
    ev = next;
  }
  if (fd_ >= 0)
    close(fd_);
}

int QueueCore::init() {
  fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return fd_ >= 0 ? H2POOL_OK : H2POOL_ERR_SYSTEM;
}

void QueueCore::signal_locked() {
  if (signaled_)
    return;
  uint64_t one = 1;
  // An eventfd write only fails if the counter would overflow, which one
  // write per batch cannot make it.
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
  signaled_ = true;
  ++wakes_;
}

void QueueCore::unsignal_locked() {
  if (!signaled_)
    return;
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(fd_, &value, sizeof value);
  signaled_ = false;
}

bool QueueCore::add_call(QueueCall *call) {
  std::lock_guard lock(mutex_);
  if (shut_ || destroyed_)
    return false;
  call->prev = nullptr;
  call->next = calls_head_;
  if (calls_head_)
    calls_head_->prev = call;
  calls_head_ = call;
  return true;
}

void QueueCore::remove_call(QueueCall *call) {
  std::lock_guard lock(mutex_);
  if (call->prev)
    call->prev->next = call->next;
  else
    calls_head_ = call->next;
  if (call->next)
    call->next->prev = call->prev;
  call->prev = call->next = nullptr;
  if (drained_locked()) {
    signal_locked();
    cv_.notify_all();
  }
}

bool QueueCore::push_deferred(std::unique_ptr<h2pool_event> ev) {
  std::unique_lock lock(mutex_);
  if (destroyed_) {
    lock.unlock();
    ev.reset();
    return false;
  }
  h2pool_event *raw = ev.release();
  if (tail_)
    tail_->next = raw;
  else
    head_ = raw;
  tail_ = raw;
  if (flush_pending_ || signaled_)
    return false; // already readable, or about to be
  flush_pending_ = true;
  return true;
}

void QueueCore::flush() {
  std::lock_guard lock(mutex_);
  flush_pending_ = false;
  if (head_ == nullptr)
    return;
  signal_locked();
  if (waiters_)
    cv_.notify_one();
}

int QueueCore::next(h2pool_event **out, size_t max, int timeout_ms) {
  std::unique_lock lock(mutex_);
  if (head_ == nullptr) {
    if (drained_locked())
      return H2POOL_ERR_QUEUE_CLOSED;
    if (timeout_ms == 0)
      return 0;
    auto ready = [this] { return head_ != nullptr || drained_locked(); };
    ++waiters_;
    if (timeout_ms < 0)
      cv_.wait(lock, ready);
    else
      cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready);
    --waiters_;
    if (head_ == nullptr)
      return drained_locked() ? H2POOL_ERR_QUEUE_CLOSED : 0;
  }
  size_t n = 0;
  while (head_ && n < max) {
    h2pool_event *ev = head_;
    head_ = ev->next;
    ev->next = nullptr;
    out[n++] = ev;
  }
  if (head_ == nullptr) {
    tail_ = nullptr;
    // Taking the last event of a drained queue leaves the descriptor
    // readable for good. The event may be taken before the flush that
    // would have signalled it, and that flush then finds nothing to do.
    if (drained_locked())
      signal_locked();
    else
      unsignal_locked();
  } else if (waiters_) {
    // More than this caller took: another waiter may have the rest.
    cv_.notify_one();
  }
  return int(n);
}

void QueueCore::shutdown() {
  std::lock_guard lock(mutex_);
  shut_ = true;
  if (drained_locked()) {
    signal_locked();
    cv_.notify_all();
  }
}

void QueueCore::destroy() {
  h2pool_event *events;
  std::vector<std::shared_ptr<QueueCall>> calls;
  {
    std::lock_guard lock(mutex_);
    destroyed_ = true;
    shut_ = true;
    events = head_;
    head_ = tail_ = nullptr;
    for (QueueCall *c = calls_head_; c; c = c->next)
      calls.push_back(c->shared_from_this());
  }
  while (events) {
    h2pool_event *next = events->next;
    delete events;
    events = next;
  }
  for (auto &c : calls)
    c->cancel();
}

// --- QueueCall ---------------------------------------------------------------

void QueueCall::attach(Request &req, uint64_t id) {
  id_ = id;
  self_ = shared_from_this();
  req.cb = &QueueCall::on_complete;
  req.user_data = this;
  if (opts_.stream_response) {
    req.on_headers = &QueueCall::on_headers;
    req.on_data = &QueueCall::on_data;
  }
  if (opts_.stream_upload) {
    req.body_reader = &QueueCall::read_body;
    req.make_rare().body_trailers = &QueueCall::trailers;
  }
}

void QueueCall::detach() { self_.reset(); }

void QueueCall::emit(std::unique_ptr<h2pool_event> ev) {
  if (!queue_->push_deferred(std::move(ev)))
    return;
  std::shared_ptr<QueueCore> queue = queue_;
  int rc = H2POOL_ERR_INTERNAL;
  try {
    rc = post_to_loop(pool_, id_, [queue] { queue->flush(); });
  } catch (...) {
  }
  if (rc != H2POOL_OK)
    queue_->flush(); // the pool is closing: wake at once
}

std::unique_ptr<h2pool_event> QueueCall::make_event(int kind) const {
  auto ev = std::make_unique<h2pool_event>();
  ev->kind = kind;
  ev->request_id = id_;
  ev->user_data = user_data_;
  return ev;
}

int QueueCall::on_headers(const h2pool_response *resp, void *user_data) {
  auto call = static_cast<QueueCall *>(user_data);
  auto ev = call->make_event(H2POOL_EVENT_HEADERS);
  ev->has_response = true;
  ev->response = *resp;
  ev->response.request_id = call->id_;
  call->emit(std::move(ev));
  return 0;
}

int QueueCall::on_data(const uint8_t *data, size_t len, void *user_data) {
  auto call = static_cast<QueueCall *>(user_data);
  auto ev = call->make_event(H2POOL_EVENT_DATA);
  ev->data.assign(reinterpret_cast<const char *>(data), len);
  bool pause;
  {
    std::lock_guard lock(call->mutex_);
    call->held_ += len;
    pause = call->held_ >= call->opts_.download_buffer;
    if (pause)
      call->paused_ = true;
  }
  ev->call = call->shared_from_this();
  call->emit(std::move(ev));
  return pause ? H2POOL_DATA_PAUSE : 0;
}

void QueueCall::release_data(size_t len) {
  std::lock_guard lock(mutex_);
  held_ -= std::min(held_, len);
  if (paused_ && !done_ && held_ <= opts_.download_buffer / 2) {
    paused_ = false;
    // Under the lock, with done_ false: the pool still exists (see the
    // header). The pool refuses it once h2pool_destroy() has begun.
    h2pool_request_resume_download(pool_, id_);
  }
}

int64_t QueueCall::read_body(uint8_t *buf, size_t len, int *eof,
                             void *user_data) {
  auto call = static_cast<QueueCall *>(user_data);
  bool writable = false;
  size_t n;
  {
    std::lock_guard lock(call->mutex_);
    size_t avail = call->upload_.size() - call->upload_offset_;
    n = std::min(avail, len);
    if (n == 0 && !call->ended_) {
      call->reader_waiting_ = true;
      return H2POOL_BODY_WAIT;
    }
    memcpy(buf, call->upload_.data() + call->upload_offset_, n);
    call->upload_offset_ += n;
    avail -= n;
    if (avail == 0) {
      call->upload_.clear();
      call->upload_offset_ = 0;
      if (call->ended_)
        *eof = 1;
    } else if (call->upload_offset_ > call->upload_.size() / 2) {
      call->upload_.erase(0, call->upload_offset_);
      call->upload_offset_ = 0;
    }
    if (call->owe_writable_ && avail <= call->opts_.upload_buffer / 2) {
      call->owe_writable_ = false;
      writable = true;
    }
  }
  if (writable)
    call->emit(call->make_event(H2POOL_EVENT_WRITABLE));
  return int64_t(n);
}

void QueueCall::trailers(void *user_data, std::vector<HeaderField> *out) {
  auto call = static_cast<QueueCall *>(user_data);
  std::lock_guard lock(call->mutex_);
  out->swap(call->trailers_);
}

int QueueCall::write(const uint8_t *data, size_t len, size_t *accepted) {
  std::lock_guard lock(mutex_);
  if (done_ || ended_)
    return H2POOL_ERR_NO_SUCH_REQUEST;
  size_t buffered = upload_.size() - upload_offset_;
  size_t room =
      buffered < opts_.upload_buffer ? opts_.upload_buffer - buffered : 0;
  size_t n = std::min(room, len);
  upload_.append(reinterpret_cast<const char *>(data), n);
  *accepted = n;
  if (n < len)
    owe_writable_ = true;
  if (n > 0 && reader_waiting_) {
    reader_waiting_ = false;
    h2pool_request_resume_upload(pool_, id_);
  }
  return H2POOL_OK;
}

int QueueCall::end(std::vector<HeaderField> trailers) {
  std::lock_guard lock(mutex_);
  if (done_ || ended_)
    return H2POOL_ERR_NO_SUCH_REQUEST;
  ended_ = true;
  trailers_ = std::move(trailers);
  if (reader_waiting_) {
    reader_waiting_ = false;
    h2pool_request_resume_upload(pool_, id_);
  }
  return H2POOL_OK;
}

void QueueCall::cancel() {
  std::lock_guard lock(mutex_);
  if (!done_)
    h2pool_cancel(pool_, id_);
}

void QueueCall::on_complete(const h2pool_response *resp,
                            const h2pool_error *err, void *user_data) {
  auto call = static_cast<QueueCall *>(user_data);
  // Alive until the end of this function, whatever the events do.
  std::shared_ptr<QueueCall> self = std::move(call->self_);
  if (call->opts_.stream_upload)
    upload_registry(call->pool_).remove(call->id_);
  {
    std::lock_guard lock(call->mutex_);
    call->done_ = true;
    call->upload_.clear();
    call->upload_.shrink_to_fit();
  }
  auto ev = call->make_event(H2POOL_EVENT_COMPLETE);
  if (resp) {
    // The response belongs to the request, which the pool recycles as soon
    // as this returns: it is moved, not copied (a buffered body may be
    // large). It was never const; the callback signature only lends it.
    ev->has_response = true;
    ev->response = std::move(*const_cast<h2pool_response *>(resp));
  }
  if (err) {
    ev->has_error = true;
    ev->error = *err;
  }
  call->emit(std::move(ev));
  call->queue_->remove_call(call);
}

// --- UploadRegistry
// ------------------------------------------------------------

void UploadRegistry::add(uint64_t id, std::shared_ptr<QueueCall> call) {
  std::lock_guard lock(mutex_);
  calls_.emplace(id, std::move(call));
}

void UploadRegistry::remove(uint64_t id) {
  std::shared_ptr<QueueCall> gone;
  std::lock_guard lock(mutex_);
  auto it = calls_.find(id);
  if (it != calls_.end()) {
    gone = std::move(it->second);
    calls_.erase(it);
  }
}

std::shared_ptr<QueueCall> UploadRegistry::find(uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : it->second;
}

} // namespace h2pool_core

// --- Events (public C API) -------------------------------------------------

extern "C" {

int h2pool_event_kind(const h2pool_event *ev) {
  return ev ? ev->kind : H2POOL_ERR_INVALID_ARGUMENT;
}

uint64_t h2pool_event_request_id(const h2pool_event *ev) {
  return ev ? ev->request_id : 0;
}

void *h2pool_event_user_data(const h2pool_event *ev) {
  return ev ? ev->user_data : nullptr;
}

const h2pool_response *h2pool_event_response(const h2pool_event *ev) {
  return ev && ev->has_response ? &ev->response : nullptr;
}

const h2pool_error *h2pool_event_error(const h2pool_event *ev) {
  return ev && ev->has_error ? &ev->error : nullptr;
}

const uint8_t *h2pool_event_data(const h2pool_event *ev, size_t *len) {
  bool data = ev && ev->kind == H2POOL_EVENT_DATA;
  if (len)
    *len = data ? ev->data.size() : 0;
  return data ? reinterpret_cast<const uint8_t *>(ev->data.data()) : nullptr;
}

void h2pool_event_free(h2pool_event *ev) { delete ev; }

} // extern "C"
