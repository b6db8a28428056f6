// The body of the ContentDecoder fuzz targets (fuzz_decompress and the
// per-coding fuzz_decompress_br and fuzz_decompress_zstd): decodes what is
// left of `fdp` as a body with content-encoding `encoding`.
//
// Input (FuzzedDataProvider, after whatever the target took): limits, how
// often the sink pauses, then body chunks. Invariants (trap on violation):
// the sink never receives more than max_bytes in total; the decoder's
// buffers stay a block per decoding step plus the few undecoded input
// bytes, however much the body expands; pumping after a pause terminates;
// failures come with a reason and a documented code; after a failure the
// decoder is not used again (as body.cc does).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "decompress.h"
#include "h2pool.h"

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      __builtin_trap();                                                        \
  } while (0)

namespace h2pool_fuzz {

// At most 6 steps of one 64 KiB block each, and the undecoded input: a
// chunk of at most 1024 bytes plus the byte or two a step may wait on.
constexpr size_t kMaxBuffered = 6 * (64u << 10) + 4096;

inline void decode_fuzzed_body(FuzzedDataProvider &fdp,
                               const std::string &encoding) {
  using namespace h2pool_core;
  DecodeLimits limits;
  limits.max_bytes = fdp.ConsumeIntegralInRange<uint64_t>(1, 4u << 20);
  limits.max_ratio = fdp.ConsumeIntegralInRange<uint32_t>(1, 2000);
  limits.max_encodings = fdp.ConsumeIntegralInRange<uint32_t>(0, 6);
  const unsigned pause_every = fdp.ConsumeIntegralInRange<unsigned>(0, 4);

  std::unique_ptr<ContentDecoder> decoder;
  std::string why;
  int rc = ContentDecoder::create(encoding, limits, &decoder, &why);
  if (rc != H2POOL_OK) {
    FUZZ_CHECK(!decoder && !why.empty());
    return;
  }
  if (!decoder)
    return; // an encoding passed through untouched

  uint64_t delivered = 0;
  unsigned calls = 0;
  bool paused = false;
  auto sink = [&](const uint8_t *p, size_t n) {
    FUZZ_CHECK(p != nullptr || n == 0);
    if (n)
      (void)(p[0] + p[n - 1]);
    delivered += n;
    FUZZ_CHECK(delivered <= limits.max_bytes);
    FUZZ_CHECK(decoder->buffered_bytes() <= kMaxBuffered);
    ++calls;
    paused = pause_every != 0 && calls % pause_every == 0;
    return !paused;
  };

  while (fdp.remaining_bytes() > 0) {
    size_t n = fdp.ConsumeIntegralInRange<size_t>(1, 1024);
    std::string chunk = fdp.ConsumeBytesAsString(n);
    decoder->append(reinterpret_cast<const uint8_t *>(chunk.data()),
                    chunk.size());
    // Pump again while the sink paused, as resume_body does for a paused
    // stream. Pending bytes without a pause are a partial header or block
    // waiting for the next chunk.
    for (int round = 0;; ++round) {
      FUZZ_CHECK(round < 100000);
      paused = false;
      rc = decoder->pump(sink, &why);
      FUZZ_CHECK(decoder->buffered_bytes() <= kMaxBuffered);
      if (rc != H2POOL_OK) {
        FUZZ_CHECK(rc == H2POOL_ERR_DECODE ||
                   rc == H2POOL_ERR_DECOMPRESSION_BOMB ||
                   rc == H2POOL_ERR_NOMEM);
        FUZZ_CHECK(!why.empty());
        return;
      }
      if (!paused)
        break;
    }
  }
  rc = decoder->finish(&why);
  FUZZ_CHECK(rc == H2POOL_OK || (rc == H2POOL_ERR_DECODE && !why.empty()));
}

} // namespace h2pool_fuzz
