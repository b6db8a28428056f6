#include "loop.h"
#include "socket_close.h"

#include <pthread.h>
#include <sys/eventfd.h>

#include <csignal>
#include <unistd.h>

#include <cerrno>

#include "h2pool.h"

namespace h2pool_core {
Loop::~Loop() {
  if (thread_.joinable())
    thread_.join();
  wake_event_.reset();
  owned_base_.reset();
  base_ = nullptr;
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

int Loop::init(BatchHandler handler, Mode mode, event_base *caller_base) {
  handler_ = std::move(handler);
  mode_ = mode;
  if (mode == Mode::caller_base) {
    base_ = caller_base;
  } else {
    event_config *cfg = event_config_new();
    if (cfg == nullptr)
      return H2POOL_ERR_NOMEM;
    // All loop state is owned by the loop thread; other threads only touch
    // the mutex-guarded queue and the eventfd, so libevent needs no locking.
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    owned_base_.reset(event_base_new_with_config(cfg));
    event_config_free(cfg);
    base_ = owned_base_.get();
  }
  if (base_ == nullptr)
    return H2POOL_ERR_SYSTEM;
  if (mode != Mode::own_thread)
    thread_id_.store(std::this_thread::get_id());
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0)
    return H2POOL_ERR_SYSTEM;
  wake_event_.reset(event_new(
      base_, wake_fd_, EV_READ | EV_PERSIST,
      [](evutil_socket_t, short what, void *arg) {
        static_cast<Loop *>(arg)->on_wake(what);
      },
      this));
  if (!wake_event_ || event_add(wake_event_.get(), nullptr) != 0)
    return H2POOL_ERR_SYSTEM;
  return H2POOL_OK;
}

int Loop::start() {
  if (mode_ != Mode::own_thread)
    return H2POOL_OK;
  try {
    thread_ = std::thread([this] {
      // Writing to a socket the peer has closed raises SIGPIPE, whose default
      // action kills the process; in this thread it stays blocked, so such a
      // write just fails with EPIPE and the connection closes.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      thread_id_.store(std::this_thread::get_id());
      event_base_dispatch(base_);
      if (auto hook = std::move(exit_hook_))
        hook(); // may delete this Loop: touch no member after it
    });
  } catch (const std::system_error &) {
    return H2POOL_ERR_SYSTEM;
  }
  return H2POOL_OK;
}

// Whether a wake-up may skip the eventfd: on the loop thread the wake-up
// event can be activated directly, unless the caller drives the loop and is
// not inside drive() now, for then only the eventfd becoming readable tells
// the caller to call in.
bool Loop::local_wake() const {
  return on_loop_thread() && (mode_ != Mode::external || driving_);
}

void Loop::wake_locked() {
  if (wake_pending_)
    return;
  wake_pending_ = true;
  if (local_wake()) {
    // A completion callback submitting the next request: no system call
    // and no extra trip through epoll; the batch is taken later in this
    // same loop turn. (EV_TIMEOUT, not EV_READ: the eventfd was not
    // written, so on_wake() must not read it.)
    event_active(wake_event_.get(), EV_TIMEOUT, 0);
    return;
  }
  uint64_t one = 1;
  // A full eventfd counter (EAGAIN) still leaves it readable, so the loop
  // wakes either way.
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
}

int Loop::submit(std::unique_ptr<Request> request) {
  if (local_wake()) {
    // From a callback on the loop thread: a queue of its own, no lock. A
    // close() from another thread is seen here (closed_ is set before the
    // loop can take the batch that ends it), so nothing queued here is
    // left behind.
    if (closed_.load(std::memory_order_acquire))
      return H2POOL_ERR_POOL_CLOSED;
    local_requests_.push_back(std::move(request));
    if (!local_pending_) {
      local_pending_ = true;
      event_active(wake_event_.get(), EV_TIMEOUT, 0);
    }
    return H2POOL_OK;
  }
  std::lock_guard lock(mutex_);
  if (closed_.load(std::memory_order_relaxed))
    return H2POOL_ERR_POOL_CLOSED;
  incoming_.requests.push_back(std::move(request));
  wake_locked();
  return H2POOL_OK;
}

int Loop::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (closed_.load(std::memory_order_relaxed))
    return H2POOL_ERR_POOL_CLOSED;
  incoming_.cancels.push_back(id);
  wake_locked();
  return H2POOL_OK;
}

int Loop::post(std::function<void()> task) {
  std::lock_guard lock(mutex_);
  if (closed_.load(std::memory_order_relaxed))
    return H2POOL_ERR_POOL_CLOSED;
  incoming_.tasks.push_back(std::move(task));
  wake_locked();
  return H2POOL_OK;
}

int Loop::close(std::function<void()> last_task) {
  std::lock_guard lock(mutex_);
  if (closed_.load(std::memory_order_relaxed))
    return H2POOL_ERR_POOL_CLOSED;
  closed_.store(true, std::memory_order_release);
  incoming_.tasks.push_back(std::move(last_task));
  wake_locked();
  return H2POOL_OK;
}

void Loop::on_wake(short what) {
  // Read the eventfd before taking the batch: a wake-up written after this
  // read then leaves it readable, and the next turn takes what came with it.
  if (what & EV_READ) {
    uint64_t count;
    ssize_t n = ::read(wake_fd_, &count, sizeof count);
    (void)n;
  }
  {
    std::lock_guard lock(mutex_);
    // The two batches trade places, each keeping its vectors' capacity: a
    // steady stream of submissions then allocates nothing here.
    std::swap(draining_, incoming_);
    wake_pending_ = false;
  }
  local_pending_ = false;
  for (auto &request : local_requests_)
    draining_.requests.push_back(std::move(request));
  local_requests_.clear();
  handler_(draining_);
  draining_.requests.clear();
  draining_.cancels.clear();
  draining_.tasks.clear();
}

void Loop::stop() {
  if (mode_ == Mode::own_thread)
    event_base_loopbreak(base_);
}

bool Loop::drive() {
  if (driving_)
    return false;
  thread_id_.store(std::this_thread::get_id());
  driving_ = true;
  ClosedSocketLog closed(closed_sockets_);
  // One non-blocking pass polls every descriptor and runs what is ready and
  // the timers that are due; callbacks may activate more events (a request
  // submitted from a completion), so pass again while some are active. The
  // bound keeps a callback that always submits another from holding the
  // caller's thread: what is left is reported as a timeout of 0.
  for (int pass = 0; pass < 8; ++pass) {
    event_base_loop(base_, EVLOOP_NONBLOCK);
    if (event_base_get_num_events(base_, EVENT_BASE_COUNT_ACTIVE) == 0)
      break;
  }
  driving_ = false;
  return true;
}

void Loop::run_queued() { on_wake(0); }

void Loop::join() {
  if (thread_.joinable())
    thread_.join();
}

void Loop::detach() {
  if (thread_.joinable())
    thread_.detach();
}

} // namespace h2pool_core
