// HTTP/1.1 on a connected Transport: the exclusive access mode. One
// request at a time per connection (no pipelining), kept alive for the next
// request when the server allows it and the response was read in full.
//
// Responses are parsed by http-parser (Node.js's parser for many years,
// packaged by Debian), with the framing checks it leaves out in its
// lenient default build added here, so that a response cannot be read one
// way by us and another by an intermediary (see check_framing()):
//  - bare LF as a line end, CR without LF, and obs-fold (a field line
//    starting with whitespace) in the header and trailer sections and in
//    chunk-size lines;
//  - chunk data not followed by CRLF;
//  - any transfer coding other than a single "chunked";
//  - header names that are not tokens ("Content-Length : 3").
// http-parser itself rejects a second Content-Length (even an equal one),
// Content-Length together with Transfer-Encoding, malformed lengths and
// chunk sizes, and invalid characters in field values.
//
// Like H2Session it decides nothing about retries or placement: it reports
// to its Connection.
#pragma once

#include <http_parser.h>

#include <cstdint>
#include <memory>
#include <string>

#include "body.h"
#include "error.h"
#include "handles.h"
#include "log.h"
#include "request.h"
#include "session.h"
#include "transport.h"

namespace h2pool_core {

class Connection;

struct H1Settings {
  BodyLimits body_limits;
  uint32_t max_response_header_bytes = 256u << 10;
  uint32_t max_response_header_fields = 1000;
  // How long a request with "expect: 100-continue" waits for the 100
  // before its body goes anyway; 0: no wait.
  uint32_t expect_continue_timeout_ms = 1000;
};

class H1Session final : public Session {
public:
  // `conn` and `log` must outlive the session; `name` is used in messages.
  H1Session(event_base *base, Connection &conn, const Logger &log,
            const H1Settings &settings, uint64_t id, const std::string &name,
            std::unique_ptr<Transport> transport);
  ~H1Session() override;
  H1Session(const H1Session &) = delete;
  H1Session &operator=(const H1Session &) = delete;

  void start() override;
  int submit(Request &req) override;
  // HTTP/1.1 cannot abandon one exchange and keep the connection: the rest
  // of the response would be read as the next one. The connection closes.
  void reset(Request &req, uint32_t code) override;
  void resume_upload(Request &req) override;
  void resume_download(Request &req) override;
  void flush() override;
  void close(const Error &why) override;
  int protocol() const override { return H2POOL_PROTOCOL_HTTP_1_1; }

  // http-parser callback entry points (called by the trampolines).
  int on_status(const char *at, size_t len);
  int on_header_field(const char *at, size_t len);
  int on_header_value(const char *at, size_t len);
  int on_headers_complete();
  int on_body(const char *at, size_t len);
  int on_chunk_header();
  int on_message_complete();
  // An exception was caught in a parser callback.
  void note_callback_failure(int code) { callback_failure_ = code; }

  // Socket and timer entry points.
  void on_read_event();
  void on_write_event();
  void on_continue_timeout();

private:
  // Where the parser stopped (it is paused at each of these, so that the
  // bytes before them are checked before anything acts on them).
  enum class Event { none, headers, chunk_header, message };
  // What the bytes the parser takes next are, for check_framing().
  enum class Framing {
    lines,      // status line, fields, chunk-size lines, trailers
    body,       // a Content-Length or read-until-close body: not checked
    chunk_data, // chunk data and the CRLF after it
  };

  void on_readable();
  // Hands bytes to the parser; false if the session ended meanwhile.
  bool feed(const uint8_t *data, size_t len);
  // The socket reached EOF or failed.
  void on_transport_closed(Transport::Status st);
  // Acts on the event the parser paused at; false if the session ended.
  bool handle_event();
  bool final_headers(Request &req);
  bool message_complete(Request &req);
  // Checks `n` bytes the parser has taken against the framing rules it does
  // not enforce; returns what is wrong, or null.
  const char *check_framing(const uint8_t *p, size_t n);
  // Adds the field collected so far to the response.
  int commit_field();
  // Counts `len` more header-section bytes against the limit; false (with
  // req.local_error set) beyond it.
  bool count_header_bytes(Request &req, size_t len);
  // The trailer section of a chunked upload, from the body's source.
  void append_request_trailers(Request &req, std::string &out);
  // Queues request body bytes up to the output high-water mark; false if
  // the body source failed (the session has then ended).
  bool fill_body();
  WriteResult write_out();
  // The response or the server broke HTTP/1.1, or the request failed
  // locally (req.local_error): the connection cannot go on.
  void fail(int code, const std::string &message);
  // Ends the session after an orderly end of the exchange (connection:
  // close, an unsolicited byte, a cancelled request).
  void finish(const std::string &why);
  void end(const Error &why);
  void stop_reading();

  event_base *base_;
  Connection &conn_;
  const Logger &log_;
  H1Settings settings_;
  uint64_t id_;
  const std::string &name_;
  std::unique_ptr<Transport> transport_;
  bool tls_;

  EventPtr read_event_;  // persistent while open
  EventPtr write_event_; // added while output waits
  EventPtr continue_timer_;
  OutputBuffer out_;
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
  bool write_scheduled_ = false;
  bool read_paused_ = false; // the response is paused: the socket is not read
  bool ended_ = false;

  RequestList current_; // the request in flight, if any
  http_parser parser_;
  Event event_ = Event::none;
  uint64_t chunk_size_ = 0;
  Framing framing_ = Framing::lines;
  bool prev_cr_ = false;
  bool line_start_ = true;
  bool body_after_line_ = false; // the head ends with this line
  uint64_t chunk_left_ = 0;      // chunk data bytes + 2 (its CRLF) to come
  std::string field_, value_;    // the field being received
  bool in_value_ = false;

  // The upload of the current request.
  bool sending_body_ = false;   // body bytes may be queued
  bool body_done_ = true;       // all of the body is queued
  bool chunked_upload_ = false; // transfer-encoding: chunked
  bool check_length_ = false;   // we sent content-length: hold the body to it
  uint64_t declared_length_ = 0;
  bool waiting_continue_ = false;
  bool close_after_ = false; // the connection cannot carry another exchange
  int callback_failure_ = H2POOL_OK;
};

} // namespace h2pool_core
