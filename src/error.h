// Structured errors delivered to completion callbacks, and the static texts
// behind h2pool_strerror().
#pragma once

#include <cstdint>
#include <string>

#include "h2pool.h"
#include "timing.h"

// The public opaque type. It lives in the global namespace because the C
// header declares it there.
struct h2pool_error {
  int code = H2POOL_OK;
  int32_t stream_id = 0;              // 0: the request never had a stream
  int64_t http2_code = -1;            // -1: the error carries none
  int64_t goaway_last_stream_id = -1; // -1: no GOAWAY involved
  std::string message;
  // The phases the request reached (set when it completes with this error).
  h2pool_core::TimingsBox timings;
};

namespace h2pool_core {

using Error = h2pool_error;

const char *error_text(int code);

// An error with `code` and a message; the message defaults to the code's text.
Error make_error(int code, std::string message = {});

// The RFC 9113 name of an HTTP/2 error code ("REFUSED_STREAM"), or "unknown".
const char *http2_code_name(uint32_t code);

} // namespace h2pool_core
