#include "connector.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace h2pool_core {
namespace {

void resolve_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_resolve_timeout();
}
void tcp_connect_cb(evutil_socket_t, short what, void *arg) {
  static_cast<Connector *>(arg)->on_tcp_connect_event(what);
}
void tls_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_tls_event();
}
void tls_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_tls_timeout();
}

} // namespace

Connector::Connector(event_base *base, ConnectorOwner &owner, const Logger &log,
                     const ConnectSettings &settings, uint64_t connection_id,
                     const ConnectTarget &target, Resolver &resolver)
    : base_(base), owner_(owner), log_(log), settings_(settings),
      id_(connection_id), target_(target), resolver_(resolver) {}

Connector::~Connector() {
  connect_event_.reset();
  if (connect_fd_ >= 0)
    ::close(connect_fd_);
  tls_read_event_.reset();
  tls_write_event_.reset();
}

void Connector::start() {
  Address literal;
  if (parse_ip_literal(dial_host(), dial_port(), &literal)) {
    addresses_.push_back(literal);
    owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
    try_next_address();
    return;
  }
  owner_.on_connect_phase(ConnectorOwner::Phase::resolving);
  resolve_timer_.reset(evtimer_new(base_, resolve_timeout_cb, this));
  if (resolve_timer_) {
    timeval tv = ms_to_timeval(settings_.resolve_timeout_ms);
    evtimer_add(resolve_timer_.get(), &tv);
  }
  std::weak_ptr<char> alive = liveness_;
  resolver_.resolve(
      dial_host(), dial_port(),
      [this, alive](const std::string &error, std::vector<Address> addrs) {
        if (!alive.expired())
          on_resolved(error, std::move(addrs));
      });
}

void Connector::on_resolved(const std::string &error,
                            std::vector<Address> addresses) {
  if (!resolve_timer_)
    return; // the deadline passed; this answer is too late
  resolve_timer_.reset();
  if (!error.empty()) {
    fail(make_error(H2POOL_ERR_RESOLVE, error));
    return;
  }
  addresses_ = std::move(addresses);
  owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
  try_next_address();
}

void Connector::on_resolve_timeout() {
  resolve_timer_.reset();
  // Whatever the lookup answers later is dropped (on_resolved checks the
  // timer); the helper thread finishes on its own.
  fail(make_error(H2POOL_ERR_RESOLVE_TIMEOUT,
                  "looking up '" + dial_host() + "' took longer than " +
                      std::to_string(settings_.resolve_timeout_ms) + " ms"));
}

void Connector::try_next_address() {
  while (next_address_ < addresses_.size()) {
    const Address &addr = addresses_[next_address_++];
    current_address_ = addr.to_string();
    evutil_socket_t fd =
        ::socket(addr.storage.ss_family,
                 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
      last_error_ = current_address_ + ": " + strerror(errno);
      continue;
    }
    H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: connecting to %s",
               (unsigned long long)id_, current_address_.c_str());
    if (::connect(fd, addr.sa(), addr.length) == 0) {
      on_tcp_connected(fd);
      return;
    }
    if (errno != EINPROGRESS) {
      last_timed_out_ = false;
      last_error_ = current_address_ + ": " + strerror(errno);
      ::close(fd);
      continue;
    }
    // Connecting ourselves (rather than through libevent's helpers) tells the
    // TCP phase apart from the TLS handshake, so each gets its own timeout
    // and its own error.
    connect_fd_ = fd;
    connect_event_.reset(event_new(base_, fd, EV_WRITE, tcp_connect_cb, this));
    timeval tv = ms_to_timeval(settings_.connect_timeout_ms);
    if (!connect_event_ || event_add(connect_event_.get(), &tv) != 0) {
      connect_event_.reset();
      connect_fd_ = -1;
      ::close(fd);
      last_error_ = current_address_ + ": cannot watch the socket";
      continue;
    }
    return;
  }
  Error err = make_error(
      last_timed_out_ ? H2POOL_ERR_CONNECT_TIMEOUT : H2POOL_ERR_CONNECT,
      "cannot connect to " + target_.name +
          (last_error_.empty() ? std::string() : ": " + last_error_));
  fail(err);
}

void Connector::on_tcp_connect_event(short what) {
  evutil_socket_t fd = connect_fd_;
  connect_event_.reset();
  connect_fd_ = -1;
  if (what & EV_TIMEOUT) {
    last_timed_out_ = true;
    last_error_ = current_address_ + ": connect timed out after " +
                  std::to_string(settings_.connect_timeout_ms) + " ms";
    ::close(fd);
    try_next_address();
    return;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    last_timed_out_ = false;
    last_error_ = current_address_ + ": " + strerror(err);
    ::close(fd);
    try_next_address();
    return;
  }
  on_tcp_connected(fd);
}

void Connector::start_on_socket(evutil_socket_t fd) {
  current_address_ = "attached socket";
  owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
  on_tcp_connected(fd);
}

void Connector::on_tcp_connected(evutil_socket_t fd) {
  int one = 1;
  // Requests are small and latency-bound; Nagle would hold them back.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  evutil_make_socket_nonblocking(fd);
  if (target_.proxy) {
    tunnel_started_ = true;
    ProxyTunnelOwner &self = *this;
    tunnel_ = std::make_unique<ProxyTunnel>(
        base_, self, log_, id_, *target_.proxy, target_.host, target_.port,
        resolver_, target_.proxy_tls, settings_.connect_timeout_ms);
    tunnel_->start(fd);
    return; // `this` may be gone
  }
  on_stream_to_origin(fd, nullptr);
}

void Connector::on_tunnel_ready(evutil_socket_t fd,
                                std::unique_ptr<Transport> outer) {
  // Freed after this call returns: we are inside its last call.
  std::unique_ptr<ProxyTunnel> finished = std::move(tunnel_);
  on_stream_to_origin(fd, std::move(outer));
}

void Connector::on_tunnel_failed(const Error &why) {
  std::unique_ptr<ProxyTunnel> finished = std::move(tunnel_);
  fail(why);
}

void Connector::on_stream_to_origin(evutil_socket_t fd,
                                    std::unique_ptr<Transport> outer) {
  if (!target_.tls) {
    std::unique_ptr<Transport> transport =
        outer ? std::move(outer) : std::make_unique<PlainTransport>(fd);
    ConnectorOwner &owner = owner_;
    owner.on_connected(std::move(transport), std::string(), false);
    return; // `this` may be gone
  }
  const TlsTarget &t = *target_.tls;
  SSL *ssl = t.context->new_ssl(t.host, t.host_is_ip, t.sessions, t.sessions);
  if (ssl && target_.http_version != H2POOL_HTTP_VERSION_DEFAULT) {
    // The context offers both; an endpoint held to one version offers
    // only that.
    static const unsigned char h2[] = {2, 'h', '2'};
    static const unsigned char h1[] = {8,   'h', 't', 't', 'p',
                                       '/', '1', '.', '1'};
    bool only_h1 = target_.http_version == H2POOL_HTTP_VERSION_1_1;
    if (SSL_set_alpn_protos(ssl, only_h1 ? h1 : h2,
                            only_h1 ? sizeof h1 : sizeof h2) != 0) {
      SSL_free(ssl);
      ssl = nullptr;
    }
  }
  if (!ssl) {
    if (!outer)
      ::close(fd);
    fail(make_error(H2POOL_ERR_TLS_CONFIG, "cannot set up TLS for " + t.host +
                                               ": " + openssl_error_string()));
    return;
  }
  // From here the transport owns the SSL object and the socket.
  tls_ = outer ? std::make_unique<TlsTransport>(std::move(outer), ssl)
               : std::make_unique<TlsTransport>(fd, ssl);
  tls_read_event_.reset(
      event_new(base_, fd, EV_READ | EV_PERSIST, tls_event_cb, this));
  tls_write_event_.reset(event_new(base_, fd, EV_WRITE, tls_event_cb, this));
  tls_timer_.reset(evtimer_new(base_, tls_timeout_cb, this));
  if (!tls_read_event_ || !tls_write_event_ || !tls_timer_ ||
      event_add(tls_read_event_.get(), nullptr) != 0) {
    fail(make_error(H2POOL_ERR_NOMEM, "cannot watch the socket"));
    return;
  }
  timeval tv = ms_to_timeval(settings_.tls_handshake_timeout_ms);
  evtimer_add(tls_timer_.get(), &tv);
  owner_.on_connect_phase(ConnectorOwner::Phase::tls_handshaking);
  continue_handshake();
}

void Connector::on_tls_event() { continue_handshake(); }

void Connector::on_tls_timeout() {
  fail(make_error(
      H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT,
      "TLS handshake with " + target_.name + " did not finish within " +
          std::to_string(settings_.tls_handshake_timeout_ms) + " ms"));
}

void Connector::continue_handshake() {
  Transport::Status st = tls_->handshake();
  if (st == Transport::Status::want_read)
    return; // the read event is always armed
  if (st == Transport::Status::want_write) {
    event_add(tls_write_event_.get(), nullptr);
    return;
  }
  if (st != Transport::Status::ok) {
    fail(tls_failure_error(tls_->ssl(), tls_->last_error(), target_.name));
    return;
  }
  SSL *ssl = tls_->ssl();
  const unsigned char *proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  done(std::string(reinterpret_cast<const char *>(proto), proto ? len : 0),
       SSL_session_reused(ssl) == 1);
}

void Connector::fail(const Error &why) {
  resolve_timer_.reset();
  tls_timer_.reset();
  ConnectorOwner &owner = owner_;
  if (target_.proxy && !tunnel_started_ &&
      (why.code == H2POOL_ERR_CONNECT ||
       why.code == H2POOL_ERR_CONNECT_TIMEOUT ||
       why.code == H2POOL_ERR_RESOLVE ||
       why.code == H2POOL_ERR_RESOLVE_TIMEOUT)) {
    // The proxy is what could not be reached, not the origin.
    Error e = why;
    e.code = H2POOL_ERR_PROXY_CONNECT;
    e.message =
        "cannot reach proxy " + target_.proxy->name + ": " + why.message;
    owner.on_connect_failed(e); // may destroy `this`
    return;
  }
  owner.on_connect_failed(why); // may destroy `this`
}

void Connector::done(const std::string &alpn, bool resumed) {
  // The session makes its own events for the socket.
  tls_read_event_.reset();
  tls_write_event_.reset();
  tls_timer_.reset();
  std::unique_ptr<Transport> transport = std::move(tls_);
  ConnectorOwner &owner = owner_;
  owner.on_connected(std::move(transport), alpn, resumed); // may destroy us
}

} // namespace h2pool_core
