// The raw frame scripter: blocking sockets, one thread per connection, every
// wait bounded by poll() with a deadline.
#include "raw_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>

namespace h2pool_testing {
namespace h2frame {

std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                  std::string_view payload,
                  std::optional<uint32_t> length_override) {
  uint32_t len = length_override ? *length_override
                                 : static_cast<uint32_t>(payload.size());
  std::string f;
  f.reserve(9 + payload.size());
  f.push_back(static_cast<char>((len >> 16) & 0xff));
  f.push_back(static_cast<char>((len >> 8) & 0xff));
  f.push_back(static_cast<char>(len & 0xff));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>((stream_id >> 24) & 0x7f));
  f.push_back(static_cast<char>((stream_id >> 16) & 0xff));
  f.push_back(static_cast<char>((stream_id >> 8) & 0xff));
  f.push_back(static_cast<char>(stream_id & 0xff));
  f.append(payload);
  return f;
}

namespace {
void put32(std::string &s, uint32_t v) {
  s.push_back(static_cast<char>(v >> 24));
  s.push_back(static_cast<char>(v >> 16));
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}
} // namespace

std::string settings(const std::vector<std::pair<uint16_t, uint32_t>> &iv) {
  std::string p;
  for (const auto &[id, value] : iv) {
    p.push_back(static_cast<char>(id >> 8));
    p.push_back(static_cast<char>(id));
    put32(p, value);
  }
  return frame(kSettings, 0, 0, p);
}

std::string settings_ack() { return frame(kSettings, kAck, 0, {}); }

std::string headers(uint32_t stream_id, std::string_view block, uint8_t flags) {
  return frame(kHeaders, flags, stream_id, block);
}

std::string continuation(uint32_t stream_id, std::string_view block,
                         uint8_t flags) {
  return frame(kContinuation, flags, stream_id, block);
}

std::string data(uint32_t stream_id, std::string_view payload, uint8_t flags) {
  return frame(kData, flags, stream_id, payload);
}

std::string rst_stream(uint32_t stream_id, uint32_t error_code) {
  std::string p;
  put32(p, error_code);
  return frame(kRstStream, 0, stream_id, p);
}

std::string goaway(uint32_t last_stream_id, uint32_t error_code,
                   std::string_view debug) {
  std::string p;
  put32(p, last_stream_id & 0x7fffffff);
  put32(p, error_code);
  p.append(debug);
  return frame(kGoaway, 0, 0, p);
}

std::string ping(uint64_t opaque, bool ack) {
  std::string p;
  put32(p, static_cast<uint32_t>(opaque >> 32));
  put32(p, static_cast<uint32_t>(opaque));
  return frame(kPing, ack ? kAck : 0, 0, p);
}

std::string window_update(uint32_t stream_id, uint32_t increment) {
  std::string p;
  put32(p, increment & 0x7fffffff);
  return frame(kWindowUpdate, 0, stream_id, p);
}

std::string hpack_int(uint64_t value, int prefix_bits, uint8_t first) {
  std::string out;
  uint64_t max_prefix = (1u << prefix_bits) - 1;
  if (value < max_prefix) {
    out.push_back(static_cast<char>(first | value));
    return out;
  }
  out.push_back(static_cast<char>(first | max_prefix));
  value -= max_prefix;
  while (value >= 128) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

std::string hpack_string(std::string_view s) {
  return hpack_int(s.size(), 7, 0x00) + std::string(s);
}

std::string hpack_indexed(uint64_t index) { return hpack_int(index, 7, 0x80); }

std::string hpack_literal(std::string_view name, std::string_view value) {
  return std::string(1, '\0') + hpack_string(name) + hpack_string(value);
}

std::string hpack_literal_indexed(std::string_view name,
                                  std::string_view value) {
  return std::string(1, '\x40') + hpack_string(name) + hpack_string(value);
}

std::string hpack_status(int status) {
  // Literal without indexing, indexed name 8 (":status").
  return hpack_int(8, 4, 0x00) + hpack_string(std::to_string(status));
}

} // namespace h2frame

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - Clock::now())
                  .count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 50));
}

} // namespace

RawConnection::RawConnection(int fd, uint64_t id,
                             const std::atomic<bool> &stopping,
                             std::function<void(int)> closer)
    : fd_(fd), id_(id), stopping_(stopping), closer_(std::move(closer)) {}

RawConnection::~RawConnection() { close(); }

bool RawConnection::fill(size_t n, Clock::time_point deadline) {
  char buf[65536];
  while (in_.size() < n) {
    if (closed_ || fd_ < 0 || stopping_.load()) {
      return false;
    }
    if (Clock::now() >= deadline) {
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    int rv = poll(&p, 1, remaining_ms(deadline));
    if (rv < 0 && errno != EINTR) {
      closed_ = true;
      return false;
    }
    if (rv <= 0) {
      continue;
    }
    ssize_t got = recv(fd_, buf, sizeof buf, 0);
    if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
      closed_ = true;
      return false;
    }
    if (got > 0) {
      in_.append(buf, static_cast<size_t>(got));
    }
  }
  return true;
}

bool RawConnection::read_preface(Ms timeout) {
  if (preface_read_) {
    return true;
  }
  if (!fill(kPreface.size(), Clock::now() + timeout)) {
    return false;
  }
  bool ok = std::string_view(in_).substr(0, kPreface.size()) == kPreface;
  in_.erase(0, kPreface.size());
  preface_read_ = ok;
  return ok;
}

std::optional<ClientFrame> RawConnection::read_frame(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  if (!preface_read_ && !read_preface(timeout)) {
    return std::nullopt;
  }
  if (!fill(9, deadline)) {
    return std::nullopt;
  }
  auto b = reinterpret_cast<const uint8_t *>(in_.data());
  size_t len = (size_t(b[0]) << 16) | (size_t(b[1]) << 8) | b[2];
  ClientFrame f;
  f.type = b[3];
  f.flags = b[4];
  f.stream_id = ((uint32_t(b[5]) & 0x7f) << 24) | (uint32_t(b[6]) << 16) |
                (uint32_t(b[7]) << 8) | b[8];
  if (!fill(9 + len, deadline)) {
    return std::nullopt;
  }
  f.payload = in_.substr(9, len);
  in_.erase(0, 9 + len);
  frames_.push_back(f);
  return f;
}

uint32_t RawConnection::wait_request(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    auto f = read_frame(left);
    if (!f) {
      return 0;
    }
    if (f->type == h2frame::kHeaders && f->stream_id > last_stream_) {
      last_stream_ = f->stream_id;
      return f->stream_id;
    }
  }
  return 0;
}

bool RawConnection::send(std::string_view bytes, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    if (closed_ || fd_ < 0 || stopping_.load() || Clock::now() >= deadline) {
      return false;
    }
    pollfd p{fd_, POLLOUT, 0};
    int rv = poll(&p, 1, remaining_ms(deadline));
    if (rv < 0 && errno != EINTR) {
      closed_ = true;
      return false;
    }
    if (rv <= 0) {
      continue;
    }
    if (p.revents & (POLLERR | POLLHUP)) {
      closed_ = true;
      return false;
    }
    ssize_t n =
        ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      closed_ = true;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

uint64_t RawConnection::flood(std::string_view chunk, uint64_t max_bytes,
                              Ms timeout) {
  std::string c(chunk);
  return flood_with([&c](uint64_t) { return c; }, max_bytes, timeout);
}

uint64_t
RawConnection::flood_with(const std::function<std::string(uint64_t i)> &gen,
                          uint64_t max_bytes, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  uint64_t sent = 0;
  for (uint64_t i = 0; sent < max_bytes && Clock::now() < deadline; ++i) {
    std::string chunk = gen(i);
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (!send(chunk, left)) {
      break;
    }
    sent += chunk.size();
  }
  return sent;
}

bool RawConnection::wait_closed(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (!closed_) {
    in_.clear();
    // fill() only returns false on EOF/error (closed_), deadline or stop.
    if (!fill(1 << 30, deadline) && !closed_) {
      return false;
    }
  }
  return true;
}

void RawConnection::reset() {
  if (fd_ >= 0) {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close();
}

void RawConnection::close() {
  if (fd_ >= 0) {
    closer_(fd_);
    fd_ = -1;
  }
  closed_ = true;
}

RawServer::RawServer(Script script) : script_(std::move(script)) {}

RawServer::~RawServer() { stop(); }

std::string RawServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

int RawServer::start() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -errno;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin) != 0 ||
      listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  listen_fd_ = fd;
  port_ = ntohs(sin.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
  return 0;
}

void RawServer::accept_loop() {
  uint64_t next_id = 1;
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int rv = poll(&p, 1, 20);
    if (rv <= 0) {
      continue;
    }
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.connections;
    fds_.push_back(fd);
    uint64_t id = next_id++;
    threads_.emplace_back([this, fd, id] { run_connection(fd, id); });
    cv_.notify_all();
  }
}

void RawServer::run_connection(int fd, uint64_t id) {
  {
    RawConnection conn(fd, id, stopping_, [this](int f) {
      std::lock_guard<std::mutex> lock(mu_);
      fds_.erase(std::find(fds_.begin(), fds_.end(), f));
      ::close(f);
    });
    try {
      script_(conn);
    } catch (...) {
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.scripts_finished;
    }
    cv_.notify_all();
    // Keep reading until the client is done with us, so it is the client's
    // decision (and error) that ends the connection.
    conn.wait_closed(std::chrono::milliseconds(60000));
    conn.close();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto &f : conn.frames()) {
      if (f.type == h2frame::kGoaway && f.payload.size() >= 8) {
        auto b = reinterpret_cast<const uint8_t *>(f.payload.data());
        stats_.client_goaway_codes.push_back((uint32_t(b[4]) << 24) |
                                             (uint32_t(b[5]) << 16) |
                                             (uint32_t(b[6]) << 8) | b[7]);
      } else if (f.type == h2frame::kRstStream && f.payload.size() >= 4) {
        auto b = reinterpret_cast<const uint8_t *>(f.payload.data());
        stats_.client_rst_codes.push_back((uint32_t(b[0]) << 24) |
                                          (uint32_t(b[1]) << 16) |
                                          (uint32_t(b[2]) << 8) | b[3]);
      }
    }
    ++stats_.connections_closed;
  }
  cv_.notify_all();
}

void RawServer::stop() {
  if (!acceptor_.joinable()) {
    return;
  }
  stopping_.store(true);
  acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) {
      shutdown(fd, SHUT_RDWR);
    }
  }
  // No new threads can appear once the acceptor has exited.
  for (auto &t : threads_) {
    t.join();
  }
  // Every connection closed its own socket.
  threads_.clear();
  ::close(listen_fd_);
  listen_fd_ = -1;
}

RawServerStats RawServer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool RawServer::wait_for_stats(
    const std::function<bool(const RawServerStats &)> &pred,
    std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(stats_); });
}

} // namespace h2pool_testing
