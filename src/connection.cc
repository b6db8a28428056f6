#include "connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace h2pool_core {
namespace {

void settings_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_settings_timeout();
}
void idle_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_idle_timeout();
}
void lifetime_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_lifetime_timeout();
}

} // namespace

const char *Connection::state_name(State s) {
  switch (s) {
  case State::resolving:
    return "resolving";
  case State::connecting:
    return "connecting";
  case State::tls_handshaking:
    return "tls_handshaking";
  case State::settings:
    return "settings";
  case State::ready:
    return "ready";
  case State::draining:
    return "draining";
  case State::closed:
    return "closed";
  }
  return "?";
}

Connection::Connection(event_base *base, ConnectionOwner &owner,
                       const Logger &log, const ConnectionSettings &settings,
                       uint64_t id, const ConnectTarget &target,
                       Resolver &resolver, Endpoint *endpoint)
    : base_(base), owner_(owner), log_(log), settings_(settings), id_(id),
      target_(target), resolver_(resolver), endpoint_(endpoint) {
  settings_timer_.reset(evtimer_new(base_, settings_timeout_cb, this));
  idle_timer_.reset(evtimer_new(base_, idle_timeout_cb, this));
  lifetime_timer_.reset(evtimer_new(base_, lifetime_timeout_cb, this));
}

Connection::~Connection() {
  // The session (and its socket) and the connector go before the timers;
  // nothing here reports to the owner.
  session_.reset();
  connector_.reset();
}

void Connection::enter(State next) {
  State prev = state_;
  if (prev == next)
    return;
  state_ = next;
  switch (next) {
  case State::settings:
    arm_timer(settings_timer_, settings_.settings_timeout_ms);
    break;
  case State::ready:
    evtimer_del(settings_timer_.get());
    was_ready_ = true;
    // Counted from here: a lifetime that ran out during setup would
    // otherwise be lost, or end a connection before it carried anything.
    arm_timer(lifetime_timer_, settings_.max_lifetime_ms);
    break;
  case State::draining:
    evtimer_del(settings_timer_.get());
    evtimer_del(idle_timer_.get());
    break;
  case State::closed:
    evtimer_del(settings_timer_.get());
    evtimer_del(idle_timer_.get());
    evtimer_del(lifetime_timer_.get());
    break;
  default:
    break;
  }
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: %s -> %s",
             (unsigned long long)id_, state_name(prev), state_name(next));
  owner_.on_connection_state(*this, prev, next);
}

void Connection::start() {
  ConnectorOwner &self = *this;
  connector_ = std::make_unique<Connector>(base_, self, log_, settings_.connect,
                                           id_, target_, resolver_);
  connector_->start();
}

void Connection::attach_socket(evutil_socket_t fd) {
  ConnectorOwner &self = *this;
  connector_ = std::make_unique<Connector>(base_, self, log_, settings_.connect,
                                           id_, target_, resolver_);
  connector_->start_on_socket(fd);
}

void Connection::on_connect_phase(Phase phase) {
  // Each phase that begins ends the one before: the first time counts (a
  // connector may start connecting again, to another address).
  switch (phase) {
  case Phase::resolving:
    enter(State::resolving);
    break;
  case Phase::connecting:
    if (!times_.resolved)
      times_.resolved = monotonic_ns();
    enter(State::connecting);
    break;
  case Phase::tls_handshaking:
    if (!times_.tcp_connected)
      times_.tcp_connected = monotonic_ns();
    enter(State::tls_handshaking);
    break;
  }
}

void Connection::on_transport_connected() {
  // The end of CONNECT: through a proxy, before its tunnel is set up.
  if (!times_.tcp_connected)
    times_.tcp_connected = monotonic_ns();
}

void Connection::describe_peer(const Transport &transport,
                               const std::string &alpn) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "";
  if (getpeername(transport.fd(), reinterpret_cast<sockaddr *>(&ss), &len) ==
      0) {
    if (ss.ss_family == AF_INET) {
      auto sin = reinterpret_cast<const sockaddr_in *>(&ss);
      inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
      times_.remote_port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
      inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
      times_.remote_port = ntohs(sin6->sin6_port);
    }
  }
  times_.remote_ip = ip;
  if (!log_.enabled(H2POOL_LOG_INFO))
    return;
  std::string peer =
      times_.remote_ip.empty()
          ? std::string("a socket")
          : times_.remote_ip + " port " + std::to_string(times_.remote_port);
  std::string tls;
  if (auto t = dynamic_cast<const TlsTransport *>(&transport)) {
    tls = std::string(", ") + SSL_get_version(t->ssl()) + " " +
          SSL_get_cipher_name(t->ssl()) + ", ALPN " +
          (alpn.empty() ? std::string("none") : alpn);
    if (tls_resumed_)
      tls += ", resumed";
  }
  H2POOL_LOG(log_, H2POOL_LOG_INFO, "conn %llu: connected to %s (%s)%s",
             (unsigned long long)id_, target_.name.c_str(), peer.c_str(),
             tls.c_str());
}

void Connection::keep_certificate(const Transport &transport) {
  // Through a proxy the peer address is the proxy's, which says nothing
  // of where another name leads; unverified, a certificate proves nothing.
  auto t = dynamic_cast<const TlsTransport *>(&transport);
  if (!t || target_.proxy || !target_.tls->context->verifies() ||
      SSL_get_verify_result(t->ssl()) != X509_V_OK)
    return;
  coalesce_.set_certificate(X509Ptr(SSL_get1_peer_certificate(t->ssl())));
  coalesce_.set_peer(times_.remote_ip, times_.remote_port);
}

void Connection::on_connected(std::unique_ptr<Transport> transport,
                              const std::string &alpn, bool tls_resumed) {
  int64_t now = monotonic_ns();
  if (!times_.tcp_connected)
    times_.tcp_connected = now;
  times_.tls = is_tls();
  if (is_tls())
    times_.tls_done = now;
  tls_resumed_ = tls_resumed;
  describe_peer(*transport, alpn);
  keep_certificate(*transport);
  int version = target_.http_version;
  bool http1 = version == H2POOL_HTTP_VERSION_1_1;
  if (is_tls()) {
    // RFC 7301: no ALPN at all is a server from before it, which speaks
    // HTTP/1.1. Never send HTTP/2 frames to a server that did not agree to
    // them, nor HTTP/1.1 to one that chose HTTP/2 only.
    http1 = alpn == "http/1.1" || alpn.empty();
    bool allowed = http1 ? version != H2POOL_HTTP_VERSION_2
                         : alpn == "h2" && version != H2POOL_HTTP_VERSION_1_1;
    if (!allowed) {
      std::string chosen = alpn.empty() ? std::string("selected no protocol")
                                        : "selected '" + alpn + "'";
      const char *wanted = version == H2POOL_HTTP_VERSION_2 ? "HTTP/2"
                           : version == H2POOL_HTTP_VERSION_1_1
                               ? "HTTP/1.1"
                               : "HTTP/2 or HTTP/1.1";
      close(make_error(H2POOL_ERR_TLS_ALPN, target_.name + " did not select " +
                                                wanted + " in ALPN (" + chosen +
                                                ")"),
            false);
      return;
    }
    owner_.on_tls_established(*this);
  }
  // The connector's work is done (we are inside its last call, which
  // touches nothing after it).
  connector_.reset();
  times_.established = monotonic_ns();
  if (http1)
    session_ =
        std::make_unique<H1Session>(base_, *this, log_, settings_.h1, id_,
                                    target_.name, std::move(transport));
  else
    session_ =
        std::make_unique<H2Session>(base_, *this, log_, settings_.h2, id_,
                                    target_.name, std::move(transport));
  enter(State::settings);
  session_->start();
}

void Connection::on_connect_failed(const Error &why) { close(why, false); }

void Connection::session_ready() {
  if (state_ != State::settings)
    return; // draining already: the server's GOAWAY came first
  enter(State::ready);
  owner_.on_connection_changed(*this);
}

void Connection::session_changed() {
  if (state_ == State::ready)
    owner_.on_connection_changed(*this);
}

void Connection::session_goaway() {
  if (state_ == State::settings || state_ == State::ready)
    enter(State::draining);
  owner_.on_connection_changed(*this);
}

void Connection::response_begun() {
  if (useful_)
    return;
  useful_ = true;
  owner_.on_connection_useful(*this);
}

void Connection::session_origin(const nghttp2_ext_origin &frame) {
  // RFC 8336 section 2.1: meaningful only over TLS, where the handshake
  // authenticated the server.
  if (!coalesce_.has_certificate())
    return;
  coalesce_.on_origin_frame(frame, target_.host, target_.port);
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: ORIGIN frame with %zu origins",
             (unsigned long long)id_, frame.nov);
}

void Connection::stream_closed(Request &req, const StreamEnd &end) {
  ++streams_closed_;
  owner_.on_stream_closed(*this, req, end);
}

void Connection::session_ended(const Error &why) { close(why, false); }

void Connection::session_finished(const Error &why) { close(why, true); }

int Connection::submit(Request &req) {
  if (!has_free_slot())
    return H2POOL_ERR_INTERNAL;
  int rc = session_->submit(req);
  if (rc != H2POOL_OK)
    return rc;
  ++streams_opened_;
  evtimer_del(idle_timer_.get());
  if (settings_.max_streams_per_connection &&
      streams_opened_ >= settings_.max_streams_per_connection)
    drain();
  return H2POOL_OK;
}

void Connection::reset(Request &req, uint32_t code) {
  if (session_)
    session_->reset(req, code);
}

void Connection::drain() {
  if (state_ == State::closed || state_ == State::draining)
    return;
  enter(State::draining);
  owner_.on_connection_changed(*this);
  settle();
}

void Connection::resume_upload(Request &req) {
  if (session_)
    session_->resume_upload(req);
}

void Connection::update_priority(Request &req) {
  if (session_)
    session_->update_priority(req);
}

void Connection::resume_download(Request &req) {
  if (session_)
    session_->resume_download(req);
}

void Connection::flush() {
  if (session_ && state_ != State::closed)
    session_->flush();
}

void Connection::settle() {
  if (state_ == State::closed)
    return;
  if (state_ == State::draining && active_streams() == 0) {
    close(make_error(H2POOL_ERR_CONNECTION_LOST, "connection drained"), true);
    return;
  }
  if (state_ == State::ready && active_streams() == 0 &&
      settings_.idle_timeout_ms && !evtimer_pending(idle_timer_.get(), nullptr))
    arm_timer(idle_timer_, settings_.idle_timeout_ms);
}

void Connection::close(const Error &why, bool by_us) {
  if (state_ == State::closed)
    return;
  closed_by_us_ = by_us;
  // Inside a connector callback this ends the connector's last call, which
  // touches nothing after it.
  connector_.reset();
  enter(State::closed);
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: closed: %s",
             (unsigned long long)id_, why.message.c_str());
  if (session_)
    session_->close(why);
  owner_.on_connection_closed(*this, why);
}

void Connection::on_settings_timeout() {
  if (state_ != State::settings)
    return;
  close(make_error(H2POOL_ERR_SETTINGS_TIMEOUT,
                   "no SETTINGS from " + target_.name + " within " +
                       std::to_string(settings_.settings_timeout_ms) + " ms"),
        false);
}

void Connection::on_idle_timeout() {
  if (state_ == State::ready && active_streams() == 0)
    close(make_error(H2POOL_ERR_CONNECTION_LOST, "idle connection closed"),
          true);
}

void Connection::on_lifetime_timeout() { drain(); }

} // namespace h2pool_core
