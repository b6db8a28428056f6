#include "decompress.h"

#include <gtest/gtest.h>
#include <zlib.h>

#if H2POOL_HAVE_BROTLI
#include <brotli/encode.h>
#endif
#if H2POOL_HAVE_ZSTD
#include <zstd.h>
#endif

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "h2pool.h"

namespace h2pool_core {
namespace {

// Compresses with zlib: window_bits 15+16 gives gzip, 15 zlib, -15 raw.
std::string compress(const std::string &in, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef *>(out.data());
  z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
std::string gzip(const std::string &in) { return compress(in, 15 + 16); }

std::string sample(size_t n) {
  std::mt19937 rng(42);
  std::string s(n, '\0');
  for (auto &c : s)
    c = char('a' + rng() % 8); // compressible, not trivially
  return s;
}

// gzip of `times` copies of `piece`, compressed as it is fed, so the input
// (hundreds of MiB for a bomb) is never held whole, only its compressed form.
std::string gzip_repeated(const std::string &piece, size_t times) {
  std::string batch;
  size_t per_batch = std::max<size_t>(1, (256u << 10) / piece.size());
  for (size_t i = 0; i < per_batch; ++i)
    batch += piece;
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out;
  std::string buf(1u << 16, '\0');
  auto run = [&](const char *p, size_t n, int flush) {
    z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(p));
    z.avail_in = uInt(n);
    int rc;
    do {
      z.next_out = reinterpret_cast<Bytef *>(buf.data());
      z.avail_out = uInt(buf.size());
      rc = deflate(&z, flush);
      out.append(buf.data(), buf.size() - z.avail_out);
    } while (z.avail_in > 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  };
  for (size_t done = 0; done < times;) {
    size_t k = std::min(per_batch, times - done);
    run(batch.data(), k * piece.size(), Z_NO_FLUSH);
    done += k;
  }
  run(nullptr, 0, Z_FINISH);
  deflateEnd(&z);
  return out;
}

std::string repeated(const std::string &piece, size_t times) {
  std::string out;
  out.reserve(piece.size() * times);
  for (size_t i = 0; i < times; ++i)
    out += piece;
  return out;
}

// A field of /proc/self/status in bytes ("VmHWM", "VmRSS"), or 0.
uint64_t proc_status_bytes(const std::string &field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0)
      return std::stoull(line.substr(field.size() + 1)) * 1024;
  return 0;
}

// Resets VmHWM to the current RSS (Linux 4.0 on); false where it cannot.
bool reset_peak_rss() {
  std::FILE *f = std::fopen("/proc/self/clear_refs", "w");
  if (!f)
    return false;
  bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// Decodes while watching the decoder's buffers: after every pump and from
// inside the sink, so growth within one pump shows too. The bytes are only
// counted.
struct Watched {
  int rc = H2POOL_OK;
  std::string why;
  uint64_t delivered = 0;
  size_t peak_buffered = 0;
  uint64_t peak_rss_growth = 0; // VmHWM over the RSS before; 0: unmeasured
};

Watched decode_watched(const std::string &encoding, const std::string &wire,
                       size_t chunk, DecodeLimits limits = {}) {
  Watched w;
  std::unique_ptr<ContentDecoder> dec;
  w.rc = ContentDecoder::create(encoding, limits, &dec, &w.why);
  if (w.rc != H2POOL_OK || !dec) {
    ADD_FAILURE() << "no decoder for " << encoding << ": " << w.why;
    return w;
  }
  bool hwm = reset_peak_rss();
  uint64_t rss_before = proc_status_bytes("VmRSS");
  auto sink = [&](const uint8_t *, size_t n) {
    w.delivered += n;
    w.peak_buffered = std::max(w.peak_buffered, dec->buffered_bytes());
    return true;
  };
  for (size_t off = 0; off < wire.size() && w.rc == H2POOL_OK; off += chunk) {
    size_t n = std::min(chunk, wire.size() - off);
    dec->append(reinterpret_cast<const uint8_t *>(wire.data() + off), n);
    w.rc = dec->pump(sink, &w.why);
    w.peak_buffered = std::max(w.peak_buffered, dec->buffered_bytes());
  }
  if (w.rc == H2POOL_OK)
    w.rc = dec->finish(&w.why);
  uint64_t peak = proc_status_bytes("VmHWM");
  if (hwm && rss_before > 0 && peak > 0)
    w.peak_rss_growth = peak > rss_before ? peak - rss_before : 0;
  return w;
}

// Far below what the bombs below expand to in any one step (hundreds of
// MiB), far above a few 64 KiB blocks per step.
constexpr size_t kBufferBound = 1u << 20;
// ThreadSanitizer keeps shadow memory several times the size of every byte
// the decoder touches, and that counts in RSS too.
#if defined(__SANITIZE_THREAD__)
constexpr uint64_t kRssScale = 4;
#else
constexpr uint64_t kRssScale = 1;
#endif
constexpr uint64_t kRssBound = (8u << 20) * kRssScale;

struct Result {
  int rc = H2POOL_OK;
  std::string out;
  std::string why;
};

// Feeds `wire` in chunks of `chunk` bytes, then finishes.
Result decode(const std::string &encoding, const std::string &wire,
              size_t chunk = 1000, DecodeLimits limits = {}) {
  Result r;
  std::unique_ptr<ContentDecoder> dec;
  r.rc = ContentDecoder::create(encoding, limits, &dec, &r.why);
  if (r.rc != H2POOL_OK)
    return r;
  if (!dec) {
    r.out = wire; // passed through
    return r;
  }
  auto sink = [&](const uint8_t *p, size_t n) {
    r.out.append(reinterpret_cast<const char *>(p), n);
    return true;
  };
  for (size_t off = 0; off < wire.size(); off += chunk) {
    size_t n = std::min(chunk, wire.size() - off);
    dec->append(reinterpret_cast<const uint8_t *>(wire.data() + off), n);
    r.rc = dec->pump(sink, &r.why);
    if (r.rc != H2POOL_OK)
      return r;
  }
  r.rc = dec->finish(&r.why);
  return r;
}

TEST(Decompress, GzipRoundTripInSmallChunks) {
  std::string body = sample(300000);
  for (size_t chunk : {size_t(1), size_t(7), size_t(16384), size_t(1) << 20}) {
    Result r = decode("gzip", gzip(body), chunk);
    ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
    EXPECT_EQ(r.out, body) << "chunk " << chunk;
  }
}

TEST(Decompress, XGzipAndCaseAreAccepted) {
  std::string body = sample(1000);
  EXPECT_EQ(decode("X-GZIP", gzip(body)).out, body);
}

TEST(Decompress, DeflateZlibWrappedAndRaw) {
  std::string body = sample(50000);
  Result wrapped = decode("deflate", compress(body, 15));
  ASSERT_EQ(wrapped.rc, H2POOL_OK) << wrapped.why;
  EXPECT_EQ(wrapped.out, body);
  Result raw = decode("deflate", compress(body, -15), 1);
  ASSERT_EQ(raw.rc, H2POOL_OK) << raw.why;
  EXPECT_EQ(raw.out, body);
}

TEST(Decompress, ChainedEncodingsAreUndoneInReverse) {
  std::string body = sample(20000);
  std::string wire = compress(gzip(body), 15); // gzip, then deflate
  Result r = decode("gzip, deflate", wire, 333);
  ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
  EXPECT_EQ(r.out, body);
  Result twice = decode("gzip,gzip", gzip(gzip(body)));
  ASSERT_EQ(twice.rc, H2POOL_OK) << twice.why;
  EXPECT_EQ(twice.out, body);
}

TEST(Decompress, ConcatenatedGzipMembers) {
  std::string a = sample(1000), b = "second member";
  Result r = decode("gzip", gzip(a) + gzip(b), 5);
  ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
  EXPECT_EQ(r.out, a + b);
}

TEST(Decompress, IdentityAndUnknownPassThrough) {
  std::unique_ptr<ContentDecoder> dec;
  std::string why;
  EXPECT_EQ(ContentDecoder::create("identity", {}, &dec, &why), H2POOL_OK);
  EXPECT_EQ(dec, nullptr);
  EXPECT_EQ(ContentDecoder::create("compress", {}, &dec, &why), H2POOL_OK);
  EXPECT_EQ(dec, nullptr);
  EXPECT_EQ(ContentDecoder::create("gzip, compress", {}, &dec, &why),
            H2POOL_OK);
  EXPECT_EQ(dec, nullptr) << "a chain with an unknown coding is left alone";
#if !H2POOL_HAVE_BROTLI
  EXPECT_EQ(ContentDecoder::create("gzip, br", {}, &dec, &why), H2POOL_OK);
  EXPECT_EQ(dec, nullptr) << "br is unknown to a build without libbrotlidec";
#endif
#if !H2POOL_HAVE_ZSTD
  EXPECT_EQ(ContentDecoder::create("zstd", {}, &dec, &why), H2POOL_OK);
  EXPECT_EQ(dec, nullptr) << "zstd is unknown to a build without libzstd";
#endif
}

TEST(Decompress, TooManyEncodingsIsABomb) {
  std::unique_ptr<ContentDecoder> dec;
  std::string why;
  EXPECT_EQ(
      ContentDecoder::create("gzip,gzip,gzip,gzip,gzip,gzip", {}, &dec, &why),
      H2POOL_ERR_DECOMPRESSION_BOMB);
  EXPECT_NE(why.find("6 chained"), std::string::npos) << why;
}

TEST(Decompress, SizeLimitStopsABomb) {
  std::string zeros(100u << 20, '\0');
  std::string wire = gzip(zeros);
  ASSERT_LT(wire.size(), 200000u);
  DecodeLimits limits;
  limits.max_ratio = 1u << 30; // only the size limit applies
  limits.max_bytes = 10u << 20;
  Result r = decode("gzip", wire, 16384, limits);
  EXPECT_EQ(r.rc, H2POOL_ERR_DECOMPRESSION_BOMB);
  EXPECT_LE(r.out.size(), (10u << 20));
}

TEST(Decompress, RatioLimitStopsABomb) {
  std::string zeros(50u << 20, '\0');
  Result r = decode("gzip", gzip(zeros), 16384);
  EXPECT_EQ(r.rc, H2POOL_ERR_DECOMPRESSION_BOMB);
  EXPECT_NE(r.why.find("ratio"), std::string::npos) << r.why;
  EXPECT_LT(r.out.size(), (4u << 20)) << "stopped soon after the first MiB";
}

TEST(Decompress, CorruptHeaderFails) {
  std::string wire = gzip(sample(1000));
  wire[0] = 'x';
  EXPECT_EQ(decode("gzip", wire).rc, H2POOL_ERR_DECODE);
}

TEST(Decompress, BadCrcFails) {
  std::string wire = gzip(sample(1000));
  wire[wire.size() - 6] ^= 0x55; // inside the CRC32 trailer
  EXPECT_EQ(decode("gzip", wire).rc, H2POOL_ERR_DECODE);
}

TEST(Decompress, TruncatedStreamFails) {
  std::string wire = gzip(sample(10000));
  Result r = decode("gzip", wire.substr(0, wire.size() / 2));
  EXPECT_EQ(r.rc, H2POOL_ERR_DECODE);
  EXPECT_NE(r.why.find("truncated"), std::string::npos) << r.why;
}

TEST(Decompress, TrailingGarbageFails) {
  EXPECT_EQ(decode("gzip", gzip("abc") + "junk").rc, H2POOL_ERR_DECODE);
  EXPECT_EQ(decode("deflate", compress("abc", 15) + "x").rc, H2POOL_ERR_DECODE);
}

TEST(Decompress, EmptyBodyIsFine) {
  Result r = decode("gzip", "");
  EXPECT_EQ(r.rc, H2POOL_OK);
  EXPECT_TRUE(r.out.empty());
}

TEST(Decompress, PausingSinkResumesWhereItStopped) {
  std::string body = sample(500000);
  std::string wire = gzip(body);
  std::unique_ptr<ContentDecoder> dec;
  std::string why, out;
  ASSERT_EQ(ContentDecoder::create("gzip", {}, &dec, &why), H2POOL_OK);
  dec->append(reinterpret_cast<const uint8_t *>(wire.data()), wire.size());
  int pauses = 0;
  auto sink = [&](const uint8_t *p, size_t n) {
    out.append(reinterpret_cast<const char *>(p), n);
    return false; // pause after every piece
  };
  while (out.size() < body.size() && pauses < 100000) {
    ASSERT_EQ(dec->pump(sink, &why), H2POOL_OK) << why;
    ++pauses;
  }
  EXPECT_GT(pauses, 2);
  EXPECT_EQ(out, body);
  EXPECT_FALSE(dec->has_pending());
  EXPECT_EQ(dec->finish(&why), H2POOL_OK) << why;
}

// gzip, three times over: the middle step expands the wire's few KB to 128
// MiB of gzip members (each 1 MiB of zeros), which the last step would
// expand to 128 GiB. Decoding the middle step whole before the last one
// starts is what held hundreds of MiB.
TEST(Decompress, TripleGzipBombFailsWithBoundedMemory) {
  const std::string member = gzip(std::string(1u << 20, '\0'));
  const size_t members = (128u << 20) / member.size();
  std::string wire = gzip(gzip_repeated(member, members));
  ASSERT_LT(wire.size(), 64u << 10);
  // In small pieces, and whole as one DATA frame would bring it.
  for (size_t chunk : {size_t(1000), wire.size()}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    Watched w = decode_watched("gzip, gzip, gzip", wire, chunk);
    EXPECT_EQ(w.rc, H2POOL_ERR_DECOMPRESSION_BOMB) << w.why;
    EXPECT_NE(w.why.find("ratio"), std::string::npos) << w.why;
    EXPECT_LT(w.delivered, 4u << 20);
    EXPECT_LT(w.peak_buffered, kBufferBound);
    EXPECT_LT(w.peak_rss_growth, kRssBound);
    std::printf("triple gzip bomb, wire %zu bytes in pieces of %zu: peak "
                "buffered %zu bytes, peak RSS growth %llu KiB\n",
                wire.size(), chunk, w.peak_buffered,
                (unsigned long long)(w.peak_rss_growth >> 10));
  }
}

// Empty gzip members: the middle step yields 128 MiB of them, the last step
// nothing at all, so only the middle step's own output shows the bomb.
TEST(Decompress, IntermediateStepBombFailsThoughTheBodyIsEmpty) {
  const std::string empty_member = gzip("");
  const size_t members = (128u << 20) / empty_member.size();
  std::string wire = gzip(gzip_repeated(empty_member, members));
  ASSERT_LT(wire.size(), 64u << 10);
  for (size_t chunk : {size_t(1000), wire.size()}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    Watched w = decode_watched("gzip, gzip, gzip", wire, chunk);
    EXPECT_EQ(w.rc, H2POOL_ERR_DECOMPRESSION_BOMB) << w.why;
    EXPECT_NE(w.why.find("ratio exceeds 100:1 in decoding step 2 of 3"),
              std::string::npos)
        << w.why;
    EXPECT_EQ(w.delivered, 0u);
    EXPECT_LT(w.peak_buffered, kBufferBound);
    EXPECT_LT(w.peak_rss_growth, kRssBound);
    std::printf("intermediate bomb, wire %zu bytes in pieces of %zu: peak "
                "buffered %zu bytes, peak RSS growth %llu KiB\n",
                wire.size(), chunk, w.peak_buffered,
                (unsigned long long)(w.peak_rss_growth >> 10));
  }
}

TEST(Decompress, SizeLimitAppliesToEachStep) {
  const std::string empty_member = gzip("");
  std::string wire =
      gzip_repeated(empty_member, (32u << 20) / empty_member.size());
  DecodeLimits limits;
  limits.max_ratio = 1u << 30; // only the size limit applies
  limits.max_bytes = 8u << 20;
  Watched w = decode_watched("gzip, gzip", wire, 1000, limits);
  EXPECT_EQ(w.rc, H2POOL_ERR_DECOMPRESSION_BOMB) << w.why;
  EXPECT_NE(w.why.find("decoding step 1 of 2 exceeds 8388608 bytes"),
            std::string::npos)
      << w.why;
  EXPECT_EQ(w.delivered, 0u);
}

// Each step expands about 20:1, within the limit, but together over 400:1
// while the body stays empty: a step's output is checked against the wire
// too.
TEST(Decompress, RatioAgainstTheWireAppliesToEachStep) {
  const std::string inner = gzip(repeated(gzip(""), 40));
  const std::string outer = gzip(repeated(inner, 40));
  const uint64_t empty_bytes = 40 * gzip("").size(); // per inner member
  ASSERT_LT(empty_bytes / inner.size(), 50u);
  ASSERT_LT(40 * inner.size() / outer.size(), 50u);
  ASSERT_GE(40 * empty_bytes / outer.size(), 200u);
  std::string wire = repeated(outer, (64u << 20) / (40 * empty_bytes));
  DecodeLimits limits;
  limits.max_bytes = uint64_t{1} << 30;
  Watched w = decode_watched("gzip, gzip, gzip", wire, 1000, limits);
  EXPECT_EQ(w.rc, H2POOL_ERR_DECOMPRESSION_BOMB) << w.why;
  EXPECT_NE(w.why.find("ratio exceeds 100:1 in decoding step 2 of 3"),
            std::string::npos)
      << w.why;
  EXPECT_EQ(w.delivered, 0u);
}

// 5 MiB through three steps (gzip, zlib deflate, raw deflate in the order
// applied), fed in pieces of various sizes: byte-exact, and the decoder
// never holds more than a few blocks.
TEST(Decompress, ThreeStepChainDecodesByteExact) {
  const std::string body = sample(5u << 20);
  const std::string wire = compress(compress(gzip(body), 15), -15);
  for (size_t chunk : {size_t(1000), size_t(16384), wire.size()}) {
    std::unique_ptr<ContentDecoder> dec;
    std::string why, out;
    ASSERT_EQ(ContentDecoder::create("gzip, deflate, deflate", {}, &dec, &why),
              H2POOL_OK);
    ASSERT_NE(dec, nullptr);
    size_t peak = 0;
    auto sink = [&](const uint8_t *p, size_t n) {
      out.append(reinterpret_cast<const char *>(p), n);
      peak = std::max(peak, dec->buffered_bytes());
      return true;
    };
    for (size_t off = 0; off < wire.size(); off += chunk) {
      size_t n = std::min(chunk, wire.size() - off);
      dec->append(reinterpret_cast<const uint8_t *>(wire.data() + off), n);
      ASSERT_EQ(dec->pump(sink, &why), H2POOL_OK) << why;
    }
    EXPECT_EQ(dec->finish(&why), H2POOL_OK) << why;
    EXPECT_FALSE(dec->has_pending());
    EXPECT_EQ(out.size(), body.size()) << "chunk " << chunk;
    EXPECT_TRUE(out == body) << "chunk " << chunk;
    // What was appended at once, plus a block per step.
    EXPECT_LE(peak, 2 * chunk + 3 * (64u << 10)) << "chunk " << chunk;
  }
}

// The same chain with a sink that pauses after every piece: each pump()
// resumes where the last stopped, nothing lost or repeated, and what waits
// between steps stays a block or so whatever was appended.
TEST(Decompress, ThreeStepChainWithPausingSinkDecodesByteExact) {
  const std::string body = sample(5u << 20);
  const std::string wire = gzip(gzip(gzip(body)));
  for (size_t chunk : {size_t(16384), wire.size()}) {
    std::unique_ptr<ContentDecoder> dec;
    std::string why, out;
    ASSERT_EQ(ContentDecoder::create("gzip, gzip, gzip", {}, &dec, &why),
              H2POOL_OK);
    bool paused = false;
    size_t calls = 0, peak = 0;
    auto sink = [&](const uint8_t *p, size_t n) {
      EXPECT_FALSE(paused) << "sink called again after pausing";
      out.append(reinterpret_cast<const char *>(p), n);
      ++calls;
      paused = true;
      return false;
    };
    for (size_t off = 0; off < wire.size(); off += chunk) {
      size_t n = std::min(chunk, wire.size() - off);
      dec->append(reinterpret_cast<const uint8_t *>(wire.data() + off), n);
      // Pump again while the sink paused, as resume_body does.
      do {
        paused = false;
        ASSERT_EQ(dec->pump(sink, &why), H2POOL_OK) << why;
        peak = std::max(peak, dec->buffered_bytes());
      } while (paused);
    }
    EXPECT_GE(calls, body.size() / (64u << 10)) << "chunk " << chunk;
    EXPECT_EQ(out.size(), body.size()) << "chunk " << chunk;
    EXPECT_TRUE(out == body) << "chunk " << chunk;
    EXPECT_FALSE(dec->has_pending());
    EXPECT_EQ(dec->finish(&why), H2POOL_OK) << why;
    EXPECT_LE(peak, 2 * chunk + 3 * (64u << 10)) << "chunk " << chunk;
  }
}

TEST(Decompress, AcceptEncodingListsWhatIsBuiltIn) {
  std::string expected = "gzip, deflate";
#if H2POOL_HAVE_BROTLI
  expected += ", br";
#endif
#if H2POOL_HAVE_ZSTD
  expected += ", zstd";
#endif
  EXPECT_EQ(std::string(kAcceptEncoding), expected);
  EXPECT_STREQ(h2pool_supported_encodings(), kAcceptEncoding);
}

#if H2POOL_HAVE_BROTLI || H2POOL_HAVE_ZSTD
// Every `times` copies of `piece` handed to `feed` in batches of about
// 256 KiB, so a bomb's hundreds of MiB are never held whole.
template <typename Feed>
void feed_repeated(const std::string &piece, size_t times, Feed feed) {
  std::string batch;
  size_t per_batch = std::max<size_t>(1, (256u << 10) / piece.size());
  for (size_t i = 0; i < per_batch; ++i)
    batch += piece;
  for (size_t done = 0; done < times;) {
    size_t k = std::min(per_batch, times - done);
    feed(batch.data(), k * piece.size());
    done += k;
  }
}

// Pumps `wire` (all appended at once) into a sink that pauses after every
// piece, until the whole body arrived.
void expect_resumes_after_pauses(const std::string &encoding,
                                 const std::string &wire,
                                 const std::string &body) {
  std::unique_ptr<ContentDecoder> dec;
  std::string why, out;
  ASSERT_EQ(ContentDecoder::create(encoding, {}, &dec, &why), H2POOL_OK);
  ASSERT_NE(dec, nullptr);
  dec->append(reinterpret_cast<const uint8_t *>(wire.data()), wire.size());
  int pauses = 0;
  auto sink = [&](const uint8_t *p, size_t n) {
    out.append(reinterpret_cast<const char *>(p), n);
    return false;
  };
  while (out.size() < body.size() && pauses < 100000) {
    ASSERT_EQ(dec->pump(sink, &why), H2POOL_OK) << why;
    ++pauses;
  }
  EXPECT_GT(pauses, 2);
  EXPECT_TRUE(out == body);
  EXPECT_FALSE(dec->has_pending());
  EXPECT_EQ(dec->finish(&why), H2POOL_OK) << why;
}

// A bomb the ratio limit stops soon after the first MiB, whether it arrives
// in small pieces or whole, with the decoder's buffers and the process's
// RSS staying small; `step` names the step that must be blamed, if any.
void expect_ratio_bomb(const std::string &encoding, const std::string &wire,
                       const std::string &step = "") {
  for (size_t chunk : {size_t(1000), wire.size()}) {
    SCOPED_TRACE(encoding + ", chunk " + std::to_string(chunk));
    Watched w = decode_watched(encoding, wire, chunk);
    EXPECT_EQ(w.rc, H2POOL_ERR_DECOMPRESSION_BOMB) << w.why;
    EXPECT_NE(w.why.find("ratio"), std::string::npos) << w.why;
    EXPECT_NE(w.why.find(step), std::string::npos) << w.why;
    EXPECT_LT(w.delivered, 4u << 20);
    EXPECT_LT(w.peak_buffered, kBufferBound);
    EXPECT_LT(w.peak_rss_growth, kRssBound);
    std::printf("%s bomb, wire %zu bytes in pieces of %zu: peak buffered %zu "
                "bytes, peak RSS growth %llu KiB\n",
                encoding.c_str(), wire.size(), chunk, w.peak_buffered,
                (unsigned long long)(w.peak_rss_growth >> 10));
  }
}

// With the ratio limit out of the way, the size limit stops `wire` (which
// expands to more than 10 MiB) at 10 MiB.
void expect_size_limit_stops(const std::string &encoding,
                             const std::string &wire) {
  DecodeLimits limits;
  limits.max_ratio = 1u << 30;
  limits.max_bytes = 10u << 20;
  Result r = decode(encoding, wire, 16384, limits);
  EXPECT_EQ(r.rc, H2POOL_ERR_DECOMPRESSION_BOMB);
  EXPECT_NE(r.why.find("exceeds 10485760 bytes"), std::string::npos) << r.why;
  EXPECT_LE(r.out.size(), 10u << 20);
}
#endif

#if H2POOL_HAVE_BROTLI
std::string brotli(const std::string &in, int quality = 5, int lgwin = 22) {
  size_t size = BrotliEncoderMaxCompressedSize(in.size());
  std::string out(size ? size : 16, '\0');
  size = out.size();
  EXPECT_TRUE(
      BrotliEncoderCompress(quality, lgwin, BROTLI_MODE_GENERIC, in.size(),
                            reinterpret_cast<const uint8_t *>(in.data()), &size,
                            reinterpret_cast<uint8_t *>(out.data())));
  out.resize(size);
  return out;
}

// brotli of `times` copies of `piece`, encoded as it is fed.
std::string brotli_repeated(const std::string &piece, size_t times,
                            int lgwin = 22) {
  BrotliEncoderState *enc =
      BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
  BrotliEncoderSetParameter(enc, BROTLI_PARAM_QUALITY, 5);
  BrotliEncoderSetParameter(enc, BROTLI_PARAM_LGWIN, uint32_t(lgwin));
  std::string out;
  auto run = [&](const char *p, size_t n, BrotliEncoderOperation op) {
    size_t avail_in = n;
    const uint8_t *next_in = reinterpret_cast<const uint8_t *>(p);
    do {
      uint8_t buf[1u << 16];
      size_t avail_out = sizeof buf;
      uint8_t *next_out = buf;
      EXPECT_TRUE(BrotliEncoderCompressStream(enc, op, &avail_in, &next_in,
                                              &avail_out, &next_out, nullptr));
      out.append(reinterpret_cast<char *>(buf), sizeof buf - avail_out);
    } while (avail_in > 0 || BrotliEncoderHasMoreOutput(enc) ||
             (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(enc)));
  };
  feed_repeated(piece, times, [&](const char *p, size_t n) {
    run(p, n, BROTLI_OPERATION_PROCESS);
  });
  run(nullptr, 0, BROTLI_OPERATION_FINISH);
  BrotliEncoderDestroyInstance(enc);
  return out;
}

TEST(DecompressBr, RoundTripInSmallChunks) {
  std::string body = sample(300000);
  std::string wire = brotli(body);
  for (size_t chunk : {size_t(1), size_t(7), size_t(16384), size_t(1) << 20}) {
    Result r = decode("br", wire, chunk);
    ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
    EXPECT_TRUE(r.out == body) << "chunk " << chunk;
  }
  EXPECT_EQ(decode("BR", brotli("abc")).out, "abc");
}

TEST(DecompressBr, LargestWindowAndQualityDecode) {
  std::string body = sample(512u << 10);
  Result r = decode("br", brotli(body, 11, 24), 65536);
  ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
  EXPECT_TRUE(r.out == body);
}

TEST(DecompressBr, EmptyStreamDecodesToNothing) {
  Result r = decode("br", brotli(""));
  ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
  EXPECT_TRUE(r.out.empty());
}

TEST(DecompressBr, TruncatedStreamFails) {
  std::string wire = brotli(sample(100000));
  for (size_t keep : {size_t(1), wire.size() / 2, wire.size() - 1}) {
    Result r = decode("br", wire.substr(0, keep));
    EXPECT_EQ(r.rc, H2POOL_ERR_DECODE) << "kept " << keep;
    EXPECT_NE(r.why.find("truncated"), std::string::npos) << r.why;
  }
}

TEST(DecompressBr, TrailingGarbageFails) {
  Result r = decode("br", brotli("abc") + "junk");
  EXPECT_EQ(r.rc, H2POOL_ERR_DECODE);
  EXPECT_NE(r.why.find("trailing"), std::string::npos) << r.why;
  // br has no members: a second stream after the first is garbage too.
  EXPECT_EQ(decode("br", brotli("abc") + brotli("def")).rc, H2POOL_ERR_DECODE);
}

TEST(DecompressBr, CorruptStreamFails) {
  std::mt19937 rng(7);
  std::string noise(4096, '\0');
  for (auto &c : noise)
    c = char(rng());
  Result r = decode("br", noise);
  EXPECT_EQ(r.rc, H2POOL_ERR_DECODE);
  EXPECT_FALSE(r.why.empty());
}

TEST(DecompressBr, PausingSinkResumesWhereItStopped) {
  std::string body = sample(500000);
  expect_resumes_after_pauses("br", brotli(body), body);
}

// 1 GiB of zeros is a few KB of br: the ratio limit stops it after the first
// MiB, holding a block and brotli's ring buffer (4 MiB for lgwin 22).
TEST(DecompressBr, BombFailsWithBoundedMemory) {
  std::string wire = brotli_repeated(std::string(1u << 20, '\0'), 1024);
  ASSERT_LT(wire.size(), 64u << 10);
  expect_ratio_bomb("br", wire);
}

TEST(DecompressBr, SizeLimitStopsABomb) {
  expect_size_limit_stops("br",
                          brotli_repeated(std::string(1u << 20, '\0'), 100));
}

// br then gzip ("br, gzip"): gzip's step is small, the br step under it
// explodes; and the other way round ("gzip, br"), where both steps expand.
TEST(DecompressBr, NestedBombsFailInEitherOrder) {
  std::string br_bomb = brotli_repeated(std::string(1u << 20, '\0'), 1024);
  std::string gzip_bomb =
      gzip_repeated(std::string(1u << 20, '\0'), 256); // 256 MiB of zeros
  expect_ratio_bomb("br, gzip", gzip(br_bomb), "decoding step 2 of 2");
  expect_ratio_bomb("gzip, br", brotli(gzip_bomb), "decoding step 2 of 2");
}
#endif // H2POOL_HAVE_BROTLI

#if H2POOL_HAVE_ZSTD
// One frame; content_size false leaves the size out of the frame header (as
// a streaming encoder does), window_log 0 keeps the level's window.
std::string zstd(const std::string &in, bool content_size = true,
                 int window_log = 0, bool checksum = true) {
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  if (window_log)
    EXPECT_FALSE(ZSTD_isError(
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, window_log)));
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  ZSTD_freeCCtx(cctx);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

// zstd of `times` copies of `piece`, encoded as it is fed (no content size).
std::string zstd_repeated(const std::string &piece, size_t times) {
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  std::string out;
  auto run = [&](const char *p, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer ib{p, n, 0};
    size_t left;
    do {
      char buf[1u << 16];
      ZSTD_outBuffer ob{buf, sizeof buf, 0};
      left = ZSTD_compressStream2(cctx, &ob, &ib, mode);
      EXPECT_FALSE(ZSTD_isError(left));
      out.append(buf, ob.pos);
    } while (ib.pos < ib.size || (mode == ZSTD_e_end && left != 0));
  };
  feed_repeated(piece, times,
                [&](const char *p, size_t n) { run(p, n, ZSTD_e_continue); });
  run(nullptr, 0, ZSTD_e_end);
  ZSTD_freeCCtx(cctx);
  return out;
}

// A skippable frame (RFC 8878 3.1.2) holding `data`.
std::string skippable(const std::string &data, uint8_t variant = 0) {
  std::string out;
  uint32_t magic = 0x184D2A50u + variant, size = uint32_t(data.size());
  for (uint32_t v : {magic, size})
    for (int i = 0; i < 4; ++i)
      out.push_back(char((v >> (8 * i)) & 0xff));
  return out + data;
}

TEST(DecompressZstd, FramesWithAndWithoutContentSizeRoundTrip) {
  std::string body = sample(300000);
  for (bool content_size : {true, false}) {
    std::string wire = zstd(body, content_size);
    for (size_t chunk : {size_t(1), size_t(7), size_t(16384), wire.size()}) {
      Result r = decode("zstd", wire, chunk);
      ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
      EXPECT_TRUE(r.out == body)
          << "chunk " << chunk << " content size " << content_size;
    }
  }
  EXPECT_EQ(decode("ZSTD", zstd("abc")).out, "abc");
}

TEST(DecompressZstd, ConcatenatedFramesAreOneBody) {
  std::string a = sample(100000), b = "second frame", c = sample(70000);
  std::string wire = zstd(a) + zstd(b, false) + zstd(c);
  for (size_t chunk : {size_t(3), size_t(4096), wire.size()}) {
    Result r = decode("zstd", wire, chunk);
    ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
    EXPECT_TRUE(r.out == a + b + c) << "chunk " << chunk;
  }
}

TEST(DecompressZstd, SkippableFramesAreSkipped) {
  std::string a = sample(5000), b = sample(9000);
  std::string wire = skippable("metadata") + zstd(a) + skippable("", 15) +
                     zstd(b) + skippable(std::string(100000, 'x'), 3);
  for (size_t chunk : {size_t(1), size_t(1000), wire.size()}) {
    Result r = decode("zstd", wire, chunk);
    ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
    EXPECT_TRUE(r.out == a + b) << "chunk " << chunk;
  }
  Result only = decode("zstd", skippable("nothing else"));
  ASSERT_EQ(only.rc, H2POOL_OK) << only.why;
  EXPECT_TRUE(only.out.empty());
}

TEST(DecompressZstd, EmptyFrameDecodesToNothing) {
  for (bool content_size : {true, false}) {
    Result r = decode("zstd", zstd("", content_size));
    ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
    EXPECT_TRUE(r.out.empty());
  }
}

// RFC 9659: the zstd content coding's window is at most 8 MiB. 2^23 passes,
// 2^24 is refused before a byte is decoded.
TEST(DecompressZstd, WindowOver8MiBIsRefused) {
  std::string body = sample(20u << 20);
  Result ok = decode("zstd", zstd(body, false, 23), 65536);
  ASSERT_EQ(ok.rc, H2POOL_OK) << ok.why;
  EXPECT_TRUE(ok.out == body);
  Result big = decode("zstd", zstd(body, false, 24), 65536);
  EXPECT_EQ(big.rc, H2POOL_ERR_DECODE);
  EXPECT_NE(big.why.find("8 MiB"), std::string::npos) << big.why;
  EXPECT_TRUE(big.out.empty());
}

TEST(DecompressZstd, TruncatedFrameFails) {
  std::string wire = zstd(sample(100000), false);
  for (size_t keep : {size_t(1), size_t(5), wire.size() / 2, wire.size() - 1}) {
    Result r = decode("zstd", wire.substr(0, keep));
    EXPECT_EQ(r.rc, H2POOL_ERR_DECODE) << "kept " << keep;
    EXPECT_NE(r.why.find("truncated"), std::string::npos) << r.why;
  }
  // A complete frame followed by part of another.
  std::string two = zstd("abc") + zstd("def");
  EXPECT_EQ(decode("zstd", two.substr(0, two.size() - 2)).rc,
            H2POOL_ERR_DECODE);
}

TEST(DecompressZstd, TrailingGarbageFails) {
  Result r = decode("zstd", zstd("abc") + "junk and more junk");
  EXPECT_EQ(r.rc, H2POOL_ERR_DECODE);
  EXPECT_FALSE(r.why.empty());
}

TEST(DecompressZstd, BadChecksumFails) {
  std::string wire = zstd(sample(10000));
  wire[wire.size() - 2] ^= 0x55; // inside the XXH64 checksum
  Result r = decode("zstd", wire);
  EXPECT_EQ(r.rc, H2POOL_ERR_DECODE);
  EXPECT_NE(r.why.find("zstd"), std::string::npos) << r.why;
}

TEST(DecompressZstd, PausingSinkResumesWhereItStopped) {
  std::string body = sample(500000);
  expect_resumes_after_pauses("zstd", zstd(body, false), body);
}

TEST(DecompressZstd, BombFailsWithBoundedMemory) {
  std::string wire = zstd_repeated(std::string(1u << 20, '\0'), 1024);
  ASSERT_LT(wire.size(), 128u << 10);
  expect_ratio_bomb("zstd", wire);
}

TEST(DecompressZstd, SizeLimitStopsABomb) {
  expect_size_limit_stops("zstd",
                          zstd_repeated(std::string(1u << 20, '\0'), 100));
}

// zstd then gzip: the outer gzip step passes, the zstd step under it fails.
TEST(DecompressZstd, NestedBombFails) {
  expect_ratio_bomb("zstd, gzip",
                    gzip(zstd_repeated(std::string(1u << 20, '\0'), 1024)),
                    "decoding step 2 of 2");
}
#endif // H2POOL_HAVE_ZSTD

#if H2POOL_HAVE_BROTLI && H2POOL_HAVE_ZSTD
// Every coding in one chain, undone in reverse, with a pausing sink.
TEST(Decompress, GzipBrZstdChainDecodesByteExact) {
  const std::string body = sample(2u << 20);
  const std::string wire = zstd(brotli(gzip(body)), false);
  Result r = decode("gzip, br, zstd", wire, 5000);
  ASSERT_EQ(r.rc, H2POOL_OK) << r.why;
  EXPECT_TRUE(r.out == body);
  expect_resumes_after_pauses("gzip, br, zstd", wire, body);
}
#endif

} // namespace
} // namespace h2pool_core
