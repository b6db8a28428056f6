#include "endpoint.h"

#include "resolver.h"

namespace h2pool_core {
namespace {

void backoff_timer_cb(evutil_socket_t, short, void *arg) {
  static_cast<Endpoint *>(arg)->on_backoff_timer();
}
void linger_timer_cb(evutil_socket_t, short, void *arg) {
  static_cast<Endpoint *>(arg)->on_linger_timer();
}

} // namespace

void Endpoint::Counters::add(const Counters &o) {
  created += o.created;
  reused += o.reused;
  closed += o.closed;
  failed_connections += o.failed_connections;
  completed += o.completed;
  failed += o.failed;
  retried += o.retried;
  peak_streams = std::max(peak_streams, o.peak_streams);
  peak_stream_window = std::max(peak_stream_window, o.peak_stream_window);
  tls_handshakes += o.tls_handshakes;
  tls_resumed += o.tls_resumed;
  coalesced += o.coalesced;
}

Endpoint::Endpoint(event_base *base, EndpointListener &listener,
                   std::string name, std::string host, uint16_t port,
                   const TlsContext *tls, int http_version,
                   const BackoffPolicy &reconnect,
                   const RetryBudget &retry_budget)
    : budget(retry_budget), listener_(listener), reconnect_(reconnect) {
  target_.name = std::move(name);
  target_.http_version = http_version;
  if (!tls)
    protocol_ = http_version == H2POOL_HTTP_VERSION_1_1
                    ? H2POOL_PROTOCOL_HTTP_1_1
                    : H2POOL_PROTOCOL_HTTP_2;
  target_.host = std::move(host);
  target_.port = port;
  if (tls) {
    tls_.context = tls;
    tls_.host = target_.host;
    tls_.host_is_ip = parse_ip_literal(target_.host, 0, nullptr);
    tls_.sessions = &tls_sessions;
    target_.tls = &tls_;
  }
  backoff_timer_.reset(evtimer_new(base, backoff_timer_cb, this));
  linger_timer_.reset(evtimer_new(base, linger_timer_cb, this));
}

Endpoint::~Endpoint() {
  // Connections first: their sessions may still hand TLS tickets to
  // tls_sessions, and they refer to target_.
  connections.clear();
}

const char *Endpoint::state_name(State s) {
  switch (s) {
  case State::idle:
    return "idle";
  case State::connecting:
    return "connecting";
  case State::ready:
    return "ready";
  case State::backing_off:
    return "backing_off";
  case State::draining:
    return "draining";
  }
  return "?";
}

Endpoint::State Endpoint::state() const {
  if (count(Connection::State::ready) > 0)
    return State::ready;
  if (setting_up() > 0)
    return State::connecting;
  if (backing_off())
    return State::backing_off;
  if (count(Connection::State::draining) > 0)
    return State::draining;
  return State::idle;
}

void Endpoint::on_connection_state(Connection::State from,
                                   Connection::State to) {
  // A new connection is counted in its first state (from == to).
  if (from != to && counts_[size_t(from)] > 0)
    --counts_[size_t(from)];
  if (to != Connection::State::closed)
    ++counts_[size_t(to)];
}

size_t Endpoint::setting_up() const {
  return count(Connection::State::resolving) +
         count(Connection::State::connecting) +
         count(Connection::State::tls_handshaking) +
         count(Connection::State::settings);
}

size_t Endpoint::active_streams() const {
  size_t n = 0;
  for (const auto &c : connections)
    n += c->active_streams();
  return n;
}

bool Endpoint::may_open(uint32_t max_connections) const {
  if (backing_off() || live() >= max_connections)
    return false;
  // After a failure, probe with one connection at a time until one serves:
  // an unreachable or broken server costs one connection per backoff step.
  return failures_ == 0 || setting_up() == 0;
}

void Endpoint::connection_failed(Rng &rng) {
  ++failures_;
  uint32_t ms = reconnect_.delay_ms(failures_, rng);
  timeval tv = ms_to_timeval(ms);
  // Timers count from the time cached at the start of this loop turn; a
  // turn that ran long (a busy machine) would otherwise shorten the wait
  // by as much, and the next attempt could follow the failure at once.
  event_base_update_cache_time(event_get_base(backoff_timer_.get()));
  evtimer_add(backoff_timer_.get(), &tv);
}

void Endpoint::connection_useful() {
  failures_ = 0;
  evtimer_del(backoff_timer_.get());
}

void Endpoint::on_backoff_timer() { listener_.on_backoff_done(*this); }

void Endpoint::update_linger(uint32_t linger_ms) {
  bool unused = requests_ == 0 && connections.empty() && !backing_off();
  bool lingering = evtimer_pending(linger_timer_.get(), nullptr) != 0;
  if (unused == lingering)
    return;
  if (!unused) {
    evtimer_del(linger_timer_.get());
    return;
  }
  // A failure streak is remembered for at least the longest backoff, so
  // that forgetting the endpoint cannot shorten the wait before the next
  // connection to a failing server.
  if (failures_ > 0)
    linger_ms = std::max(linger_ms, reconnect_.max_ms);
  timeval tv = ms_to_timeval(linger_ms);
  evtimer_add(linger_timer_.get(), &tv);
}

void Endpoint::on_linger_timer() {
  listener_.on_endpoint_unused(*this); // may destroy `this`
}

} // namespace h2pool_core
