// One HTTP/2 connection: a client nghttp2 session over a Transport (a plain
// or TLS socket) driven by libevent read and write events.
//
// It connects (trying each address in turn), sends the preface and SETTINGS,
// waits for the server's SETTINGS, then carries streams up to its capacity.
// It tracks the server's GOAWAY, drains and closes itself when idle, too old
// or told to. It knows nothing of endpoints or queues: it reports to its
// ConnectionOwner, which decides what happens to each request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "body.h"
#include "error.h"
#include "handles.h"
#include "log.h"
#include "request.h"
#include "resolver.h"
#include "session_alloc.h"
#include "tls.h"
#include "transport.h"

namespace h2pool_core {

class Connection;

// How a stream ended, as seen by the connection.
struct StreamEnd {
  uint32_t http2_code = 0; // RST_STREAM / close code from nghttp2
  const Error *connection_error = nullptr; // set if the connection died
};

// Where a TLS connection goes: the context, the name to send in SNI and to
// match the certificate against, and the endpoint's session cache.
struct TlsTarget {
  const TlsContext *context = nullptr;
  std::string host;
  bool host_is_ip = false;
  TlsSessionCache *sessions = nullptr;
};

class ConnectionOwner {
public:
  // The TLS handshake finished (before HTTP/2 starts). Once per TLS
  // connection.
  virtual void on_tls_established(Connection &conn) = 0;
  // The connection can take streams now, or can take more than before (its
  // handshake finished, a stream closed, the server raised its limit), or it
  // stopped taking them (GOAWAY, drain). Called from inside nghttp2
  // callbacks: the owner should defer work rather than submit right away.
  virtual void on_connection_changed(Connection &conn) = 0;
  // A request's stream ended; the request is no longer on the connection.
  virtual void on_stream_closed(Connection &conn, Request &req,
                                const StreamEnd &end) = 0;
  // The connection closed. Every stream has been reported before this. The
  // owner must not destroy the connection inside this call.
  virtual void on_connection_closed(Connection &conn, const Error &why) = 0;

protected:
  ~ConnectionOwner() = default;
};

struct ConnectionSettings {
  uint32_t connect_timeout_ms = 10000;
  uint32_t settings_timeout_ms = 10000;
  uint32_t tls_handshake_timeout_ms = 10000;
  uint32_t idle_timeout_ms = 60000;
  uint32_t max_lifetime_ms = 300000;
  uint32_t local_max_streams = 0; // 0: the server's limit
  uint32_t stream_window_bytes = 8u << 20;
  uint32_t connection_window_bytes = 64u << 20;
  BodyLimits body_limits; // response body size and decoding limits
  uint32_t max_response_header_bytes = 256u << 10;
  uint32_t max_response_header_fields = 1000;
  uint32_t ping_interval_ms = 30000; // 0: no PINGs
  uint32_t ping_timeout_ms = 10000;
  uint32_t max_streams_per_connection = 0; // 0: unlimited
  // Where the nghttp2 session allocates; null: malloc. It must outlive the
  // connection and be used on one thread only (see session_alloc.h).
  SessionAllocator *allocator = nullptr;
};

class Connection final : private TlsSessionSink {
public:
  // handshaking: the HTTP/2 preface is sent and the server's SETTINGS are
  // awaited; on https:// connections tls_handshaking comes before it.
  enum class State {
    resolving,
    connecting,
    tls_handshaking,
    handshaking,
    ready,
    draining,
    closed
  };

  // `tls` is null for cleartext (h2c) connections; it must outlive the
  // connection.
  Connection(event_base *base, ConnectionOwner &owner, const Logger &log,
             const ConnectionSettings &settings, uint64_t id, std::string name,
             const TlsTarget *tls);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // Starts connecting to the addresses in order.
  void connect(std::vector<Address> addresses);
  // Starts on an already connected stream socket (which it then owns):
  // TLS handshake if configured, then HTTP/2. For tests and fuzzers that
  // drive a connection over a socketpair.
  void attach_socket(evutil_socket_t fd);
  // Ends a connection that never got going (e.g. resolution failed).
  void fail(const Error &why);

  // True if a new stream may be placed now.
  bool has_free_slot() const {
    return state_ == State::ready && active_ < capacity();
  }
  // Ready, or about to be: counts toward the endpoint's connection limit.
  bool is_healthy() const { return is_pending() || state_ == State::ready; }
  bool is_pending() const {
    return state_ == State::resolving || state_ == State::connecting ||
           state_ == State::tls_handshaking || state_ == State::handshaking;
  }
  State state() const { return state_; }
  // min(server's SETTINGS_MAX_CONCURRENT_STREAMS, local cap); 100 until the
  // server's SETTINGS arrive, as RFC 9113 suggests assuming.
  uint32_t capacity() const { return capacity_; }
  size_t active_streams() const { return active_; }
  size_t peak_streams() const { return peak_; }
  uint64_t id() const { return id_; }
  bool ever_used() const { return streams_opened_ > 0; }
  bool is_tls() const { return tls_ != nullptr; }
  // The TLS handshake resumed an earlier session.
  bool tls_resumed() const { return tls_resumed_; }
  // Reached the ready state at some point (the handshake completed).
  bool was_ready() const { return was_ready_; }
  bool goaway_received() const { return goaway_received_; }
  // The server's GOAWAY as an error: H2POOL_ERR_GOAWAY (or
  // H2POOL_ERR_CONNECTION_LOST for NO_ERROR) with its code, last stream id
  // and debug data. Only meaningful once goaway_received().
  Error goaway_error() const;
  int32_t goaway_last_stream_id() const { return goaway_last_stream_id_; }
  const std::string &name() const { return name_; }
  // Expires when the connection is destroyed; lets deferred work (a name
  // lookup finishing) find out whether the connection is still there.
  std::weak_ptr<void> liveness() const { return liveness_; }

  // Opens a stream for `req`. Returns H2POOL_OK, or an error code if the
  // connection cannot take it (the request is then untouched).
  int submit(Request &req);
  // Detaches `req` from its stream and resets the stream with `code`. The
  // request will not be reported by on_stream_closed.
  void reset(Request &req, uint32_t code);
  // Takes no new streams; closes once the last stream ends.
  void drain();
  // Continues an upload whose body reader said H2POOL_BODY_WAIT.
  void resume_upload(Request &req);
  // Delivers what a paused response held back and reopens its window.
  void resume_download(Request &req);
  // Closes now: GOAWAY(NO_ERROR) if the session is up, remaining streams are
  // reported with `why`, then on_connection_closed. `clean` marks an orderly
  // close (idle, drained, pool shutdown), which over TLS also sends
  // close_notify.
  void close(const Error &why, bool clean = false);
  // Writes whatever nghttp2 has queued.
  void flush();

  // nghttp2 callback entry points (called by the trampolines).
  int on_begin_headers(const nghttp2_frame *frame);
  int on_header(const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                const uint8_t *value, size_t valuelen);
  int on_frame_recv(const nghttp2_frame *frame);
  int on_data_chunk(int32_t stream_id, const uint8_t *data, size_t len);
  int on_stream_close(int32_t stream_id, uint32_t error_code);
  ssize_t read_request_body(int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags);
  void on_nghttp2_error(const char *msg, size_t len);
  // An exception was caught in an nghttp2 callback (see no_throw).
  void note_callback_failure(int code) { callback_failure_ = code; }
  int on_frame_sent(const nghttp2_frame *frame);

  // Socket and timer entry points.
  void on_read_event();
  void on_write_event();
  void on_tcp_connect_event(short what);
  void on_connect_timeout();
  void on_settings_timeout();
  void on_idle_timeout();
  void on_lifetime_timeout();
  void on_ping_timer();
  void on_ping_timeout();
  int on_invalid_frame(const nghttp2_frame *frame, int lib_error);

private:
  void on_tls_session(SSL_SESSION *session) override;
  void try_next_address();
  void on_tcp_connected(evutil_socket_t fd);
  // The error for a TLS failure, from OpenSSL's verification result and
  // error queue.
  Error tls_failure();
  void start_session();
  // Recomputes capacity() from the server's SETTINGS and the local cap:
  // placement asks for it for every request, SETTINGS change it rarely.
  void update_capacity();
  // Advances the TLS handshake; starts HTTP/2 once it is done.
  void continue_handshake();
  // Reads what the socket holds (bounded) and feeds it to nghttp2.
  void on_readable();
  // Hands bytes to nghttp2; false if the connection closed meanwhile.
  bool feed(const uint8_t *data, size_t len);
  // Moves nghttp2's pending frames into the output buffer, up to the
  // high-water mark; false if the connection is (now) closed.
  bool fill_output();
  enum class WriteResult { done, blocked, closed };
  // Writes the output buffer until it is empty (done) or the socket takes
  // no more (blocked: a readiness event will resume), or a write error
  // closed the connection.
  WriteResult write_out();
  // The socket reached EOF or failed.
  void on_transport_closed(Transport::Status st);
  // After any input or event: close if the session is done or draining is
  // complete. Returns false if the connection is now closed.
  bool settle();
  void arm(EventPtr &timer, uint32_t ms);
  Error connection_error() const;
  // Returns received DATA bytes to the flow-control windows.
  void consume(int32_t stream_id, size_t len);

  event_base *base_;
  ConnectionOwner &owner_;
  const Logger &log_;
  ConnectionSettings settings_;
  uint64_t id_;
  std::string name_;
  const TlsTarget *tls_;
  bool tls_resumed_ = false;

  State state_ = State::resolving;
  std::vector<Address> addresses_;
  size_t next_address_ = 0;
  std::string current_address_; // the address being tried, for messages
  std::string last_connect_error_;
  evutil_socket_t connect_fd_ = -1; // socket of a TCP connect under way
  EventPtr connect_event_;
  bool last_connect_timed_out_ = false;

  std::unique_ptr<Transport> transport_;
  TlsTransport *tls_transport_ = nullptr; // transport_, if TLS
  EventPtr read_event_;                   // persistent while open
  EventPtr write_event_;                  // added while output waits
  std::string out_;                       // output not yet written
  size_t out_off_ = 0;                    // how much of out_ is written
  bool read_wants_write_ = false;         // TLS read needs writability
  bool write_wants_read_ = false;         // TLS write needs readability
  bool write_scheduled_ = false;          // write_event_ made active
  SessionPtr session_;
  EventPtr connect_timer_;
  EventPtr settings_timer_;
  EventPtr idle_timer_;
  EventPtr lifetime_timer_;
  EventPtr ping_timer_;         // read-idle check
  EventPtr ping_timeout_timer_; // waiting for a PING ACK
  uint64_t last_read_ms_ = 0;
  bool ping_outstanding_ = false;

  RequestList streams_;   // requests with an open stream here
  size_t active_ = 0;     // open streams, including detached ones
  uint32_t capacity_ = 0; // see capacity(); set by update_capacity()
  size_t peak_ = 0;
  uint64_t streams_opened_ = 0;
  bool was_ready_ = false; // stopped feeding nghttp2 output (backlog)

  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = 0;
  uint32_t goaway_code_ = 0;
  std::string goaway_debug_;
  bool goaway_sent_ = false;
  uint32_t goaway_sent_code_ = 0;
  std::string last_nghttp2_error_;
  int callback_failure_ = H2POOL_OK;
  std::shared_ptr<void> liveness_ = std::make_shared<char>();
};

} // namespace h2pool_core
