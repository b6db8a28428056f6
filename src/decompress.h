// Streaming decoder for HTTP content-encodings (gzip, x-gzip, deflate in
// both its zlib-wrapped and raw forms, br and zstd when built in, identity),
// with limits that stop decompression bombs before they exhaust memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace h2pool_core {

// The codings this build decodes, as sent in accept-encoding: "gzip,
// deflate", then ", br" and ", zstd" when built with libbrotlidec and
// libzstd. Also what h2pool_supported_encodings() returns.
extern const char *const kAcceptEncoding;

// zstd frames may ask for a window of at most this many bytes (RFC 9659:
// 8 MiB for the "zstd" content coding); larger ones are refused, which also
// bounds the memory one zstd step holds.
constexpr uint64_t kZstdMaxWindow = 8u << 20;

// With chained encodings every decoding step counts, not only the last: an
// intermediate step can expand enormously even when the final body is small
// (a stream of empty gzip members, say).
struct DecodeLimits {
  // Most bytes any one step may produce.
  uint64_t max_bytes = 100u << 20;
  // Once a step has produced more than 1 MiB: most bytes it may produce per
  // byte it consumed, and per byte received from the wire.
  uint32_t max_ratio = 100;
  uint32_t max_encodings = 5;
};

class ContentDecoder {
public:
  // Receives decoded bytes. Returns false to pause: the decoder keeps its
  // place and continues from there on the next pump().
  using Sink = std::function<bool(const uint8_t *data, size_t len)>;

  // Builds a decoder for a content-encoding header value. Returns
  // H2POOL_OK with `*out` null when the value names an encoding we do not
  // decode (the body then passes through untouched), or
  // H2POOL_ERR_DECOMPRESSION_BOMB when it chains too many encodings.
  static int create(std::string_view content_encoding,
                    const DecodeLimits &limits,
                    std::unique_ptr<ContentDecoder> *out, std::string *why);
  ~ContentDecoder();
  ContentDecoder(const ContentDecoder &) = delete;
  ContentDecoder &operator=(const ContentDecoder &) = delete;

  // Takes a copy of encoded bytes; nothing is decoded until pump().
  void append(const uint8_t *data, size_t len);
  // Decodes as much as possible into `sink`. Returns H2POOL_OK (all input
  // used, or the sink paused), or H2POOL_ERR_DECODE /
  // H2POOL_ERR_DECOMPRESSION_BOMB with the reason in `*why`.
  int pump(const Sink &sink, std::string *why);
  // True while the sink's last pause left decoded or encoded bytes behind
  // (or output a decoder may still give without more input).
  bool has_pending() const;
  // Heap bytes held for encoded input and between decoding steps (the
  // decoders' own state aside: zlib's 32 KiB window, brotli's ring buffer of
  // at most 16 MiB, zstd's window of at most kZstdMaxWindow): the received
  // bytes not yet decoded plus at most one block per step, however much the
  // body expands.
  size_t buffered_bytes() const;
  // At the end of the body: H2POOL_OK if every stage ended cleanly, else
  // H2POOL_ERR_DECODE (truncated stream).
  int finish(std::string *why) const;

private:
  struct Stage;
  explicit ContentDecoder(const DecodeLimits &limits);
  int init_stage(Stage &st, const uint8_t *in, size_t avail, std::string *why);
  int run_stage(size_t index, const Sink &sink, bool *paused, bool *progress,
                std::string *why);
  int check_limits(size_t index, std::string *why) const;

  DecodeLimits limits_;
  std::vector<std::unique_ptr<Stage>> stages_; // first decodes the wire
  std::string in_;                             // received, from in_pos_ on
  size_t in_pos_ = 0;                          // not yet decoded
  uint64_t total_in_ = 0;
};

} // namespace h2pool_core
