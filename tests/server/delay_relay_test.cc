// The delayed-link relay against echo and sink servers written here with
// plain sockets. Timing is asserted only as lower bounds, which follow from
// the relay's schedule whatever the load, plus generous upper bounds; every
// wait is a poll() against a deadline, so a broken relay fails the test
// instead of hanging it.
#include "delay_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
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
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace h2pool_testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Far beyond anything a passing run needs, even under sanitizers.
constexpr auto kIoTimeout = 10s;

class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd &operator=(Fd &&other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rv = poll(&p, 1, remaining_ms(deadline));
    if (rv > 0) {
      return true;
    }
    if (rv == 0 || errno != EINTR) {
      return false;
    }
  }
}

// A non-blocking, TCP_NODELAY client connection to 127.0.0.1:port. On
// failure the Fd is invalid and *err (if given) holds connect()'s errno.
Fd connect_loopback(uint16_t port, int sndbuf = 0, int *err = nullptr) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return fd;
  }
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (sndbuf > 0) {
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }
  sockaddr_in sa = loopback(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
    if (err != nullptr) {
      *err = errno;
    }
    fd.reset();
    return fd;
  }
  set_nonblocking(fd.get());
  return fd;
}

bool send_all(int fd, const uint8_t *data, size_t len,
              Clock::time_point deadline) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd, POLLOUT, deadline)) {
        return false;
      }
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

struct Received {
  enum class End { eof, error, timeout };
  std::vector<uint8_t> bytes;
  End end = End::timeout;
};

// Reads until EOF, an error, `limit` bytes or the deadline.
Received receive(int fd, Clock::time_point deadline, size_t limit = SIZE_MAX) {
  Received r;
  std::vector<uint8_t> buf(64 * 1024);
  while (r.bytes.size() < limit) {
    size_t want = std::min(buf.size(), limit - r.bytes.size());
    ssize_t n = recv(fd, buf.data(), want, 0);
    if (n > 0) {
      r.bytes.insert(r.bytes.end(), buf.begin(), buf.begin() + n);
    } else if (n == 0) {
      r.end = Received::End::eof;
      return r;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd, POLLIN, deadline)) {
        r.end = Received::End::timeout;
        return r;
      }
    } else if (errno != EINTR) {
      r.end = Received::End::error;
      return r;
    }
  }
  r.end = Received::End::timeout; // stopped at the limit, not at an end
  return r;
}

std::vector<uint8_t> pattern(size_t len, uint64_t seed) {
  std::vector<uint8_t> out(len);
  uint64_t x = seed;
  for (size_t i = 0; i < len; ++i) {
    if (i % 8 == 0) {
      // splitmix64: cheap, and no two offsets of a long run repeat.
      x += 0x9e3779b97f4a7c15ULL;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      x = z ^ (z >> 31);
    }
    out[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
  }
  return out;
}

// A loopback server running `serve(fd)` on a thread per connection (fd
// non-blocking, closed by the server when serve returns). Counts accepted
// and finished connections so a test can wait for either.
class LoopbackServer {
public:
  explicit LoopbackServer(std::function<void(int)> serve, int rcvbuf = 0)
      : serve_(std::move(serve)) {
    listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    stop_.reset(eventfd(0, EFD_CLOEXEC));
    if (rcvbuf > 0) {
      // Set on the listener so accepted sockets start with it (and their
      // window scale is chosen to match).
      setsockopt(listener_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
                 sizeof rcvbuf);
    }
    sockaddr_in sa = loopback(0);
    socklen_t len = sizeof sa;
    if (bind(listener_.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) !=
            0 ||
        listen(listener_.get(), 64) != 0 ||
        getsockname(listener_.get(), reinterpret_cast<sockaddr *>(&sa), &len) !=
            0) {
      return;
    }
    port_ = ntohs(sa.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~LoopbackServer() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(stop_.get(), &one, sizeof one);
    if (acceptor_.joinable()) {
      acceptor_.join();
    }
    {
      // Wake handlers still waiting on their peer.
      std::lock_guard lock(mu_);
      for (int fd : open_) {
        shutdown(fd, SHUT_RDWR);
      }
    }
    for (auto &t : workers_) {
      t.join();
    }
  }

  uint16_t port() const { return port_; }

  bool wait_accepted(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return accepted_ >= n; });
  }
  bool wait_finished(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return finished_ >= n; });
  }

private:
  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{stop_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
      if (poll(p, 2, -1) < 0 && errno != EINTR) {
        return;
      }
      if (p[0].revents != 0) {
        return;
      }
      if (p[1].revents == 0) {
        continue;
      }
      int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        continue;
      }
      set_nonblocking(fd);
      std::lock_guard lock(mu_);
      open_.insert(fd);
      ++accepted_;
      cv_.notify_all();
      // workers_ is only touched here and, after this thread is joined, in
      // the destructor.
      workers_.emplace_back([this, fd] {
        serve_(fd);
        std::lock_guard l(mu_);
        // Under the lock, so the destructor never shuts down a reused fd.
        open_.erase(fd);
        close(fd);
        ++finished_;
        cv_.notify_all();
      });
    }
  }

  std::function<void(int)> serve_;
  Fd listener_;
  Fd stop_;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<int> open_;
  size_t accepted_ = 0;
  size_t finished_ = 0;
};

// Echoes until EOF, then forwards the EOF.
void echo(int fd) {
  std::vector<uint8_t> buf(64 * 1024);
  for (;;) {
    auto deadline = Clock::now() + kIoTimeout;
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      if (!send_all(fd, buf.data(), static_cast<size_t>(n), deadline)) {
        return;
      }
    } else if (n == 0) {
      shutdown(fd, SHUT_WR);
      return;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd, POLLIN, deadline)) {
        return;
      }
    } else if (errno != EINTR) {
      return;
    }
  }
}

// Reads to EOF, then answers with the byte count (8 bytes, host order): a
// reply after the client's half-close.
void count_then_reply(int fd) {
  Received r = receive(fd, Clock::now() + kIoTimeout);
  if (r.end != Received::End::eof) {
    return;
  }
  uint64_t count = r.bytes.size();
  uint8_t out[8];
  std::memcpy(out, &count, 8);
  send_all(fd, out, 8, Clock::now() + kIoTimeout);
  shutdown(fd, SHUT_WR);
}

uint64_t decode_count(const std::vector<uint8_t> &bytes) {
  uint64_t count = 0;
  if (bytes.size() == 8) {
    std::memcpy(&count, bytes.data(), 8);
  }
  return count;
}

// Sends `data` and half-closes on a thread while the caller reads the echo,
// so neither side's buffers fill up waiting for the other.
Received echo_through(uint16_t port, const std::vector<uint8_t> &data,
                      bool *sent_ok) {
  Fd fd = connect_loopback(port);
  if (!fd.valid()) {
    *sent_ok = false;
    return {};
  }
  auto deadline = Clock::now() + kIoTimeout;
  std::thread sender([&] {
    *sent_ok = send_all(fd.get(), data.data(), data.size(), deadline) &&
               shutdown(fd.get(), SHUT_WR) == 0;
  });
  Received r = receive(fd.get(), deadline);
  sender.join();
  return r;
}

// One byte there and back; returns the elapsed time, or a negative one on
// failure.
Clock::duration round_trip(int fd) {
  auto start = Clock::now();
  uint8_t ping = 'x';
  if (!send_all(fd, &ping, 1, start + kIoTimeout)) {
    return -1s;
  }
  Received r = receive(fd, start + kIoTimeout, 1);
  if (r.bytes.size() != 1 || r.bytes[0] != ping) {
    return -1s;
  }
  return Clock::now() - start;
}

LinkOptions make_link(uint32_t delay_ms, uint64_t rate = 0, size_t queue = 0) {
  LinkOptions o;
  o.one_way_delay_ms = delay_ms;
  o.rate_bytes_per_sec = rate;
  o.queue_limit_bytes = queue;
  return o;
}

TEST(DelayRelay, RoundTripTakesAtLeastTwiceTheOneWayDelay) {
  LoopbackServer server(echo);
  DelayRelay relay(server.port(), make_link(30));
  ASSERT_TRUE(relay.ok());
  Fd fd = connect_loopback(relay.port());
  ASSERT_TRUE(fd.valid());
  for (int i = 0; i < 3; ++i) {
    auto rtt = round_trip(fd.get());
    ASSERT_GT(rtt, 0s) << "round trip " << i << " failed";
    EXPECT_GE(rtt, 60ms) << "round trip " << i;
    EXPECT_LT(rtt, 5s) << "round trip " << i;
  }
}

TEST(DelayRelay, PacesOneWayTransferAtTheLinkRate) {
  LoopbackServer server(count_then_reply);
  // 4 MB at 10 MB/s is 400 ms of serialisation, whatever the delay adds.
  DelayRelay relay(server.port(), make_link(5, 10'000'000));
  ASSERT_TRUE(relay.ok());
  const std::vector<uint8_t> data = pattern(4'000'000, 1);
  auto start = Clock::now();
  bool sent_ok = false;
  Received r = echo_through(relay.port(), data, &sent_ok);
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(sent_ok);
  ASSERT_EQ(r.end, Received::End::eof);
  EXPECT_EQ(decode_count(r.bytes), data.size());
  EXPECT_GE(elapsed, 400ms);
  EXPECT_LT(elapsed, 5s);
}

TEST(DelayRelay, UnpacedLinkIsNotRateLimited) {
  // The control for the test above: the same transfer without a rate takes
  // only the delays (a generous bound, still well under 400 ms).
  LoopbackServer server(count_then_reply);
  DelayRelay relay(server.port(), make_link(5));
  ASSERT_TRUE(relay.ok());
  const std::vector<uint8_t> data = pattern(4'000'000, 1);
  auto start = Clock::now();
  bool sent_ok = false;
  Received r = echo_through(relay.port(), data, &sent_ok);
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(sent_ok);
  ASSERT_EQ(r.end, Received::End::eof);
  EXPECT_EQ(decode_count(r.bytes), data.size());
  EXPECT_GE(elapsed, 10ms);
  EXPECT_LT(elapsed, 5s);
}

void expect_intact_echo(const LinkOptions &options) {
  LoopbackServer server(echo);
  DelayRelay relay(server.port(), options);
  ASSERT_TRUE(relay.ok());
  const std::vector<uint8_t> data = pattern(8 * 1024 * 1024, 7);
  bool sent_ok = false;
  Received r = echo_through(relay.port(), data, &sent_ok);
  ASSERT_TRUE(sent_ok);
  // EOF, not a timeout: the client's EOF reached the echo server, whose own
  // EOF came back after every byte.
  EXPECT_EQ(r.end, Received::End::eof);
  ASSERT_EQ(r.bytes.size(), data.size());
  auto mismatch = std::mismatch(r.bytes.begin(), r.bytes.end(), data.begin());
  EXPECT_TRUE(mismatch.first == r.bytes.end())
      << "first differing byte at offset "
      << (mismatch.first - r.bytes.begin());
}

TEST(DelayRelay, EchoesBytesIntactInOrderAndForwardsEof) {
  expect_intact_echo(make_link(2));
}

TEST(DelayRelay, EchoesBytesIntactThroughASmallPacedQueue) {
  // 200 MB/s with a 128 KiB queue: the relay keeps stopping and resuming
  // its reads, and its writes into the echo server come in small chunks.
  expect_intact_echo(make_link(2, 200'000'000, 128 * 1024));
}

TEST(DelayRelay, StopsReadingWhileTheQueueIsFull) {
  // The sink reads nothing until released, so whatever the client manages
  // to send sits in kernel buffers and the relay's queue.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto sink = [released](int fd) {
    if (released.wait_for(kIoTimeout) != std::future_status::ready) {
      return;
    }
    count_then_reply(fd);
  };
  constexpr int kSmallBuffer = 64 * 1024;
  LoopbackServer server(sink, kSmallBuffer);
  DelayRelay relay(server.port(), make_link(0, 0, 1024 * 1024));
  ASSERT_TRUE(relay.ok());
  Fd fd = connect_loopback(relay.port(), kSmallBuffer);
  ASSERT_TRUE(fd.valid());

  const std::vector<uint8_t> data = pattern(96 * 1024 * 1024, 3);
  size_t sent = 0;
  // Stalled = no room for 300 ms. The relay's own kernel buffers on both
  // legs (autotuned, up to tcp_rmem[2] and tcp_wmem[2]) hold far more than
  // its queue, but not 96 MiB: an unbounded relay would take it all.
  while (sent < data.size()) {
    ssize_t n =
        send(fd.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd.get(), POLLOUT, Clock::now() + 300ms)) {
        break;
      }
    } else {
      ASSERT_EQ(errno, EINTR) << std::strerror(errno);
    }
  }
  EXPECT_LT(sent, 48u * 1024 * 1024) << "the relay never pushed back";
  EXPECT_GT(sent, 1024u * 1024) << "less than the queue got through";

  // Released, the sink drains everything and the rest flows.
  release.set_value();
  auto deadline = Clock::now() + kIoTimeout;
  std::thread sender([&] {
    if (send_all(fd.get(), data.data() + sent, data.size() - sent, deadline)) {
      shutdown(fd.get(), SHUT_WR);
    }
  });
  Received r = receive(fd.get(), deadline);
  sender.join();
  ASSERT_EQ(r.end, Received::End::eof);
  EXPECT_EQ(decode_count(r.bytes), data.size());
}

TEST(DelayRelay, DestroyingTheRelayClosesOpenConnectionsPromptly) {
  LoopbackServer server(echo);
  // Bytes sent now are due in 2 s: destruction must not wait for them.
  auto relay = std::make_unique<DelayRelay>(server.port(), make_link(2000));
  ASSERT_TRUE(relay->ok());
  Fd idle = connect_loopback(relay->port());
  Fd busy = connect_loopback(relay->port());
  ASSERT_TRUE(idle.valid() && busy.valid());
  ASSERT_TRUE(server.wait_accepted(2, kIoTimeout));
  const std::vector<uint8_t> data = pattern(256 * 1024, 5);
  ASSERT_TRUE(send_all(busy.get(), data.data(), data.size(),
                       Clock::now() + kIoTimeout));

  auto start = Clock::now();
  relay.reset();
  EXPECT_LT(Clock::now() - start, 1s);

  for (Fd *fd : {&idle, &busy}) {
    Received r = receive(fd->get(), Clock::now() + kIoTimeout);
    EXPECT_NE(r.end, Received::End::timeout);
    EXPECT_TRUE(r.bytes.empty()) << "a byte came back before its delay";
  }
  // The target side sees its legs end too.
  EXPECT_TRUE(server.wait_finished(2, kIoTimeout));
}

TEST(DelayRelay, CountsAcceptedConnections) {
  LoopbackServer server(echo);
  DelayRelay relay(server.port(), make_link(0));
  ASSERT_TRUE(relay.ok());
  EXPECT_EQ(relay.connections(), 0u);
  std::vector<Fd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connect_loopback(relay.port()));
    ASSERT_TRUE(clients.back().valid());
    // An echo through the relay proves it accepted this one.
    ASSERT_GT(round_trip(clients.back().get()), 0s);
    EXPECT_EQ(relay.connections(), static_cast<uint64_t>(i + 1));
  }
}

TEST(DelayRelay, ConnectionToARefusingTargetIsClosed) {
  // Bound but not listening: connecting to it is refused, and no one else
  // can take the port meanwhile.
  Fd reserved(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa = loopback(0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(bind(reserved.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa),
            0);
  ASSERT_EQ(
      getsockname(reserved.get(), reinterpret_cast<sockaddr *>(&sa), &len), 0);
  DelayRelay relay(ntohs(sa.sin_port), make_link(0));
  ASSERT_TRUE(relay.ok());
  int err = 0;
  Fd fd = connect_loopback(relay.port(), 0, &err);
  if (fd.valid()) {
    Received r = receive(fd.get(), Clock::now() + kIoTimeout);
    EXPECT_NE(r.end, Received::End::timeout);
    EXPECT_TRUE(r.bytes.empty());
  } else {
    // The relay accepted, was refused and reset the client before the
    // client's connect() woke up; Linux then fails connect() itself.
    EXPECT_EQ(err, ECONNRESET) << std::strerror(err);
  }
  EXPECT_EQ(relay.connections(), 1u);
}

} // namespace
} // namespace h2pool_testing
