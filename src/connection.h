// One pooled connection and its life, as a state machine:
//
//   resolving -> connecting -> tls_handshaking -> settings -> ready
//        \            \               \               \         |
//         `------------`---------------`---------------`--> draining
//                                                                |
//   (any state) ------------------------------------------> closed
//
// A Connector does the steps up to a connected byte stream (resolving,
// connecting, tls_handshaking); a Session speaks the protocol on it
// (settings: waiting for the server's SETTINGS; ready: carrying streams).
// draining takes no new streams and closes once the last one ends. Every
// transition goes through enter(), which tells the owner, so the owner can
// keep per-state counts instead of asking each connection.
//
// It knows nothing of endpoints or queues: it reports to its
// ConnectionOwner, which decides what happens to each request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "coalesce.h"
#include "connector.h"
#include "error.h"
#include "h1_session.h"
#include "h2_session.h"
#include "handles.h"
#include "log.h"
#include "request.h"
#include "session.h"
#include "timing.h"

namespace h2pool_core {

class ConnectionOwner;
class Endpoint;

struct ConnectionSettings {
  ConnectSettings connect;
  H2Settings h2;
  H1Settings h1;
  uint32_t settings_timeout_ms = 10000;
  uint32_t idle_timeout_ms = 60000;
  uint32_t max_lifetime_ms = 300000;
  uint32_t max_streams_per_connection = 0; // 0: unlimited
};

class Connection final : private ConnectorOwner {
public:
  enum class State {
    resolving,
    connecting,
    tls_handshaking,
    settings, // the session is up, the server's SETTINGS are awaited
    ready,
    draining,
    closed
  };
  static constexpr int kStates = int(State::closed) + 1;
  static const char *state_name(State s);

  // `target`, `resolver`, `log` and `owner` must outlive the connection.
  // `endpoint` is the owner's tag for it, handed back by endpoint().
  Connection(event_base *base, ConnectionOwner &owner, const Logger &log,
             const ConnectionSettings &settings, uint64_t id,
             const ConnectTarget &target, Resolver &resolver,
             Endpoint *endpoint);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // Resolves, connects and starts the session.
  void start();
  // Starts on an already connected stream socket (which it then owns): TLS
  // handshake if configured, then HTTP/2. For tests and fuzzers that drive
  // a connection over a socketpair.
  void attach_socket(evutil_socket_t fd);

  State state() const { return state_; }
  // True if a new stream may be placed now.
  bool has_free_slot() const {
    return state_ == State::ready && session_->active_streams() < capacity();
  }
  // Streams the server allows at once (see Session::capacity); 100 until
  // the server's SETTINGS arrive, as RFC 9113 suggests assuming.
  uint32_t capacity() const { return session_ ? session_->capacity() : 100; }
  size_t active_streams() const {
    return session_ ? session_->active_streams() : 0;
  }
  size_t peak_streams() const {
    return session_ ? session_->peak_streams() : 0;
  }
  uint32_t peak_stream_window() const {
    return session_ ? session_->peak_stream_window() : 0;
  }
  // The protocol the session speaks (an h2pool_protocol); unknown before
  // the byte stream is up.
  int protocol() const {
    return session_ ? session_->protocol() : H2POOL_PROTOCOL_UNKNOWN;
  }
  uint64_t id() const { return id_; }
  Endpoint *endpoint() const { return endpoint_; }
  bool ever_used() const { return streams_opened_ > 0; }
  bool is_tls() const { return target_.tls != nullptr; }
  // The TLS handshake resumed an earlier session.
  bool tls_resumed() const { return tls_resumed_; }
  // A response began on this connection: the server served on it.
  bool useful() const { return useful_; }
  // Reached the ready state at some point.
  bool was_ready() const { return was_ready_; }
  // We closed it for our own reasons (idle, drained, too old, shutdown),
  // not because of anything the server or the network did.
  bool closed_by_us() const { return closed_by_us_; }
  const std::string &name() const { return target_.name; }
  // When its setup phases ended, and the peer it reached.
  const ConnectionTimes &times() const { return times_; }
  // Exchanges (streams) that have ended on it.
  uint64_t exchanges_done() const { return streams_closed_; }
  // What it offers requests for other origins (see coalesce.h): the
  // verified certificate of a direct TLS connection, the ORIGIN frames'
  // origin set, the names the server sent away with 421.
  const CoalesceInfo &coalesce() const { return coalesce_; }
  CoalesceInfo &coalesce() { return coalesce_; }

  // Opens a stream for `req`. Returns H2POOL_OK, or an error code if the
  // connection cannot take it (the request is then untouched).
  int submit(Request &req);
  // Detaches `req` from its stream and resets the stream with `code`. The
  // request will not be reported by on_stream_closed.
  void reset(Request &req, uint32_t code);
  // Takes no new streams; closes once the last stream ends.
  void drain();
  void resume_upload(Request &req);
  // Tells the server of `req`'s new priority (Session::update_priority).
  void update_priority(Request &req);
  void resume_download(Request &req);
  // Closes now: remaining streams are reported with `why`, then
  // on_connection_closed. `by_us` marks an orderly close of our own (idle,
  // drained, pool shutdown) rather than a failure.
  void close(const Error &why, bool by_us);
  // Writes whatever the session has queued.
  void flush();

  // From the session.
  void session_ready();
  void session_changed();
  void session_goaway();
  void response_begun();
  // An ORIGIN frame (RFC 8336) arrived.
  void session_origin(const nghttp2_ext_origin &frame);
  void stream_closed(Request &req, const StreamEnd &end);
  void session_ended(const Error &why);
  // The session ended in order, for reasons of its own protocol (an
  // HTTP/1.1 connection the server will not reuse): closed by us.
  void session_finished(const Error &why);
  // After the session's I/O: closes a drained connection, arms the idle
  // timer of one without streams.
  void settle();

  // Timer entry points.
  void on_settings_timeout();
  void on_idle_timeout();
  void on_lifetime_timeout();

private:
  // ConnectorOwner.
  void on_connect_phase(Phase phase) override;
  void on_transport_connected() override;
  void on_connected(std::unique_ptr<Transport> transport,
                    const std::string &alpn, bool tls_resumed) override;
  void on_connect_failed(const Error &why) override;

  // Notes the peer's address and logs what was negotiated.
  void describe_peer(const Transport &transport, const std::string &alpn);
  // Keeps a direct TLS connection's verified certificate for coalescing.
  void keep_certificate(const Transport &transport);
  // The one place the state changes.
  void enter(State next);

  event_base *base_;
  ConnectionOwner &owner_;
  const Logger &log_;
  ConnectionSettings settings_;
  uint64_t id_;
  const ConnectTarget &target_;
  Resolver &resolver_;
  Endpoint *endpoint_;

  State state_ = State::resolving;
  std::unique_ptr<Connector> connector_; // while setting up
  std::unique_ptr<Session> session_;     // from the connected byte stream on
  EventPtr settings_timer_;
  EventPtr idle_timer_;
  EventPtr lifetime_timer_;
  uint64_t streams_opened_ = 0;
  uint64_t streams_closed_ = 0;
  ConnectionTimes times_;
  CoalesceInfo coalesce_;
  bool tls_resumed_ = false;
  bool useful_ = false;
  bool was_ready_ = false;
  bool closed_by_us_ = false;
};

class ConnectionOwner {
public:
  // The connection entered `to` from `from`. Called for every transition,
  // closed included (then before on_connection_closed).
  virtual void on_connection_state(Connection &conn, Connection::State from,
                                   Connection::State to) = 0;
  // The TLS handshake finished (before HTTP/2 starts). Once per TLS
  // connection.
  virtual void on_tls_established(Connection &conn) = 0;
  // The connection can take more streams than before (a stream closed, the
  // server raised its limit). Called from inside nghttp2 callbacks: the
  // owner should defer work rather than submit right away.
  virtual void on_connection_changed(Connection &conn) = 0;
  // The first response began on this connection: the server serves.
  virtual void on_connection_useful(Connection &conn) = 0;
  // A request's stream ended; the request is no longer on the connection.
  virtual void on_stream_closed(Connection &conn, Request &req,
                                const StreamEnd &end) = 0;
  // The connection closed. Every stream has been reported before this. The
  // owner must not destroy the connection inside this call.
  virtual void on_connection_closed(Connection &conn, const Error &why) = 0;

protected:
  ~ConnectionOwner() = default;
};

} // namespace h2pool_core
