// The completion queue (h2pool_queue) and the link between one queued
// request and its queue (QueueCall).
//
// A queued request is an ordinary request whose callbacks are the
// trampolines of QueueCall: on the loop thread they turn the response head,
// body chunks, upload progress and the completion into events, which callers
// drain from their own threads. So the queue shares every code path of the
// callback API and adds nothing to it.
//
// Locking: QueueCore::mutex_ guards the event list and the list of calls;
// QueueCall::mutex_ guards one request's buffers and flags. A call's lock may
// be held while taking the queue's, never the other way round; events are
// freed outside the queue's lock, since freeing a DATA event takes its
// call's.
//
// Calling into the pool from a caller's thread (resuming a download when
// the caller frees DATA events, resuming an upload when it writes, cancelling
// when the queue is destroyed) happens under the call's lock and only while
// the call is not done. The completion trampoline marks it done under that
// lock, and h2pool_destroy() returns only after every completion ran, so a
// call that finds `done_` false knows its pool is still there.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "error.h"
#include "h2pool.h"
#include "headers.h"
#include "request.h"

namespace h2pool_core {

class QueueCore;
class QueueCall;

} // namespace h2pool_core

// The public opaque event. One allocation per event; DATA events keep their
// call alive to give their bytes back when freed.
struct h2pool_event {
  int kind = 0;
  bool has_response = false;
  bool has_error = false;
  uint64_t request_id = 0;
  void *user_data = nullptr;
  h2pool_response response;
  h2pool_error error;
  std::string data;
  std::shared_ptr<h2pool_core::QueueCall> call; // DATA events only
  h2pool_event *next = nullptr;                 // the queue's list

  ~h2pool_event();
};

namespace h2pool_core {

// Defaults of h2pool_request_opts_set_queue_buffers().
constexpr uint32_t kQueueBufferDefault = 256 * 1024;
constexpr uint32_t kQueueBufferMax = 1u << 30;

class QueueCore {
public:
  QueueCore() = default;
  ~QueueCore();
  QueueCore(const QueueCore &) = delete;
  QueueCore &operator=(const QueueCore &) = delete;

  // Creates the eventfd. Returns an H2POOL_* code.
  int init();
  int fd() const { return fd_; }

  // Any thread: admits a new call (false once shut down) or lets it go.
  bool add_call(QueueCall *call);
  void remove_call(QueueCall *call);
  // Adds an event (or frees it if the queue is destroyed) without waking
  // anyone yet: returns true when the caller must arrange for flush() to
  // run (none is pending). A pool's loop thread
  // adds the events of one turn this way and wakes the queue once at its
  // end, so a burst of responses costs one wake, not one per event.
  bool push_deferred(std::unique_ptr<h2pool_event> ev);
  // Wakes a waiter and readies the descriptor for what push_deferred()
  // added.
  void flush();
  int next(h2pool_event **out, size_t max, int timeout_ms);
  void shutdown();
  // The handle is going away: frees pending events, drops later ones and
  // cancels the calls still under way.
  void destroy();

  // Tests: how many times the descriptor was made readable.
  uint64_t wakes() const {
    std::lock_guard lock(mutex_);
    return wakes_;
  }

private:
  bool drained_locked() const {
    return shut_ && calls_head_ == nullptr && head_ == nullptr;
  }
  void signal_locked();
  void unsignal_locked();

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  h2pool_event *head_ = nullptr;    // guarded by mutex_
  h2pool_event *tail_ = nullptr;    // guarded by mutex_
  QueueCall *calls_head_ = nullptr; // calls under way; guarded by mutex_
  size_t waiters_ = 0;              // guarded by mutex_
  uint64_t wakes_ = 0;              // guarded by mutex_
  bool shut_ = false;               // guarded by mutex_
  bool destroyed_ = false;          // guarded by mutex_
  bool signaled_ = false;           // the eventfd is readable; mutex_
  bool flush_pending_ = false;      // a flush() is on its way; mutex_
  int fd_ = -1;
};

// What h2pool_queue_request() knows of the request it submits.
struct QueueCallOptions {
  bool stream_response = false;
  bool stream_upload = false;
  int64_t upload_length = -1;
  uint32_t download_buffer = kQueueBufferDefault;
  uint32_t upload_buffer = kQueueBufferDefault;
};

class QueueCall : public std::enable_shared_from_this<QueueCall> {
public:
  QueueCall(std::shared_ptr<QueueCore> queue, h2pool *pool, void *user_data,
            const QueueCallOptions &opts)
      : queue_(std::move(queue)), pool_(pool), user_data_(user_data),
        opts_(opts) {}

  // Caller's thread, at submission: installs the trampolines in `req`
  // (whose user data this call becomes) and keeps itself alive until the
  // completion. `id` is the request's.
  void attach(Request &req, uint64_t id);
  // The submission was refused after attach(): no trampoline will run.
  void detach();
  uint64_t id() const { return id_; }
  bool streams_upload() const { return opts_.stream_upload; }

  // Any thread, by h2pool_request_write_body() and _end_body(), inside the
  // pool's gate. Return H2POOL_* codes.
  int write(const uint8_t *data, size_t len, size_t *accepted);
  int end(std::vector<HeaderField> trailers);
  // A DATA event of `len` bytes was freed.
  void release_data(size_t len);
  // The queue is being destroyed: cancels the request unless it is done.
  void cancel();

  // Links in the queue's list of calls; guarded by the queue's mutex.
  QueueCall *prev = nullptr;
  QueueCall *next = nullptr;

private:
  static int on_headers(const h2pool_response *resp, void *user_data);
  static int on_data(const uint8_t *data, size_t len, void *user_data);
  static int64_t read_body(uint8_t *buf, size_t len, int *eof, void *user_data);
  static void trailers(void *user_data, std::vector<HeaderField> *out);
  static void on_complete(const h2pool_response *resp, const h2pool_error *err,
                          void *user_data);

  std::unique_ptr<h2pool_event> make_event(int kind) const;
  // Loop thread: queues `ev`, waking the queue at the end of this loop turn.
  void emit(std::unique_ptr<h2pool_event> ev);

  const std::shared_ptr<QueueCore> queue_;
  h2pool *const pool_;
  void *const user_data_;
  const QueueCallOptions opts_;
  uint64_t id_ = 0;
  // The reference the request holds, from attach() to the completion.
  std::shared_ptr<QueueCall> self_;

  std::mutex mutex_;
  bool done_ = false; // the completion ran; guarded by mutex_
  // Download: bytes in DATA events not yet freed, and whether the full
  // buffer paused the stream. Guarded by mutex_.
  size_t held_ = 0;
  bool paused_ = false;
  // Upload, guarded by mutex_: bytes written and not yet sent (from
  // upload_offset_ on), whether the body was ended, whether a write found
  // the buffer full (so a WRITABLE event is owed), and whether the body
  // reader is waiting for bytes (so the upload must be resumed).
  std::string upload_;
  size_t upload_offset_ = 0;
  bool ended_ = false;
  bool owe_writable_ = false;
  bool reader_waiting_ = false;
  std::vector<HeaderField> trailers_;
};

// The streamed uploads of one pool by request id, for
// h2pool_request_write_body() and _end_body().
class UploadRegistry {
public:
  void add(uint64_t id, std::shared_ptr<QueueCall> call);
  void remove(uint64_t id);
  std::shared_ptr<QueueCall> find(uint64_t id);

private:
  std::mutex mutex_;
  std::unordered_map<uint64_t, std::shared_ptr<QueueCall>> calls_;
};

// The pool's registry (the pool handle's layout is known only to api.cc).
UploadRegistry &upload_registry(h2pool *pool);
// Runs `task` on the thread of the loop holding request `id` after what it
// is doing now (from that thread). Returns an H2POOL_* code: not OK once the
// pool is closing.
int post_to_loop(h2pool *pool, uint64_t id, std::function<void()> task);

// Validates and submits a request (api.cc): with `call` null, a callback
// request (`cb` required); with `call`, a queued one, whose callbacks
// `call` installs. Returns an H2POOL_* code.
int submit_request(h2pool *pool, const char *method, const char *url,
                   const h2pool_header *headers, size_t nheaders,
                   const uint8_t *body, size_t body_len,
                   const h2pool_request_opts *opts, h2pool_response_cb cb,
                   void *user_data, uint64_t *out_id, QueueCall *call);

} // namespace h2pool_core

struct h2pool_queue {
  std::shared_ptr<h2pool_core::QueueCore> core;
};
