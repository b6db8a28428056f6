#include "body.h"
#include "callback_scope.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "h2pool.h"

namespace h2pool_core {
namespace {

int fail(Request &req, int code, std::string message) {
  req.set_local_error(make_error(code, std::move(message)));
  return code;
}

// Hands decoded bytes to the caller or the buffer. Returns H2POOL_OK and
// sets `*go_on` false when the caller paused.
int emit(Request &req, const uint8_t *p, size_t n, const BodyLimits &limits,
         bool *go_on) {
  *go_on = true;
  req.body_bytes += n;
  if (req.on_data) {
    int rc;
    {
      CallbackScope in_callback;
      rc = req.on_data(p, n, req.user_data);
    }
    if (rc == H2POOL_DATA_PAUSE) {
      req.download_paused = true;
      *go_on = false;
    } else if (rc != 0) {
      return fail(req, H2POOL_ERR_ABORTED,
                  "on_data callback aborted the request");
    }
    return H2POOL_OK;
  }
  if (req.body_bytes > limits.max_body_bytes)
    return fail(req, H2POOL_ERR_RESPONSE_TOO_LARGE,
                "response body exceeds " +
                    std::to_string(limits.max_body_bytes) + " bytes");
  req.resp().body.append(reinterpret_cast<const char *>(p), n);
  return H2POOL_OK;
}

int pump(Request &req, const BodyLimits &limits) {
  int err = H2POOL_OK;
  std::string why;
  int rc = req.decoder->pump(
      [&](const uint8_t *p, size_t n) {
        bool go_on = true;
        err = emit(req, p, n, limits, &go_on);
        return err == H2POOL_OK && go_on;
      },
      &why);
  if (err != H2POOL_OK)
    return err;
  if (rc != H2POOL_OK)
    return fail(req, rc, why);
  return H2POOL_OK;
}

int process(Request &req, const uint8_t *data, size_t len,
            const BodyLimits &limits) {
  if (req.decoder) {
    req.decoder->append(data, len);
    return pump(req, limits);
  }
  bool go_on;
  return emit(req, data, len, limits, &go_on);
}

} // namespace

int begin_body(Request &req, const BodyLimits &limits) {
  req.headers_delivered = true;
  if (req.auto_decompress) {
    auto &headers = req.resp().headers;
    // Two content-encoding lines mean both codings (RFC 9110 5.3): decoding
    // only the first would hand over still-encoded bytes as decoded, since
    // both lines are dropped below.
    std::optional<std::string> ce = headers.joined("content-encoding");
    if (ce) {
      std::string why;
      int rc = ContentDecoder::create(*ce, limits.decode, &req.decoder, &why);
      if (rc != H2POOL_OK)
        return fail(req, rc, why);
      if (req.decoder) {
        // What the caller now reads is the decoded body: the headers that
        // described the encoded one would mislead. (HTTP/2 field names are
        // lower case; nghttp2 rejects others.)
        req.resp().make_rare().content_encoding = std::move(*ce);
        headers.remove({"content-encoding", "content-length"});
      }
    }
  }
  if (!req.on_data && !req.decoder) {
    // Growing the buffer from empty re-copies a large body about twenty
    // times; a declared length lets it be allocated once.
    long cl = req.resp().headers.find("content-length");
    if (cl >= 0) {
      uint64_t n =
          strtoull(req.resp().headers.value(size_t(cl)).data(), nullptr, 10);
      // Trust the server's figure only so far: a hostile one could
      // announce the maximum on every stream.
      constexpr uint64_t kMaxReserve = 16u << 20;
      if (n > 0 && n <= limits.max_body_bytes)
        req.resp().body.reserve(size_t(std::min(n, kMaxReserve)));
    }
  }
  // The timings so far (TOTAL: until now); completion records them again.
  if (req.on_headers)
    req.record_timings(nullptr);
  if (req.on_headers) {
    CallbackScope in_callback;
    if (req.on_headers(&req.resp(), req.user_data) != 0)
      return fail(req, H2POOL_ERR_ABORTED,
                  "on_headers callback aborted the request");
  }
  return H2POOL_OK;
}

int accept_body(Request &req, const uint8_t *data, size_t len,
                const BodyLimits &limits, size_t *consumed) {
  if (req.download_paused) {
    // Not consumed: the stream's flow-control window closes behind these
    // bytes, which is what holds the server back.
    req.make_rare().pending_raw.append(reinterpret_cast<const char *>(data),
                                       len);
    *consumed = 0;
    return H2POOL_OK;
  }
  *consumed = len;
  return process(req, data, len, limits);
}

int resume_body(Request &req, const BodyLimits &limits, size_t *consumed) {
  *consumed = 0;
  req.download_paused = false;
  if (req.decoder && req.decoder->has_pending()) {
    int rc = pump(req, limits);
    if (rc != H2POOL_OK || req.download_paused)
      return rc;
  }
  // Handed on in pieces no larger than a DATA frame, as if it were arriving
  // now: a caller that pauses again has taken one piece more, and the rest
  // stays here behind a still-closed window, instead of reaching it in one
  // piece as large as the stream's window.
  constexpr size_t kPiece = 16384;
  if (!req.rare)
    return H2POOL_OK; // nothing was held back
  // The box stays put while the bytes are handed on: a response under way
  // is never reset for a retry.
  std::string &raw = req.rare->pending_raw;
  size_t &pos = req.rare->pending_raw_pos;
  int rc = H2POOL_OK;
  while (rc == H2POOL_OK && pos < raw.size() && !req.download_paused) {
    size_t n = std::min(kPiece, raw.size() - pos);
    const auto *p = reinterpret_cast<const uint8_t *>(raw.data()) + pos;
    pos += n;
    *consumed += n;
    rc = process(req, p, n, limits);
  }
  if (pos == raw.size()) {
    raw.clear(); // keeps its capacity for the next pause
    pos = 0;
  } else if (pos * 2 >= raw.size()) {
    // Bytes that arrive while paused again are appended: dropping the
    // delivered half now and then keeps the buffer within twice the
    // window, at an amortised constant cost per byte.
    raw.erase(0, pos);
    pos = 0;
  }
  return rc;
}

int64_t read_request_body(Request &req, uint8_t *buf, size_t len, bool *eof) {
  *eof = false;
  if (!req.body_reader) {
    size_t n = std::min(len, req.body_size - req.body_offset);
    if (n)
      memcpy(buf, req.body_data + req.body_offset, n);
    req.body_offset += n;
    *eof = req.body_offset == req.body_size;
    return int64_t(n);
  }
  int reader_eof = 0;
  int64_t n;
  {
    CallbackScope in_callback;
    n = req.body_reader(buf, len, &reader_eof, req.user_data);
  }
  if (n == H2POOL_BODY_WAIT || (n == 0 && !reader_eof)) {
    req.upload_deferred = true;
    return kBodyWait;
  }
  if (n < 0 || uint64_t(n) > len) {
    fail(req, H2POOL_ERR_BODY_SOURCE,
         n < 0 ? "body read callback aborted the upload"
               : "body read callback returned more bytes than asked for");
    return kBodyFailed;
  }
  req.body_offset += size_t(n);
  if (reader_eof) {
    req.body_eof = true;
    *eof = true;
  }
  return n;
}

int end_body(Request &req) {
  if (!req.decoder)
    return H2POOL_OK;
  std::string why;
  int rc = req.decoder->finish(&why);
  if (rc != H2POOL_OK)
    return fail(req, rc, why);
  return H2POOL_OK;
}

} // namespace h2pool_core
