// Response body assembly for one request: decoding (content-encoding),
// buffering or streaming to the caller's on_data, pausing, and the limits.
// Used by the connection as DATA arrives and by the pool on resume.
#pragma once

#include <cstddef>
#include <cstdint>

#include "decompress.h"
#include "request.h"

namespace h2pool_core {

struct BodyLimits {
  uint64_t max_body_bytes = uint64_t{1} << 30; // buffered bodies only
  DecodeLimits decode;
};

// The final response headers are complete: sets up decoding and calls the
// caller's on_headers. Returns H2POOL_OK, or an error code with
// req.local_error set (the stream should then be reset).
int begin_body(Request &req, const BodyLimits &limits);

// Takes DATA bytes. `*consumed` is how many count as consumed for flow
// control now: all of them, or none when the response is paused and the
// bytes were held back. Returns H2POOL_OK or an error (req.local_error set).
int accept_body(Request &req, const uint8_t *data, size_t len,
                const BodyLimits &limits, size_t *consumed);

// Unpauses and delivers what was held back, until done or paused again.
// `*consumed` is how many held-back bytes were taken.
int resume_body(Request &req, const BodyLimits &limits, size_t *consumed);

// The response ended: checks that the decoder finished cleanly.
int end_body(Request &req);

// Request bodies: up to `len` bytes of the body of `req` at `buf`, from its
// buffer or its reader. Returns the byte count (`*eof` set with the last
// ones), kBodyWait when the reader has nothing now (req.upload_deferred is
// then set), or kBodyFailed (req.local_error set).
constexpr int64_t kBodyWait = -1;
constexpr int64_t kBodyFailed = -2;
int64_t read_request_body(Request &req, uint8_t *buf, size_t len, bool *eof);

} // namespace h2pool_core
