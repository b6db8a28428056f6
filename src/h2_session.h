// HTTP/2 on a connected Transport: a client nghttp2 session driven by
// libevent read and write events on the socket.
//
// It sends the preface and SETTINGS, tells its connection when the
// server's SETTINGS arrive, carries streams up to the server's limit, turns
// nghttp2's callbacks into stream and response events, returns
// flow-control window as the caller takes the data, answers for the
// connection's health with PINGs, and records the server's GOAWAY. It
// decides nothing about retries or placement: it reports to its Connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bdp_estimator.h"
#include "body.h"
#include "error.h"
#include "handles.h"
#include "log.h"
#include "priority.h"
#include "request.h"
#include "session.h"
#include "session_alloc.h"
#include "transport.h"

namespace h2pool_core {

class Connection;

struct H2Settings {
  uint32_t local_max_streams = 0; // 0: the server's limit
  // The windows we advertise: with adaptive_window, the caps they grow to
  // from kInitialStreamWindow and kInitialConnectionWindow.
  uint32_t stream_window_bytes = 8u << 20;
  uint32_t connection_window_bytes = 64u << 20;
  bool adaptive_window = true;
  BodyLimits body_limits; // response body size and decoding limits
  uint32_t max_response_header_bytes = 256u << 10;
  uint32_t max_response_header_fields = 1000;
  uint32_t ping_interval_ms = 30000; // 0: no PINGs
  uint32_t ping_timeout_ms = 10000;
  // A request on a connection that has read nothing for this long goes out
  // with a PING; if nothing at all arrives within stale_deadline_ms the
  // connection is closed. 0: never.
  uint32_t stale_after_idle_ms = 10000;
  uint32_t stale_deadline_ms = 5000;
  // Where the nghttp2 session allocates; null: malloc. It must outlive the
  // session and be used on one thread only (see session_alloc.h).
  SessionAllocator *allocator = nullptr;
};

class H2Session final : public Session {
public:
  // Where adaptive windows start (bdp_estimator.h).
  static constexpr uint32_t kInitialStreamWindow = 256u << 10;
  static constexpr uint32_t kInitialConnectionWindow = 1u << 20;

  // `conn` and `log` must outlive the session; `name` is used in messages.
  H2Session(event_base *base, Connection &conn, const Logger &log,
            const H2Settings &settings, uint64_t id, const std::string &name,
            std::unique_ptr<Transport> transport);
  ~H2Session() override;
  H2Session(const H2Session &) = delete;
  H2Session &operator=(const H2Session &) = delete;

  void start() override;
  int submit(Request &req) override;
  void reset(Request &req, uint32_t code) override;
  void resume_upload(Request &req) override;
  void update_priority(Request &req) override;
  void resume_download(Request &req) override;
  void flush() override;
  void close(const Error &why) override;
  int protocol() const override { return H2POOL_PROTOCOL_HTTP_2; }

  // nghttp2 callback entry points (called by the trampolines).
  int on_begin_headers(const nghttp2_frame *frame);
  int on_header(const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                const uint8_t *value, size_t valuelen);
  int on_frame_recv(const nghttp2_frame *frame);
  int on_data_chunk(int32_t stream_id, const uint8_t *data, size_t len);
  int on_stream_close(int32_t stream_id, uint32_t error_code);
  ssize_t read_request_body(int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags);
  // The body reader ended the body: queues the request's trailers, if it
  // has any, and keeps this last DATA frame from ending the stream.
  void send_request_trailers(Request &req, int32_t stream_id,
                             uint32_t *data_flags);
  int on_frame_sent(const nghttp2_frame *frame);
  int on_invalid_frame(const nghttp2_frame *frame, int lib_error);
  void on_nghttp2_error(const char *msg, size_t len);
  // An exception was caught in an nghttp2 callback (see no_throw).
  void note_callback_failure(int code) { callback_failure_ = code; }

  // Socket and timer entry points.
  void on_read_event();
  void on_write_event();
  void on_ping_timer();
  void on_ping_timeout();
  void on_stale_timeout();

private:
  // The server's SETTINGS enabled extended CONNECT (RFC 8441).
  bool allows_extended_connect() const;
  // A tunnel's non-2xx response ended while the caller's side of the
  // stream is still open: stops the upload (see the header's
  // h2pool_request_opts_set_protocol()).
  void end_refused_tunnel(Request &req, int32_t stream_id);
  // Recomputes capacity() from the server's SETTINGS and the local cap:
  // placement asks for it for every request, SETTINGS change it rarely.
  void update_capacity();
  // Reads what the socket holds (bounded) and feeds it to nghttp2.
  void on_readable();
  // Hands bytes to nghttp2; false if the session ended meanwhile.
  bool feed(const uint8_t *data, size_t len);
  // Moves nghttp2's pending frames into the output buffer, up to the
  // high-water mark; false if the session ended (or has).
  bool fill_output();
  // Writes the output buffer until it is empty (done) or the socket takes
  // no more (blocked: a readiness event will resume), or a write error
  // ended the session.
  WriteResult write_out();
  // The socket reached EOF or failed.
  void on_transport_closed(Transport::Status st);
  // After input or output: ends the session if nghttp2 is done with it, then
  // lets the connection settle. False if the session has ended.
  bool settle();
  // Tells the connection the session cannot go on.
  void end(const Error &why);
  // What ended the connection, as the server caused it: its GOAWAY, the
  // protocol error we answered with GOAWAY, or a plain loss.
  Error connection_error() const;
  // The server's GOAWAY as an error (GOAWAY, or CONNECTION_LOST for
  // NO_ERROR) with its code, last stream id and debug data.
  Error goaway_error() const;
  // Starts the stale check when the request on `stream_id` is the first on
  // a connection silent for stale_after_idle_ms.
  void check_if_stale(int32_t stream_id);
  // Whether the final response of `req` is a 421 to a request that was
  // sent on a connection opened for another origin: it is then marked
  // (Request::misdirected) for the pool to send again.
  static bool misdirected(Request &req);
  // Fills in how a stream that ends before its response completed ended.
  void classify(const Request &req, StreamEnd *end) const;
  // Returns received DATA bytes to the stream's flow-control window (the
  // connection's was returned on receipt).
  void consume_stream(int32_t stream_id, size_t len);
  // Adaptive windows: counts `len` DATA bytes, sending a probe PING when
  // the estimator asks for one.
  void measure_data(size_t len);
  // The probe's ACK: grows the windows if the estimate did.
  void on_probe_ack();
  // Advertises a stream window of `stream` bytes for every stream (open
  // ones included) and a connection window of `connection` bytes, where
  // they are larger than what was advertised.
  void raise_windows(uint32_t stream, uint32_t connection);

  event_base *base_;
  Connection &conn_;
  const Logger &log_;
  H2Settings settings_;
  uint64_t id_;
  const std::string &name_;
  std::unique_ptr<Transport> transport_;
  bool tls_;

  EventPtr read_event_;           // persistent while open
  EventPtr write_event_;          // added while output waits
  OutputBuffer out_;              // output not yet written
  bool read_wants_write_ = false; // TLS read needs writability
  bool write_wants_read_ = false; // TLS write needs readability
  bool write_scheduled_ = false;  // write_event_ made active
  SessionPtr session_;
  bool settings_received_ = false;
  // Frames by type (DATA .. CONTINUATION), for the summary logged at close.
  static constexpr int kFrameTypes = 10;
  uint32_t frames_received_[kFrameTypes] = {};
  uint32_t frames_sent_[kFrameTypes] = {};
  void log_frame_counts() const;
  bool ended_ = false; // end() or close() ran: no more I/O

  EventPtr ping_timer_;         // read-idle check
  EventPtr ping_timeout_timer_; // waiting for a PING ACK
  uint64_t last_read_ms_ = 0;
  bool ping_outstanding_ = false;

  // The stale check ("connection at risk", as Chrome calls it): running
  // from the request on stale_first_stream_ until anything is read.
  EventPtr stale_timer_;
  bool stale_check_ = false;
  int32_t stale_first_stream_ = 0;
  Error stale_error_; // set when the check failed and ended the connection

  RequestList streams_; // requests with an open stream here

  // Adaptive windows: null when off or once the windows reached the caps.
  std::unique_ptr<BdpEstimator> bdp_;
  uint32_t stream_window_ = 0;     // advertised (SETTINGS_INITIAL_WINDOW_SIZE)
  uint32_t connection_window_ = 0; // advertised for stream 0
  // Our SETTINGS frames the server has not yet acknowledged: until it
  // has, it may still send by the window before, and a probe would
  // measure that.
  uint32_t settings_unacked_ = 0;

  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = 0;
  uint32_t goaway_code_ = 0;
  std::string goaway_debug_;
  Error goaway_error_; // goaway_error(), kept for unprocessed streams
  bool goaway_sent_ = false;
  uint32_t goaway_sent_code_ = 0;
  std::string last_nghttp2_error_;
  int callback_failure_ = H2POOL_OK;
};

} // namespace h2pool_core
