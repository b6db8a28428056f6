// The delayed-link relay: one thread, one ppoll() loop over every relayed
// socket, woken by an eventfd to stop and by the earliest due delivery
// otherwise.
#include "delay_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace h2pool_testing {
namespace {

// steady_clock is CLOCK_MONOTONIC on Linux, the clock ppoll() times out on.
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

constexpr size_t kMaxRead = 64 * 1024;
// One TCP segment on a 1500-byte MTU: no link paces finer than a packet.
constexpr size_t kMinPacedRead = 1460;
constexpr size_t kUnpacedQueueLimit = 8 * 1024 * 1024;
constexpr size_t kQueueHeadroom = 1024 * 1024;
// Bounds on the work of one loop turn, so a busy socket cannot hold off
// the stop request or the other connections.
constexpr int kReadsPerTurn = 16;
constexpr int kAcceptsPerTurn = 64;
// Out of descriptors: retry accepting after this long rather than spin on a
// listener that stays readable.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd &&other) noexcept : fd_(other.release()) {}
  Fd &operator=(Fd &&other) noexcept {
    reset(other.release());
    return *this;
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      close(fd_);
    }
    fd_ = fd;
  }
  // Closes with a RST instead of a FIN: a peer that sees an error on one leg
  // should see one on the other, not a clean end of stream.
  void reset_abortively() {
    if (fd_ >= 0) {
      linger lg{};
      lg.l_onoff = 1;
      lg.l_linger = 0;
      setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    reset();
  }

private:
  int fd_ = -1;
};

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// LinkOptions turned into what the loop computes with.
struct Link {
  nanoseconds delay{0};
  uint64_t rate = 0; // bytes per second, 0 = unpaced
  size_t queue_limit = 0;
  size_t read_size = kMaxRead;

  explicit Link(const LinkOptions &o)
      : delay(std::chrono::milliseconds(o.one_way_delay_ms)),
        rate(o.rate_bytes_per_sec), queue_limit(o.queue_limit_bytes) {
    if (queue_limit == 0) {
      if (rate == 0) {
        queue_limit = kUnpacedQueueLimit;
      } else {
        // rate x RTT is what the link itself holds in flight; the headroom
        // is the bottleneck's buffer.
        uint64_t rtt_ms = 2ull * o.one_way_delay_ms;
        queue_limit = static_cast<size_t>(rate / 1000 * rtt_ms +
                                          rate % 1000 * rtt_ms / 1000) +
                      kQueueHeadroom;
      }
    }
    if (rate != 0) {
      // About 1 ms of link time per read, so a departure schedule of one
      // entry per read is smooth at the ms scale.
      read_size = std::clamp<uint64_t>(rate / 1000, kMinPacedRead, kMaxRead);
    }
  }

  nanoseconds transmission_time(size_t len) const {
    if (rate == 0) {
      return nanoseconds(0);
    }
    // len <= 64 KiB, so len * 1e9 fits in 64 bits.
    return nanoseconds(static_cast<uint64_t>(len) * 1'000'000'000ull / rate);
  }
};

// One way of a relayed connection: the bytes read from one socket and not
// yet written to the other, each with the time it may be written, and the
// EOF behind them.
class Direction {
public:
  explicit Direction(const Link &link) : link_(link) {}

  enum class Read { none, data, eof, error };
  enum class Write { ok, error };

  bool wants_read() const { return !eof_read_ && queued_ < link_.queue_limit; }
  // Waiting for POLLOUT on the destination.
  bool wants_write() const { return blocked_; }
  // The EOF has been forwarded: nothing more will pass this way.
  bool finished() const { return eof_sent_; }

  Read read_from(int src, Clock::time_point now, std::span<uint8_t> scratch) {
    size_t want = std::min(link_.read_size, scratch.size());
    ssize_t n = recv(src, scratch.data(), want, 0);
    if (n > 0) {
      size_t len = static_cast<size_t>(n);
      queue_.push_back(
          Chunk{std::vector<uint8_t>(scratch.begin(), scratch.begin() + n), 0,
                depart(len, now) + link_.delay});
      queued_ += len;
      return Read::data;
    }
    if (n == 0) {
      eof_read_ = true;
      eof_due_ = depart(0, now) + link_.delay;
      return Read::eof;
    }
    return would_block(errno) || errno == EINTR ? Read::none : Read::error;
  }

  // Writes every chunk that is due, in order, until the destination would
  // block; then forwards the EOF if it is due too.
  Write write_to(int dst, Clock::time_point now) {
    while (!queue_.empty() && queue_.front().due <= now) {
      Chunk &c = queue_.front();
      ssize_t n = send(dst, c.bytes.data() + c.sent, c.bytes.size() - c.sent,
                       MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        if (would_block(errno)) {
          blocked_ = true;
          return Write::ok;
        }
        return Write::error;
      }
      c.sent += static_cast<size_t>(n);
      queued_ -= static_cast<size_t>(n);
      if (c.sent == c.bytes.size()) {
        queue_.pop_front();
      }
    }
    if (queue_.empty() && eof_read_ && !eof_sent_ && eof_due_ <= now) {
      // A failure here (the peer already reset) shows up as an error on the
      // next read or write of that socket.
      shutdown(dst, SHUT_WR);
      eof_sent_ = true;
    }
    return Write::ok;
  }

  void on_writable() { blocked_ = false; }

  // When write_to() next has something to do, unless it is waiting for
  // POLLOUT (or has nothing left).
  std::optional<Clock::time_point> next_due() const {
    if (blocked_) {
      return std::nullopt;
    }
    if (!queue_.empty()) {
      return queue_.front().due;
    }
    if (eof_read_ && !eof_sent_) {
      return eof_due_;
    }
    return std::nullopt;
  }

private:
  struct Chunk {
    std::vector<uint8_t> bytes;
    size_t sent = 0;
    Clock::time_point due;
  };

  // The chunk's departure: it waits for the link to be free, then takes
  // len / rate to serialise.
  Clock::time_point depart(size_t len, Clock::time_point now) {
    link_free_at_ = std::max(now, link_free_at_) + link_.transmission_time(len);
    return link_free_at_;
  }

  const Link &link_;
  std::deque<Chunk> queue_;
  size_t queued_ = 0; // bytes in queue_ not yet written
  Clock::time_point link_free_at_{};
  bool blocked_ = false;
  bool eof_read_ = false;
  bool eof_sent_ = false;
  Clock::time_point eof_due_{};
};

// One accepted connection and its leg to the target.
class Connection {
public:
  Connection(Fd client, Fd target, bool connected, const Link &link)
      : client_(std::move(client)), target_(std::move(target)), up_(link),
        down_(link), phase_(connected ? Phase::relaying : Phase::connecting) {}

  bool closed() const { return phase_ == Phase::closed; }

  // Fills in the two pollfds (client first). A socket with nothing wanted is
  // left out (fd -1) rather than polled for no events: poll() would still
  // report its POLLHUP on every turn, and the loop would spin.
  void interest(pollfd &client, pollfd &target) const {
    client = {-1, 0, 0};
    target = {-1, 0, 0};
    if (phase_ == Phase::closed) {
      return;
    }
    short ce = 0;
    short te = 0;
    if (up_.wants_read()) {
      ce |= POLLIN;
    }
    if (phase_ == Phase::connecting) {
      te |= POLLOUT;
    } else {
      if (down_.wants_read()) {
        te |= POLLIN;
      }
      if (up_.wants_write()) {
        te |= POLLOUT;
      }
      if (down_.wants_write()) {
        ce |= POLLOUT;
      }
    }
    if (ce != 0) {
      client = {client_.get(), ce, 0};
    }
    if (te != 0) {
      target = {target_.get(), te, 0};
    }
  }

  void handle(short client_revents, short target_revents, Clock::time_point now,
              std::span<uint8_t> scratch) {
    if (phase_ == Phase::connecting && target_revents != 0) {
      finish_connect();
    }
    if (phase_ == Phase::closed) {
      return;
    }
    // Errors and hang-ups are found by the read or write they fail.
    constexpr short kWritable = POLLOUT | POLLERR | POLLHUP;
    if (phase_ == Phase::relaying) {
      if (target_revents & kWritable) {
        up_.on_writable();
      }
      if (client_revents & kWritable) {
        down_.on_writable();
      }
    }
    if (client_revents != 0 && !read(up_, client_, now, scratch)) {
      return;
    }
    if (phase_ == Phase::relaying && target_revents != 0) {
      read(down_, target_, now, scratch);
    }
  }

  // Delivers what is due in both directions; closes the connection when both
  // have forwarded their EOF.
  void flush(Clock::time_point now) {
    if (phase_ != Phase::relaying) {
      return;
    }
    if (up_.write_to(target_.get(), now) == Direction::Write::error ||
        down_.write_to(client_.get(), now) == Direction::Write::error) {
      abort();
      return;
    }
    if (up_.finished() && down_.finished()) {
      client_.reset();
      target_.reset();
      phase_ = Phase::closed;
    }
  }

  std::optional<Clock::time_point> next_due() const {
    if (phase_ != Phase::relaying) {
      // While connecting, the client's bytes wait for the connect, which
      // POLLOUT reports.
      return std::nullopt;
    }
    auto a = up_.next_due();
    auto b = down_.next_due();
    if (a && b) {
      return std::min(*a, *b);
    }
    return a ? a : b;
  }

private:
  enum class Phase { connecting, relaying, closed };

  void finish_connect() {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(target_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
      abort();
      return;
    }
    phase_ = Phase::relaying;
  }

  // Reads what the direction has room for, a bounded number of times.
  // Returns false if the connection was aborted.
  bool read(Direction &dir, Fd &src, Clock::time_point now,
            std::span<uint8_t> scratch) {
    for (int i = 0; i < kReadsPerTurn && dir.wants_read(); ++i) {
      switch (dir.read_from(src.get(), now, scratch)) {
      case Direction::Read::data:
        continue;
      case Direction::Read::error:
        abort();
        return false;
      case Direction::Read::none:
      case Direction::Read::eof:
        return true;
      }
    }
    return true;
  }

  void abort() {
    client_.reset_abortively();
    target_.reset_abortively();
    phase_ = Phase::closed;
  }

  Fd client_;
  Fd target_;
  Direction up_;   // client -> target
  Direction down_; // target -> client
  Phase phase_;
};

timespec to_timespec(nanoseconds d) {
  auto ns = std::max<int64_t>(d.count(), 0);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

} // namespace

struct DelayRelay::Impl {
  Impl(uint16_t target, const LinkOptions &options)
      : link(options), target_port(target) {}

  bool listen_on_loopback();
  void run();
  void accept_pending(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

  const Link link;
  const uint16_t target_port;
  Fd listener;
  Fd wake;
  uint16_t port = 0;
  std::atomic<uint64_t> connections{0};
  std::atomic<bool> running{false};
  std::thread thread;

  // Owned by the loop thread.
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<uint8_t> scratch = std::vector<uint8_t>(kMaxRead);
  std::optional<Clock::time_point> accept_resume_at;
};

bool DelayRelay::Impl::listen_on_loopback() {
  listener.reset(
      socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener.valid()) {
    return false;
  }
  int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = loopback(0);
  if (bind(listener.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 ||
      ::listen(listener.get(), SOMAXCONN) != 0) {
    return false;
  }
  socklen_t len = sizeof sa;
  if (getsockname(listener.get(), reinterpret_cast<sockaddr *>(&sa), &len) !=
      0) {
    return false;
  }
  port = ntohs(sa.sin_port);
  return true;
}

void DelayRelay::Impl::accept_pending(Clock::time_point now) {
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    Fd client(accept4(listener.get(), nullptr, nullptr,
                      SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!client.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (!would_block(errno)) {
        accept_resume_at = now + kAcceptBackoff;
      }
      return;
    }
    connections.fetch_add(1);
    set_nodelay(client.get());
    Fd target(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!target.valid()) {
      client.reset_abortively();
      continue;
    }
    set_nodelay(target.get());
    sockaddr_in sa = loopback(target_port);
    int rv =
        connect(target.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    if (rv != 0 && errno != EINPROGRESS) {
      // Refused: the client sees a reset, as it would from a dead backend
      // behind a proxy.
      client.reset_abortively();
      continue;
    }
    conns.push_back(std::make_unique<Connection>(
        std::move(client), std::move(target), rv == 0, link));
  }
}

std::optional<Clock::time_point> DelayRelay::Impl::next_deadline() const {
  std::optional<Clock::time_point> deadline = accept_resume_at;
  for (const auto &c : conns) {
    if (auto due = c->next_due(); due && (!deadline || *due < *deadline)) {
      deadline = due;
    }
  }
  return deadline;
}

void DelayRelay::Impl::run() {
  std::vector<pollfd> pfds;
  for (;;) {
    Clock::time_point now = Clock::now();
    for (auto &c : conns) {
      c->flush(now);
    }
    std::erase_if(conns, [](const auto &c) { return c->closed(); });
    if (accept_resume_at && *accept_resume_at <= now) {
      accept_resume_at.reset();
    }

    // [0] the wake-up, [1] the listener, then two per connection.
    size_t n = conns.size();
    pfds.resize(2 + 2 * n);
    pfds[0] = {wake.get(), POLLIN, 0};
    pfds[1] = {accept_resume_at ? -1 : listener.get(), POLLIN, 0};
    for (size_t i = 0; i < n; ++i) {
      conns[i]->interest(pfds[2 + 2 * i], pfds[3 + 2 * i]);
    }
    std::optional<timespec> timeout;
    if (auto deadline = next_deadline()) {
      timeout = to_timespec(*deadline - Clock::now());
    }
    int rv =
        ppoll(pfds.data(), pfds.size(), timeout ? &*timeout : nullptr, nullptr);
    if (rv < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (pfds[0].revents != 0) {
      break;
    }
    now = Clock::now();
    if (pfds[1].revents != 0) {
      accept_pending(now); // appends past the n connections polled
    }
    for (size_t i = 0; i < n; ++i) {
      conns[i]->handle(pfds[2 + 2 * i].revents, pfds[3 + 2 * i].revents, now,
                       scratch);
    }
  }
  // Closing here rather than in ~Impl also frees the peers when the loop
  // ends on an error while the relay object lives on.
  conns.clear();
  listener.reset();
  running = false;
}

DelayRelay::DelayRelay(uint16_t target_port, const LinkOptions &link)
    : impl_(std::make_unique<Impl>(target_port, link)) {
  impl_->wake.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!impl_->wake.valid() || !impl_->listen_on_loopback()) {
    impl_->listener.reset();
    impl_->port = 0;
    return;
  }
  impl_->running = true;
  try {
    impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  } catch (const std::system_error &) {
    impl_->running = false;
    impl_->listener.reset();
  }
}

DelayRelay::~DelayRelay() {
  if (impl_->thread.joinable()) {
    uint64_t one = 1;
    // Cannot fail short of a full counter, which one write per relay never
    // reaches.
    [[maybe_unused]] ssize_t w = write(impl_->wake.get(), &one, sizeof one);
    impl_->thread.join();
  }
}

bool DelayRelay::ok() const { return impl_->running.load(); }

uint16_t DelayRelay::port() const { return impl_->port; }

uint64_t DelayRelay::connections() const { return impl_->connections.load(); }

} // namespace h2pool_testing
