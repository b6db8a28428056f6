#include "decompress.h"

#include <gtest/gtest.h>
#include <zlib.h>

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
  EXPECT_EQ(ContentDecoder::create("br", {}, &dec, &why), H2POOL_OK);
  EXPECT_EQ(dec, nullptr);
  EXPECT_EQ(ContentDecoder::create("gzip, br", {}, &dec, &why), H2POOL_OK);
  EXPECT_EQ(dec, nullptr) << "a chain with an unknown coding is left alone";
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

} // namespace
} // namespace h2pool_core
