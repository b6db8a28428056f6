// One endpoint (scheme, host, port, and the proxy its connections go
// through, if any; TLS settings are the pool's): the
// requests waiting for it, its connections, and its state, which is
// derived from them rather than remembered.
//
// The state:
//   idle         no connection, nothing to do
//   connecting   a connection is being set up, none is ready
//   ready        at least one connection takes streams
//   backing_off  none of the above, and the last connection failed: the
//                next one waits for the backoff timer
//   draining     only draining connections are left
// Connections are counted per Connection::State as they change, so "may
// another connection be opened?" is a computation over those counts, the
// failure streak and the backoff timer, never a flag someone must clear.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backoff.h"
#include "coalesce.h"
#include "connection.h"
#include "connector.h"
#include "handles.h"
#include "priority.h"
#include "request.h"
#include "tls.h"

namespace h2pool_core {

class Endpoint;

class EndpointListener {
public:
  // The backoff after a failed connection is over.
  virtual void on_backoff_done(Endpoint &ep) = 0;
  // The endpoint has been unused for its linger time: it may be forgotten.
  virtual void on_endpoint_unused(Endpoint &ep) = 0;

protected:
  ~EndpointListener() = default;
};

class Endpoint {
public:
  enum class State { idle, connecting, ready, backing_off, draining };

  struct Counters {
    uint64_t created = 0, reused = 0, closed = 0, failed_connections = 0;
    uint64_t completed = 0, failed = 0, retried = 0;
    uint64_t peak_streams = 0;
    uint64_t peak_stream_window = 0; // of connections closed
    uint64_t tls_handshakes = 0, tls_resumed = 0;
    uint64_t coalesced = 0; // requests placed on other endpoints' connections
    void add(const Counters &o);
  };

  // `tls` null: an http:// endpoint. `http_version` (an
  // h2pool_http_version) is what its connections may speak.
  Endpoint(event_base *base, EndpointListener &listener, std::string name,
           std::string host, uint16_t port, const TlsContext *tls,
           int http_version, const BackoffPolicy &reconnect,
           const RetryBudget &budget);
  ~Endpoint();
  Endpoint(const Endpoint &) = delete;
  Endpoint &operator=(const Endpoint &) = delete;

  const std::string &name() const { return target_.name; }
  const std::string &host() const { return target_.host; }
  bool host_is_ip() const { return tls_.host_is_ip; }
  uint16_t port() const { return target_.port; }
  bool https() const { return target_.tls != nullptr; }
  int http_version() const { return target_.http_version; }
  // What the server speaks (an h2pool_protocol), as the latest connection
  // found out; known from the start over cleartext, where configuration
  // decides. HTTP/1.1 connections take one request each, which is what the
  // pool expects of the connections it opens for a queue.
  int protocol() const { return protocol_; }
  void set_protocol(int p) { protocol_ = p; }
  const ConnectTarget &target() const { return target_; }
  // Routes the endpoint's connections through `proxy` (which, and
  // `proxy_tls`, must outlive the endpoint). Before the first connection.
  void set_proxy(const ProxyTarget *proxy, const TlsContext *proxy_tls) {
    target_.proxy = proxy;
    target_.proxy_tls = proxy_tls;
  }
  const ProxyTarget *proxy() const { return target_.proxy; }

  State state() const;
  static const char *state_name(State s);

  // Connections by state; the pool reports each transition.
  void on_connection_state(Connection::State from, Connection::State to);
  size_t count(Connection::State s) const { return counts_[size_t(s)]; }
  // Being set up (resolving through settings).
  size_t setting_up() const;
  // Setting up or ready: what counts against the connection limit.
  size_t live() const { return setting_up() + count(Connection::State::ready); }
  // Streams open on all connections.
  size_t active_streams() const;

  // Whether another connection may be opened now, given the limit: not
  // while backing off, not beyond `max_connections`, and after a failure
  // only one at a time until a connection serves again.
  bool may_open(uint32_t max_connections) const;

  // A connection failed (closed before it served anything): the failure
  // streak grows and the backoff timer starts.
  void connection_failed(Rng &rng);
  // A connection served: the streak ends and any backoff is cancelled.
  void connection_useful();
  uint32_t failures() const { return failures_; }
  bool backing_off() const {
    return evtimer_pending(backoff_timer_.get(), nullptr) != 0;
  }
  void on_backoff_timer();

  // Requests of this endpoint that have not completed (waiting, in flight
  // or parked): while any exist the endpoint is in use.
  void request_added() { ++requests_; }
  void request_done() { --requests_; }
  size_t requests() const { return requests_; }
  // Nothing refers to the endpoint any more, and it has no failure to
  // remember: it may be evicted after `linger_ms` (the timer is re-armed
  // by each call while unused, cancelled while in use).
  void update_linger(uint32_t linger_ms);
  void on_linger_timer();

  // Requests waiting: for a stream slot, out a retry delay, for the budget.
  PriorityQueue pending; // most urgent first (RFC 9218 urgency)
  RequestList retrying;
  RequestList throttled;
  std::vector<std::unique_ptr<Connection>> connections;
  RetryBudget budget;
  Counters counters;
  TlsSessionCache tls_sessions;
  // Where the host leads, for sharing another endpoint's connection.
  AddressLookup lookup;
  // Listed for the pool's next dispatch pass (set and cleared only by the
  // pool's mark_dirty and dispatch_dirty).
  bool dirty = false;

private:
  EndpointListener &listener_;
  TlsTarget tls_;
  ConnectTarget target_;
  BackoffPolicy reconnect_;
  std::array<size_t, Connection::kStates> counts_{};
  uint32_t failures_ = 0;
  size_t requests_ = 0;
  int protocol_ = H2POOL_PROTOCOL_UNKNOWN;
  EventPtr backoff_timer_;
  EventPtr linger_timer_;
};

} // namespace h2pool_core
