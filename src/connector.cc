#include "connector.h"
#include "socket_close.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace h2pool_core {
namespace {

void resolve_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_resolve_timeout();
}
void attempt_cb(evutil_socket_t, short what, void *arg) {
  auto attempt = static_cast<Connector::Attempt *>(arg);
  attempt->connector->on_attempt_event(attempt, what);
}
void attempt_delay_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_attempt_delay();
}
void tls_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_tls_event();
}
void tls_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connector *>(arg)->on_tls_timeout();
}

// Addresses named in a failure message; the rest are counted.
constexpr size_t kMaxReportedFailures = 8;

} // namespace

Connector::Connector(event_base *base, ConnectorOwner &owner, const Logger &log,
                     const ConnectSettings &settings, uint64_t connection_id,
                     const ConnectTarget &target, Resolver &resolver)
    : base_(base), owner_(owner), log_(log), settings_(settings),
      id_(connection_id), target_(target), resolver_(resolver) {}

Connector::Attempt::~Attempt() {
  event.reset();
  close_socket(fd);
}

Connector::~Connector() {
  attempts_.clear();
  tls_read_event_.reset();
  tls_write_event_.reset();
}

const NetOptions &Connector::net() const {
  static const NetOptions defaults;
  return settings_.net ? *settings_.net : defaults;
}

std::vector<Address> Connector::interleave(std::vector<Address> addresses) {
  std::vector<Address> v6, other;
  for (Address &a : addresses)
    (a.storage.ss_family == AF_INET6 ? v6 : other).push_back(a);
  std::vector<Address> out;
  size_t i = 0, j = 0;
  while (i < v6.size() || j < other.size()) {
    if (i < v6.size())
      out.push_back(v6[i++]);
    if (j < other.size())
      out.push_back(other[j++]);
  }
  return out;
}

void Connector::start() {
  const NetOptions &n = net();
  connect_host_ = target_.host;
  connect_port_ = target_.port;
  apply_connect_to(n, &connect_host_, &connect_port_);
  // TCP goes to the proxy when there is one (the tunnel then asks it for
  // connect_host_:connect_port_), else to the origin after --connect-to.
  dial_host_ = target_.proxy ? target_.proxy->host : connect_host_;
  dial_port_ = target_.proxy ? target_.proxy->port : connect_port_;
  if (n.unix_socket.length != 0) {
    owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
    start_connecting({n.unix_socket});
    return;
  }
  std::vector<Address> fixed;
  if (fixed_addresses(n, dial_host_, dial_port_, &fixed)) {
    owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
    start_connecting(std::move(fixed));
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
      dial_host_, dial_port_,
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
  owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
  start_connecting(std::move(addresses));
}

void Connector::on_resolve_timeout() {
  resolve_timer_.reset();
  // Whatever the lookup answers later is dropped (on_resolved checks the
  // timer).
  fail(make_error(H2POOL_ERR_RESOLVE_TIMEOUT,
                  "looking up '" + dial_host_ + "' took longer than " +
                      std::to_string(settings_.resolve_timeout_ms) + " ms"));
}

void Connector::start_connecting(std::vector<Address> addresses) {
  addresses_ = interleave(std::move(addresses));
  next_address_ = 0;
  attempt_delay_timer_.reset(evtimer_new(base_, attempt_delay_cb, this));
  start_next_attempt();
}

void Connector::start_next_attempt() {
  while (next_address_ < addresses_.size()) {
    auto attempt = std::make_unique<Attempt>();
    attempt->connector = this;
    attempt->address = addresses_[next_address_++];
    attempt->name = attempt->address.to_string();
    int family = attempt->address.storage.ss_family;
    attempt->fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           family == AF_UNIX ? 0 : IPPROTO_TCP);
    if (attempt->fd < 0) {
      attempt_failed(attempt.get(), strerror(errno), false);
      continue;
    }
    std::string why = prepare_socket(attempt->fd, family, net());
    if (!why.empty()) {
      attempt_failed(attempt.get(), why, false);
      continue;
    }
    H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: connecting to %s",
               (unsigned long long)id_, attempt->name.c_str());
    if (::connect(attempt->fd, attempt->address.sa(),
                  attempt->address.length) == 0) {
      evutil_socket_t fd = attempt->fd;
      attempt->fd = -1;
      attempts_.clear(); // the race is won: the others are closed
      attempt_delay_timer_.reset();
      on_tcp_connected(fd);
      return;
    }
    // A Unix socket whose backlog is full says EAGAIN: a failure, as for
    // a refused TCP connect.
    if (errno != EINPROGRESS) {
      attempt_failed(attempt.get(), strerror(errno), false);
      continue;
    }
    // Connecting ourselves (rather than through libevent's helpers) tells the
    // TCP phase apart from the TLS handshake, so each gets its own timeout
    // and its own error.
    attempt->event.reset(
        event_new(base_, attempt->fd, EV_WRITE, attempt_cb, attempt.get()));
    timeval tv = ms_to_timeval(settings_.connect_timeout_ms);
    if (!attempt->event || event_add(attempt->event.get(), &tv) != 0) {
      attempt_failed(attempt.get(), "cannot watch the socket", false);
      continue;
    }
    attempts_.push_back(std::move(attempt));
    // RFC 8305 section 5: the next address gets its turn after the delay
    // even if this one is still connecting; the first to connect wins.
    uint32_t delay = net().happy_eyeballs_delay_ms;
    if (delay > 0 && next_address_ < addresses_.size() &&
        attempt_delay_timer_) {
      timeval d = ms_to_timeval(delay);
      evtimer_add(attempt_delay_timer_.get(), &d);
    }
    return;
  }
  fail_if_exhausted();
}

void Connector::on_attempt_delay() { start_next_attempt(); }

void Connector::attempt_failed(Attempt *attempt, const std::string &why,
                               bool timed_out) {
  last_timed_out_ = timed_out;
  if (failures_.size() < kMaxReportedFailures)
    failures_.push_back(attempt->name + ": " + why);
  else
    ++failures_dropped_;
}

void Connector::fail_if_exhausted() {
  if (!attempts_.empty() || next_address_ < addresses_.size())
    return;
  std::string list;
  for (const std::string &f : failures_)
    list += (list.empty() ? ": " : "; ") + f;
  if (failures_dropped_ > 0)
    list += "; and " + std::to_string(failures_dropped_) + " more";
  if (addresses_.empty())
    list = ": no address to connect to";
  std::string via;
  if (dial_host_ != target_.host || dial_port_ != target_.port)
    via = " (connecting to " + dial_host_ + ":" + std::to_string(dial_port_) +
          ")";
  fail(make_error(last_timed_out_ ? H2POOL_ERR_CONNECT_TIMEOUT
                                  : H2POOL_ERR_CONNECT,
                  "cannot connect to " + target_.name + via + list));
}

void Connector::on_attempt_event(Attempt *attempt, short what) {
  auto it =
      std::find_if(attempts_.begin(), attempts_.end(),
                   [attempt](const auto &a) { return a.get() == attempt; });
  if (it == attempts_.end())
    return;
  std::unique_ptr<Attempt> owned = std::move(*it);
  attempts_.erase(it);
  owned->event.reset();
  if (what & EV_TIMEOUT) {
    attempt_failed(owned.get(),
                   "connect timed out after " +
                       std::to_string(settings_.connect_timeout_ms) + " ms",
                   true);
    owned.reset();
    start_next_attempt(); // or fail, if this was the last
    return;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(owned->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    attempt_failed(owned.get(), strerror(err), false);
    owned.reset();
    // RFC 8305 section 5: a failed attempt starts the next one at once.
    start_next_attempt();
    return;
  }
  evutil_socket_t fd = owned->fd;
  owned->fd = -1;
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: connected to %s",
             (unsigned long long)id_, owned->name.c_str());
  attempts_.clear(); // the race is won: the others are closed
  attempt_delay_timer_.reset();
  on_tcp_connected(fd);
}

void Connector::start_on_socket(evutil_socket_t fd) {
  owner_.on_connect_phase(ConnectorOwner::Phase::connecting);
  on_tcp_connected(fd);
}

void Connector::on_tcp_connected(evutil_socket_t fd) {
  int one = 1;
  // Requests are small and latency-bound; Nagle would hold them back.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  evutil_make_socket_nonblocking(fd);
  owner_.on_transport_connected();
  if (target_.proxy) {
    tunnel_started_ = true;
    ProxyTunnelOwner &self = *this;
    tunnel_ = std::make_unique<ProxyTunnel>(
        base_, self, log_, id_, *target_.proxy, connect_host_, connect_port_,
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
      close_socket(fd);
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
  attempt_delay_timer_.reset();
  attempts_.clear();
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
