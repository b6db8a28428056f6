// The raw frame scripter: non-blocking sockets driven by one thread per
// connection, every wait bounded by poll() with a deadline; optionally TLS
// (OpenSSL) over them.
#include "raw_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
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

struct SslCtxDeleter {
  void operator()(SSL_CTX *p) const { SSL_CTX_free(p); }
};
struct SslDeleter {
  void operator()(SSL *p) const { SSL_free(p); }
};

} // namespace

// The SSL_CTX every connection of a TLS RawServer shares, set up from
// RawTlsOptions; it outlives the connections (RawServer::stop() joins them
// first).
class TlsContext {
public:
  // nullptr when OpenSSL cannot load the certificate or the key.
  static std::unique_ptr<TlsContext> create(RawTlsOptions options) {
    std::unique_ptr<TlsContext> context(new TlsContext(std::move(options)));
    return context->init() ? std::move(context) : nullptr;
  }
  SSL_CTX *get() const { return ctx_.get(); }

private:
  explicit TlsContext(RawTlsOptions options) : options_(std::move(options)) {}

  bool init() {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX *ctx = ctx_.get();
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, options_.cert_file.c_str()) !=
            1 ||
        SSL_CTX_use_PrivateKey_file(ctx, options_.key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      return false;
    }
    // send() and flood() hand over whatever is left of their buffer.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // No session tickets or cache: the script's bytes are the first thing
    // after the handshake, and every connection does a full one.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, this);
    return true;
  }

  static int select_alpn(SSL *ssl, const unsigned char **out,
                         unsigned char *outlen, const unsigned char *in,
                         unsigned int inlen, void *arg) {
    (void)ssl;
    auto context = static_cast<const TlsContext *>(arg);
    const std::string &want = context->options_.alpn;
    if (want.empty() || want.size() > 255) {
      return SSL_TLSEXT_ERR_NOACK;
    }
    bool offered = false;
    // The client's list: each protocol is a length byte and its bytes.
    for (unsigned int i = 0; i < inlen && !offered; i += 1u + in[i]) {
      offered = in[i] == want.size() && i + 1u + in[i] <= inlen &&
                std::memcmp(in + i + 1, want.data(), want.size()) == 0;
    }
    if (!offered && !context->options_.alpn_force) {
      return SSL_TLSEXT_ERR_NOACK;
    }
    *out = reinterpret_cast<const unsigned char *>(want.data());
    *outlen = static_cast<unsigned char>(want.size());
    return SSL_TLSEXT_ERR_OK;
  }

  const RawTlsOptions options_;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
};

// One connection's TLS session; the socket stays the RawConnection's.
class TlsStream {
public:
  explicit TlsStream(SSL *ssl) : ssl_(ssl) {}
  SSL *get() const { return ssl_.get(); }
  // After a fatal error OpenSSL forbids SSL_shutdown (no close_notify).
  bool broken = false;

private:
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

RawConnection::RawConnection(int fd, uint64_t id,
                             const std::atomic<bool> &stopping,
                             std::function<void(int)> closer)
    : fd_(fd), id_(id), stopping_(stopping), closer_(std::move(closer)) {}

RawConnection::~RawConnection() { close(); }

namespace {

// What an SSL call that did not succeed asks for next. Fatal errors mark the
// stream broken; a clean close_notify from the peer does not.
int classify_ssl_error(TlsStream &tls, int rv) {
  int err = SSL_get_error(tls.get(), rv);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE &&
      err != SSL_ERROR_ZERO_RETURN) {
    tls.broken = true;
  }
  ERR_clear_error();
  return err;
}

} // namespace

bool RawConnection::tls_handshake(const TlsContext &context, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  SSL *ssl = SSL_new(context.get());
  if (!ssl) {
    return false;
  }
  tls_ = std::make_unique<TlsStream>(ssl);
  if (SSL_set_fd(ssl, fd_) != 1) {
    tls_.reset();
    return false;
  }
  SSL_set_accept_state(ssl);
  for (;;) {
    if (closed_ || fd_ < 0 || stopping_.load() || Clock::now() >= deadline) {
      tls_->broken = true;
      return false;
    }
    ERR_clear_error();
    int rv = SSL_do_handshake(ssl);
    if (rv == 1) {
      break;
    }
    int err = classify_ssl_error(*tls_, rv);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      closed_ = true;
      return false;
    }
    wait_ready(err == SSL_ERROR_WANT_WRITE ? Io::want_write : Io::want_read,
               deadline);
  }
  const unsigned char *proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  alpn_.assign(reinterpret_cast<const char *>(proto), proto ? len : 0);
  return true;
}

RawConnection::Io RawConnection::read_some(char *buf, size_t len, size_t &n) {
  n = 0;
  if (!tls_) {
    ssize_t got = recv(fd_, buf, len, MSG_DONTWAIT);
    if (got > 0) {
      n = static_cast<size_t>(got);
      return Io::done;
    }
    if (got < 0 && errno == EINTR) {
      return Io::done;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Io::want_read;
    }
    return Io::closed; // EOF or error
  }
  ERR_clear_error();
  if (SSL_read_ex(tls_->get(), buf, len, &n) == 1) {
    return Io::done;
  }
  int err = classify_ssl_error(*tls_, 0);
  return err == SSL_ERROR_WANT_READ    ? Io::want_read
         : err == SSL_ERROR_WANT_WRITE ? Io::want_write
                                       : Io::closed;
}

RawConnection::Io RawConnection::write_some(std::string_view bytes, size_t &n) {
  n = 0;
  if (!tls_) {
    ssize_t w =
        ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0) {
      n = static_cast<size_t>(w);
      return Io::done;
    }
    if (errno == EINTR) {
      return Io::done;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? Io::want_write
                                                   : Io::closed;
  }
  ERR_clear_error();
  if (SSL_write_ex(tls_->get(), bytes.data(), bytes.size(), &n) == 1) {
    return Io::done;
  }
  int err = classify_ssl_error(*tls_, 0);
  return err == SSL_ERROR_WANT_READ    ? Io::want_read
         : err == SSL_ERROR_WANT_WRITE ? Io::want_write
                                       : Io::closed;
}

void RawConnection::wait_ready(Io io, Deadline deadline) {
  pollfd p{fd_, static_cast<short>(io == Io::want_write ? POLLOUT : POLLIN), 0};
  // A timeout or EINTR just sends the caller round its loop, which checks
  // the deadline and stop().
  poll(&p, 1, remaining_ms(deadline));
}

bool RawConnection::fill(size_t n, Deadline deadline) {
  char buf[65536];
  while (in_.size() < n) {
    if (closed_ || fd_ < 0 || stopping_.load() || Clock::now() >= deadline) {
      return false;
    }
    size_t got = 0;
    Io io = read_some(buf, sizeof buf, got);
    if (io == Io::closed) {
      closed_ = true;
      return false;
    }
    in_.append(buf, got);
    if (io != Io::done) {
      wait_ready(io, deadline);
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
  return send_counted(bytes, timeout) == bytes.size();
}

size_t RawConnection::send_counted(std::string_view bytes, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    if (closed_ || fd_ < 0 || stopping_.load() || Clock::now() >= deadline) {
      return sent;
    }
    size_t n = 0;
    Io io = write_some(bytes.substr(sent), n);
    if (io == Io::closed) {
      closed_ = true;
      return sent;
    }
    sent += n;
    if (io != Io::done) {
      wait_ready(io, deadline);
    }
  }
  return sent;
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

std::optional<std::string> RawConnection::read_until(std::string_view delim,
                                                     Ms timeout) {
  auto deadline = Clock::now() + timeout;
  size_t at;
  while ((at = in_.find(delim)) == std::string::npos) {
    if (!fill(in_.size() + 1, deadline)) {
      return std::nullopt;
    }
  }
  std::string out = in_.substr(0, at + delim.size());
  in_.erase(0, at + delim.size());
  return out;
}

std::optional<std::string> RawConnection::read_bytes(size_t n, Ms timeout) {
  if (!fill(n, Clock::now() + timeout)) {
    return std::nullopt;
  }
  std::string out = in_.substr(0, n);
  in_.erase(0, n);
  return out;
}

bool RawConnection::wait_closed(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  in_.clear();
  // Discards as it reads, so a client that keeps sending costs no memory.
  while (!closed_) {
    if (fd_ < 0 || stopping_.load() || Clock::now() >= deadline) {
      return false;
    }
    size_t got = 0;
    Io io = read_some(buf, sizeof buf, got);
    if (io == Io::closed) {
      closed_ = true;
    } else if (io != Io::done) {
      wait_ready(io, deadline);
    }
  }
  return true;
}

void RawConnection::reset() {
  if (fd_ >= 0) {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close_without_notify();
}

void RawConnection::close() {
  if (tls_ && !tls_->broken && fd_ >= 0) {
    // One non-blocking attempt: close_notify goes out if the socket takes
    // it; the peer's is not waited for (RFC 8446 6.1 allows that).
    ERR_clear_error();
    SSL_shutdown(tls_->get());
    ERR_clear_error();
  }
  close_without_notify();
}

bool RawConnection::send_and_close(std::string_view bytes) {
  int on = 1;
  // Held back until the FIN, which then leaves with all of it.
  if (fd_ >= 0)
    setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  bool sent = send(bytes);
  if (tls_ && !tls_->broken && fd_ >= 0) {
    ERR_clear_error();
    SSL_shutdown(tls_->get());
    ERR_clear_error();
  }
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
    // Closing with the client's bytes unread would send a TCP RST, which
    // can make the client's kernel drop what we sent: read to its end.
    char buf[16384];
    auto deadline = std::chrono::steady_clock::now() + Ms(5000);
    while (!stopping_.load() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) < 0 && errno != EINTR)
        break;
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 ||
          (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        break;
    }
  }
  close_without_notify();
  return sent;
}

void RawConnection::close_without_notify() {
  if (tls_) {
    // Never reaches the socket again: no close_notify on a later close().
    tls_->broken = true;
  }
  if (fd_ >= 0) {
    closer_(fd_);
    fd_ = -1;
  }
  closed_ = true;
}

RawServer::RawServer(Script script) : script_(std::move(script)) {}

RawServer::RawServer(Script script, RawTlsOptions tls)
    : script_(std::move(script)), tls_options_(std::move(tls)) {}

RawServer::~RawServer() { stop(); }

std::string RawServer::base_url() const {
  return (tls_options_ ? "https://127.0.0.1:" : "http://127.0.0.1:") +
         std::to_string(port_);
}

int RawServer::prepare_start() {
  if (acceptor_.joinable()) {
    return -EALREADY;
  }
  if (tls_options_ && !tls_) {
    tls_ = TlsContext::create(*tls_options_);
    if (!tls_) {
      return -EINVAL;
    }
  }
  return 0;
}

int RawServer::start() {
  if (int rv = prepare_start(); rv != 0) {
    return rv;
  }
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

int RawServer::start_unix(const std::string &path, bool abstract) {
  if (int rv = prepare_start(); rv != 0) {
    return rv;
  }
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path - 1) {
    return -ENAMETOOLONG;
  }
  memcpy(sun.sun_path + (abstract ? 1 : 0), path.data(), path.size());
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() +
                            1); // the leading NUL, or the trailing one
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -errno;
  }
  if (bind(fd, reinterpret_cast<sockaddr *>(&sun), len) != 0 ||
      listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { accept_loop(); });
  return 0;
}

std::string RawConnection::peer_address() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd_, reinterpret_cast<sockaddr *>(&ss), &len) != 0) {
    return "";
  }
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto sin = reinterpret_cast<sockaddr_in *>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) +
           "]:" + std::to_string(ntohs(sin6->sin6_port));
  }
  return "";
}

void RawServer::accept_loop() {
  uint64_t next_id = 1;
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int rv = poll(&p, 1, 20);
    if (rv <= 0) {
      continue;
    }
    int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
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
  // OpenSSL writes to the socket with write(), so a peer that is gone would
  // raise SIGPIPE and kill the test binary; blocked on this thread only, it
  // turns into EPIPE.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  {
    RawConnection conn(fd, id, stopping_, [this](int f) {
      std::lock_guard<std::mutex> lock(mu_);
      fds_.erase(std::find(fds_.begin(), fds_.end(), f));
      ::close(f);
    });
    bool ready = true;
    if (tls_) {
      ready = conn.tls_handshake(*tls_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++(ready ? stats_.tls_handshakes : stats_.tls_handshake_failures);
      }
      cv_.notify_all();
    }
    if (ready) {
      try {
        script_(conn);
      } catch (...) {
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.scripts_finished;
      }
      cv_.notify_all();
      // Keep reading until the client is done with us, so it is the
      // client's decision (and error) that ends the connection.
      conn.wait_closed(std::chrono::milliseconds(60000));
    }
    // After a failed handshake OpenSSL has sent its alert, if any; reading
    // on would only resume the handshake.
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
