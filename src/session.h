// A protocol session on a connected Transport: what carries requests once
// the connector has done its work. H2Session speaks HTTP/2 (shared access:
// many streams at once); H1Session speaks HTTP/1.1 (exclusive access: one
// exchange at a time, capacity 1) behind the same interface.
//
// A session reports to its Connection (stream ends, readiness, the
// server's GOAWAY, its own end), never to the pool.
#pragma once

#include <cstddef>
#include <cstdint>

#include "error.h"
#include "request.h"

namespace h2pool_core {

// How a stream ended, as seen by the session.
struct StreamEnd {
  uint32_t http2_code = 0; // RST_STREAM / close code
  // Set when the stream ended because the connection closed.
  const Error *connection_error = nullptr;
  // The server provably did not process the request (REFUSED_STREAM, or a
  // stream above a GOAWAY's last stream id) and nothing of a response had
  // arrived: it may be sent again, whatever its method. `unprocessed_why`
  // is the error to report if it is not.
  bool unprocessed = false;
  bool refused = false; // unprocessed because of REFUSED_STREAM
  const Error *unprocessed_why = nullptr;
};

class Session {
public:
  virtual ~Session() = default;

  // Starts speaking the protocol; the session reports readiness to its
  // connection when the server is ready for requests.
  virtual void start() = 0;
  // Opens a stream for `req`. Returns H2POOL_OK, or an error code if the
  // session cannot take it (the request is then untouched).
  virtual int submit(Request &req) = 0;
  // Detaches `req` from its stream and resets the stream with `code`; the
  // request will not be reported as closed.
  virtual void reset(Request &req, uint32_t code) = 0;
  // Continues an upload whose body reader said H2POOL_BODY_WAIT.
  virtual void resume_upload(Request &req) = 0;
  // Delivers what a paused response held back and reopens its window.
  virtual void resume_download(Request &req) = 0;
  // Tells the server that `req`, on a stream here, has a new priority
  // (Request::urgency, incremental). HTTP/2 sends PRIORITY_UPDATE (RFC 9218
  // section 7); HTTP/1.1 has no way to, so by default nothing happens.
  virtual void update_priority(Request &) {}
  // Writes what is queued (at the end of this loop turn).
  virtual void flush() = 0;
  // Ends the session: a last GOAWAY and, over TLS, close_notify (unless
  // the transport has failed: without it the TLS session could not be
  // resumed), then every remaining stream is reported with `why`.
  virtual void close(const Error &why) = 0;

  // What the session speaks: H2POOL_PROTOCOL_HTTP_2 or _HTTP_1_1.
  virtual int protocol() const = 0;

  // Streams the server allows at once (for HTTP/2, the smaller of its
  // SETTINGS_MAX_CONCURRENT_STREAMS and the local cap).
  uint32_t capacity() const { return capacity_; }
  // Open streams, including ones we reset that the server has not yet
  // closed.
  size_t active_streams() const { return active_; }
  size_t peak_streams() const { return peak_; }
  // The largest per-stream flow-control window advertised (HTTP/2 only).
  uint32_t peak_stream_window() const { return peak_stream_window_; }

protected:
  uint32_t capacity_ = 0;
  size_t active_ = 0;
  size_t peak_ = 0;
  uint32_t peak_stream_window_ = 0;
};

} // namespace h2pool_core
