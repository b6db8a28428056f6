// Decode throughput and memory of each content-encoding: a body of N MiB
// (default 64) is encoded once per coding, then decoded by ContentDecoder
// fed in 16 KiB pieces (one DATA frame each, as from the wire) into a sink
// that only counts. Prints, per coding: encoded size, decode time, decoded
// MB/s, and the peak RSS growth while decoding (VmHWM reset just before, so
// it is the decoder's own memory: the encoded input is already allocated
// and the output is not kept). Each coding decodes in a child process of
// its own, so no coding reuses heap another one touched.
//
//   decode_bench [MIB]
//
// The body is log-like text (timestamps, counters, repeated words), which
// compresses about as well as real HTML/JSON; random bytes would measure
// only the stored-block paths.
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#if H2POOL_HAVE_BROTLI
#include <brotli/encode.h>
#endif
#if H2POOL_HAVE_ZSTD
#include <zstd.h>
#endif

#include "decompress.h"
#include "h2pool.h"

using h2pool_core::ContentDecoder;
using h2pool_core::DecodeLimits;

namespace {

std::string make_body(size_t n) {
  static const char *const words[] = {
      "GET",   "POST", "/api/v1/items", "200",      "404", "user",
      "cache", "miss", "hit",           "upstream", "ms",  "bytes"};
  std::mt19937 rng(1);
  std::string s;
  s.reserve(n + 128);
  char line[128];
  while (s.size() < n) {
    int len = std::snprintf(
        line, sizeof line, "2026-12-02T03:%02u:%02u.%03uZ %s %s %u\n",
        unsigned(rng() % 60), unsigned(rng() % 60), unsigned(rng() % 1000),
        words[rng() % 12], words[rng() % 12], unsigned(rng() % 100000));
    s.append(line, size_t(len));
  }
  s.resize(n);
  return s;
}

std::string gzip(const std::string &in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef *>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

#if H2POOL_HAVE_BROTLI
std::string brotli(const std::string &in) {
  size_t n = BrotliEncoderMaxCompressedSize(in.size());
  std::string out(n, '\0');
  // Quality 5, lgwin 22: a level for compressing on the fly, rather than
  // the slow quality 11 of precompressed files.
  BrotliEncoderCompress(5, 22, BROTLI_MODE_TEXT, in.size(),
                        reinterpret_cast<const uint8_t *>(in.data()), &n,
                        reinterpret_cast<uint8_t *>(out.data()));
  out.resize(n);
  return out;
}
#endif

#if H2POOL_HAVE_ZSTD
std::string zstd(const std::string &in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}
#endif

uint64_t status_kib(const char *field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t len = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, len, field) == 0 && line[len] == ':')
      return std::stoull(line.substr(len + 1));
  return 0;
}

bool reset_peak() {
  std::FILE *f = std::fopen("/proc/self/clear_refs", "w");
  if (!f)
    return false;
  bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

int run(const char *coding, const std::string &wire, size_t body_size) {
  DecodeLimits limits;
  limits.max_bytes = uint64_t(body_size) + 1;
  limits.max_ratio = 1u << 30;
  std::unique_ptr<ContentDecoder> dec;
  std::string why;
  if (ContentDecoder::create(coding, limits, &dec, &why) != H2POOL_OK || !dec) {
    std::fprintf(stderr, "%s: no decoder: %s\n", coding, why.c_str());
    return 1;
  }
  bool peak_ok = reset_peak();
  uint64_t rss_before = status_kib("VmRSS");
  uint64_t out = 0;
  auto sink = [&](const uint8_t *, size_t n) {
    out += n;
    return true;
  };
  auto t0 = std::chrono::steady_clock::now();
  constexpr size_t kPiece = 16384;
  for (size_t off = 0; off < wire.size(); off += kPiece) {
    size_t n = std::min(kPiece, wire.size() - off);
    dec->append(reinterpret_cast<const uint8_t *>(wire.data()) + off, n);
    if (dec->pump(sink, &why) != H2POOL_OK) {
      std::fprintf(stderr, "%s: %s\n", coding, why.c_str());
      return 1;
    }
  }
  if (dec->finish(&why) != H2POOL_OK || out != body_size) {
    std::fprintf(stderr, "%s: %s (%llu bytes)\n", coding, why.c_str(),
                 (unsigned long long)out);
    return 1;
  }
  double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  uint64_t peak = status_kib("VmHWM");
  std::printf("| %-4s | %10zu | %6.2f | %7.1f | %8.0f | %s\n", coding,
              wire.size(), double(body_size) / double(wire.size()), s * 1e3,
              double(body_size) / s / 1e6,
              peak_ok && peak >= rss_before
                  ? (std::to_string(peak - rss_before) + " KiB |").c_str()
                  : "n/a |");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
  if (mib == 0 || mib > 1024) {
    std::fprintf(stderr, "usage: %s [MIB (1..1024)]\n", argv[0]);
    return 2;
  }
  const std::string body = make_body(mib << 20);
  struct Coding {
    const char *name;
    std::string wire;
  };
  std::vector<Coding> codings;
  codings.push_back({"gzip", gzip(body)});
#if H2POOL_HAVE_BROTLI
  codings.push_back({"br", brotli(body)});
#endif
#if H2POOL_HAVE_ZSTD
  codings.push_back({"zstd", zstd(body)});
#endif
  std::printf("decoding %zu MiB of log-like text in 16 KiB pieces (h2pool "
              "accept-encoding: %s)\n\n",
              mib, h2pool_supported_encodings());
  std::printf("| coding | encoded bytes | ratio | decode ms | decoded MB/s "
              "| peak RSS growth |\n|---|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);
  int rc = 0;
  for (const Coding &c : codings) {
    pid_t pid = fork();
    if (pid == 0) {
      int r = run(c.name, c.wire, body.size());
      std::fflush(stdout);
      _exit(r);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      rc = 1;
  }
  return rc;
}
