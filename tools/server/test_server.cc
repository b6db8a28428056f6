// The scriptable HTTP/2 test server: one libevent loop thread, one
// nghttp2 server session per accepted TCP connection (h2c, prior knowledge).
#include "test_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#if H2POOL_SERVER_HAVE_BROTLI
#include <brotli/encode.h>
#endif
#if H2POOL_SERVER_HAVE_ZSTD
#include <zstd.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace h2pool_testing {
namespace {

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
constexpr std::string_view kDefaultBody = "hello from h2pool test server\n";
// nghttp2 hands out DATA lazily; refilling the socket buffer only once it
// drops below this bounds memory for 64 MiB bodies to a peer with a huge
// flow-control window.
constexpr size_t kOutputHighWater = 1 << 20;
// ce=: the most encoded bytes buffered for one response, and the chunk size
// sources are fed to zlib in.
constexpr size_t kMaxEncodedBody = size_t{64} << 20;
constexpr size_t kDeflateChunk = size_t{64} << 10;
constexpr size_t kMaxCodings = 16;

// Owning handles for every C resource, so each error path frees what it made.
struct EventBaseDeleter {
  void operator()(event_base *p) const { event_base_free(p); }
};
struct ListenerDeleter {
  void operator()(evconnlistener *p) const { evconnlistener_free(p); }
};
struct BufferEventDeleter {
  void operator()(bufferevent *p) const { bufferevent_free(p); }
};
struct EventDeleter {
  void operator()(event *p) const { event_free(p); }
};
struct SessionDeleter {
  void operator()(nghttp2_session *p) const { nghttp2_session_del(p); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks *p) const {
    nghttp2_session_callbacks_del(p);
  }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using ListenerPtr = std::unique_ptr<evconnlistener, ListenerDeleter>;
using BufferEventPtr = std::unique_ptr<bufferevent, BufferEventDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;
using CallbacksPtr =
    std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter>;
struct SslCtxDeleter {
  void operator()(SSL_CTX *p) const { SSL_CTX_free(p); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

uint64_t splitmix64(uint64_t x) {
  x += kGamma;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void store_le64(uint8_t *out, uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(out, &v, 8);
  } else {
    for (int j = 0; j < 8; ++j) {
      out[j] = static_cast<uint8_t>(v >> (8 * j));
    }
  }
}

// ---------------------------------------------------------------------------
// Request scripting

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Only %XX is decoded: '+' stays '+', because header values in the query
// (header=x:a+b) are more common here than form-encoded spaces.
std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 &&
        hex_value(in[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

template <typename T> bool parse_number(std::string_view s, T &out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

enum class Fault {
  none,
  rst,
  refuse,
  drop_close,
  drop_reset,
  drop_midframe,
  stall
};

// ce=: one step of the encoding chain.
enum class Coding { identity, gzip, zlib, raw, br, zstd };
enum class Corrupt { none, header, crc, truncate, trailing };

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return s;
}

// Parses a ce= list into codings and the content-encoding to announce (the
// list as given, each deflate-raw written deflate). Returns false if a
// coding is unknown or the list is empty or too long.
bool parse_codings(std::string_view value, std::vector<Coding> &out,
                   std::string &announce) {
  out.clear();
  announce.clear();
  while (true) {
    auto comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    std::string_view token = trim(item);
    size_t lead = static_cast<size_t>(token.data() - item.data());
    std::string written(token);
    if (token == "gzip" || token == "x-gzip") {
      out.push_back(Coding::gzip);
    } else if (token == "deflate") {
      out.push_back(Coding::zlib);
    } else if (token == "deflate-raw") {
      out.push_back(Coding::raw);
      written = "deflate";
    } else if (token == "identity") {
      out.push_back(Coding::identity);
#if H2POOL_SERVER_HAVE_BROTLI
    } else if (token == "br") {
      out.push_back(Coding::br);
#endif
#if H2POOL_SERVER_HAVE_ZSTD
    } else if (token == "zstd") {
      out.push_back(Coding::zstd);
#endif
    } else {
      return false;
    }
    announce.append(item.substr(0, lead));
    announce.append(written);
    announce.append(item.substr(lead + token.size()));
    if (comma == std::string_view::npos) {
      break;
    }
    announce.push_back(',');
    value = value.substr(comma + 1);
  }
  return !out.empty() && out.size() <= kMaxCodings;
}

// Compresses what `next` produces (it fills up to the given room and returns
// how much it wrote; 0 = end) with one coding, appending to `out`. Returns
// false when zlib fails or `out` would exceed kMaxEncodedBody.
bool deflate_into(Coding coding,
                  const std::function<size_t(uint8_t *, size_t)> &next,
                  std::string &out) {
  if (coding == Coding::identity) {
    std::vector<uint8_t> chunk(kDeflateChunk);
    while (size_t n = next(chunk.data(), chunk.size())) {
      if (out.size() + n > kMaxEncodedBody) {
        return false;
      }
      out.append(reinterpret_cast<const char *>(chunk.data()), n);
    }
    return true;
  }
  z_stream z{};
  int window_bits = coding == Coding::gzip   ? 15 + 16
                    : coding == Coding::zlib ? 15
                                             : -15;
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return false;
  }
  std::vector<uint8_t> in(kDeflateChunk);
  std::vector<uint8_t> buf(kDeflateChunk);
  bool ok = true;
  int flush = Z_NO_FLUSH;
  while (ok) {
    if (z.avail_in == 0 && flush == Z_NO_FLUSH) {
      size_t n = next(in.data(), in.size());
      z.next_in = in.data();
      z.avail_in = static_cast<uInt>(n);
      if (n == 0) {
        flush = Z_FINISH;
      }
    }
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    int rc = deflate(&z, flush);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      ok = false;
      break;
    }
    size_t produced = buf.size() - z.avail_out;
    if (out.size() + produced > kMaxEncodedBody) {
      ok = false;
      break;
    }
    out.append(reinterpret_cast<const char *>(buf.data()), produced);
    if (rc == Z_STREAM_END) {
      break;
    }
  }
  deflateEnd(&z);
  return ok;
}

#if H2POOL_SERVER_HAVE_BROTLI
// As deflate_into(), with brotli at quality 5 (its speed/ratio middle).
bool br_into(const std::function<size_t(uint8_t *, size_t)> &next,
             std::string &out) {
  std::unique_ptr<BrotliEncoderState, void (*)(BrotliEncoderState *)> enc(
      BrotliEncoderCreateInstance(nullptr, nullptr, nullptr),
      BrotliEncoderDestroyInstance);
  if (!enc || !BrotliEncoderSetParameter(enc.get(), BROTLI_PARAM_QUALITY, 5)) {
    return false;
  }
  std::vector<uint8_t> in(kDeflateChunk);
  std::vector<uint8_t> buf(kDeflateChunk);
  size_t avail_in = 0;
  const uint8_t *next_in = in.data();
  BrotliEncoderOperation op = BROTLI_OPERATION_PROCESS;
  for (;;) {
    if (avail_in == 0 && op == BROTLI_OPERATION_PROCESS) {
      avail_in = next(in.data(), in.size());
      next_in = in.data();
      if (avail_in == 0) {
        op = BROTLI_OPERATION_FINISH;
      }
    }
    size_t avail_out = buf.size();
    uint8_t *next_out = buf.data();
    if (!BrotliEncoderCompressStream(enc.get(), op, &avail_in, &next_in,
                                     &avail_out, &next_out, nullptr)) {
      return false;
    }
    size_t produced = buf.size() - avail_out;
    if (out.size() + produced > kMaxEncodedBody) {
      return false;
    }
    out.append(reinterpret_cast<const char *>(buf.data()), produced);
    if (op == BROTLI_OPERATION_FINISH && BrotliEncoderIsFinished(enc.get())) {
      return true;
    }
  }
}
#endif

#if H2POOL_SERVER_HAVE_ZSTD
// As deflate_into(), with zstd at level 3 and a checksum; window_log 0 keeps
// the level's window, another value forces it (zstd_wlog=).
bool zstd_into(const std::function<size_t(uint8_t *, size_t)> &next,
               int window_log, std::string &out) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx *)> cctx(ZSTD_createCCtx(),
                                                           ZSTD_freeCCtx);
  if (!cctx ||
      ZSTD_isError(
          ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3)) ||
      ZSTD_isError(
          ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1)) ||
      (window_log != 0 && ZSTD_isError(ZSTD_CCtx_setParameter(
                              cctx.get(), ZSTD_c_windowLog, window_log)))) {
    return false;
  }
  std::vector<uint8_t> in(kDeflateChunk);
  std::vector<uint8_t> buf(kDeflateChunk);
  ZSTD_inBuffer ib{in.data(), 0, 0};
  ZSTD_EndDirective mode = ZSTD_e_continue;
  for (;;) {
    if (ib.pos == ib.size && mode == ZSTD_e_continue) {
      ib.size = next(in.data(), in.size());
      ib.pos = 0;
      if (ib.size == 0) {
        mode = ZSTD_e_end;
      }
    }
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    size_t left = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
    if (ZSTD_isError(left) || out.size() + ob.pos > kMaxEncodedBody) {
      return false;
    }
    out.append(reinterpret_cast<const char *>(buf.data()), ob.pos);
    if (mode == ZSTD_e_end && left == 0) {
      return true;
    }
  }
}
#endif

struct Script {
  bool echo = false;
  int status = 200;
  bool has_size = false;
  uint64_t size = 0;
  uint64_t seed = 0;
  uint64_t delay_ms = 0;
  std::vector<std::pair<std::string, std::string>> extra_headers;
  // Fault injection (see the header comment).
  int64_t goaway_code = -1; // -1: no GOAWAY
  int64_t goaway_last = -1;
  std::string goaway_debug;
  bool goaway_graceful = false;
  uint64_t goaway_grace_ms = 100;
  Fault fault = Fault::none;
  uint32_t rst_code = 0;
  double refuse = 0;
  bool fault_before = false;
  uint64_t fault_after = 0;
  uint64_t fault_conn = 0;
  uint64_t fault_times = 0;
  uint64_t fault_delay_ms = 0;
  bool has_cl = false;
  uint64_t cl = 0;
  uint64_t hdr_count = 0;
  uint64_t hdr_size = 16;
  int64_t settings_mcs = -1;
  // Bodies, encodings, trailers and interim responses.
  bool has_zeros = false;
  uint64_t zeros = 0;
  std::vector<std::string> echo_headers;
  std::vector<Coding> codings;
  std::string ce_announce; // content-encoding to send ("" = none)
  bool has_ce = false;
  Corrupt corrupt = Corrupt::none;
  int zstd_window_log = 0; // zstd_wlog=; 0: the level's
  std::string ce_unknown;
  std::vector<std::pair<std::string, std::string>> trailers;
  std::vector<int> early;
  // Set when the query could not be understood; the response is then a 400
  // naming the parameter, so a typo in a test fails loudly.
  std::string error;
};

Script parse_script(std::string_view path) {
  Script script;
  auto qpos = path.find('?');
  std::string_view route = path.substr(0, qpos);
  script.echo = route == "/echo";
  if (qpos == std::string_view::npos) {
    return script;
  }
  std::string_view query = path.substr(qpos + 1);
  // A fragment never reaches a server, but be lenient if a client sends one.
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    if (param.empty()) {
      continue;
    }
    auto eq = param.find('=');
    std::string key = percent_decode(param.substr(0, eq));
    std::string value = eq == std::string_view::npos
                            ? std::string()
                            : percent_decode(param.substr(eq + 1));
    bool ok = true;
    if (key == "status") {
      // Only final statuses: a 1xx here would be an interim response with
      // no final one, which is a different test than this server offers.
      ok = parse_number(value, script.status) && script.status >= 200 &&
           script.status <= 599;
    } else if (key == "size") {
      ok = parse_number(value, script.size);
      script.has_size = ok;
    } else if (key == "seed") {
      ok = parse_number(value, script.seed);
    } else if (key == "delay_ms") {
      ok = parse_number(value, script.delay_ms);
    } else if (key == "goaway") {
      uint32_t code = 0;
      ok = parse_number(value, code);
      script.goaway_code = code;
    } else if (key == "goaway_last") {
      ok = parse_number(value, script.goaway_last) &&
           script.goaway_last >= -1 && script.goaway_last <= 0x7fffffff;
    } else if (key == "goaway_debug") {
      script.goaway_debug = value;
    } else if (key == "goaway_graceful") {
      script.goaway_graceful = value == "1";
    } else if (key == "goaway_grace_ms") {
      ok = parse_number(value, script.goaway_grace_ms);
    } else if (key == "rst") {
      ok = parse_number(value, script.rst_code);
      script.fault = Fault::rst;
    } else if (key == "refuse") {
      char *end = nullptr;
      script.refuse = std::strtod(value.c_str(), &end);
      ok = !value.empty() && end == value.c_str() + value.size() &&
           script.refuse >= 0 && script.refuse <= 1;
    } else if (key == "drop") {
      ok = value == "close" || value == "reset" || value == "midframe";
      script.fault = value == "close"   ? Fault::drop_close
                     : value == "reset" ? Fault::drop_reset
                                        : Fault::drop_midframe;
    } else if (key == "stall") {
      ok = value == "1";
      script.fault = Fault::stall;
    } else if (key == "fault_at") {
      script.fault_before = value == "before";
      ok = script.fault_before || parse_number(value, script.fault_after);
    } else if (key == "fault_conn") {
      ok = parse_number(value, script.fault_conn);
    } else if (key == "fault_delay_ms") {
      ok = parse_number(value, script.fault_delay_ms);
    } else if (key == "fault_times") {
      ok = parse_number(value, script.fault_times);
    } else if (key == "cl") {
      ok = parse_number(value, script.cl);
      script.has_cl = ok;
    } else if (key == "hdr_count") {
      ok = parse_number(value, script.hdr_count) && script.hdr_count <= 100000;
    } else if (key == "hdr_size") {
      ok =
          parse_number(value, script.hdr_size) && script.hdr_size <= (1u << 20);
    } else if (key == "settings_mcs") {
      uint32_t n = 0;
      ok = parse_number(value, n);
      script.settings_mcs = n;
    } else if (key == "zeros") {
      ok = parse_number(value, script.zeros);
      script.has_zeros = ok;
    } else if (key == "echo_header") {
      ok = !value.empty();
      script.echo_headers.push_back(lower(value));
    } else if (key == "ce") {
      ok = parse_codings(value, script.codings, script.ce_announce);
      script.has_ce = ok;
    } else if (key == "ce_corrupt") {
      ok = true;
      if (value == "header") {
        script.corrupt = Corrupt::header;
      } else if (value == "crc") {
        script.corrupt = Corrupt::crc;
      } else if (value == "truncate") {
        script.corrupt = Corrupt::truncate;
      } else if (value == "trailing") {
        script.corrupt = Corrupt::trailing;
      } else {
        ok = false;
      }
    } else if (key == "zstd_wlog") {
      uint32_t n = 0;
      ok = parse_number(value, n) && n >= 10 && n <= 30;
      script.zstd_window_log = static_cast<int>(n);
    } else if (key == "ce_unknown") {
      ok = !trim(value).empty() && value.find(',') == std::string::npos;
      script.ce_unknown = std::string(trim(value));
    } else if (key == "trailer") {
      auto colon = value.find(':');
      ok = colon != std::string::npos && colon > 0;
      if (ok) {
        script.trailers.emplace_back(lower(value.substr(0, colon)),
                                     value.substr(colon + 1));
      }
    } else if (key == "early") {
      int code = 0;
      ok = parse_number(value, code) && code >= 100 && code <= 199 &&
           code != 101 && script.early.size() < 100;
      script.early.push_back(code);
    } else if (key == "header") {
      auto colon = value.find(':');
      ok = colon != std::string::npos && colon > 0;
      if (ok) {
        std::string name = value.substr(0, colon);
        // HTTP/2 forbids upper-case field names (RFC 9113 8.2.1); a client
        // would reset the stream, which is never what "header=X-Foo:1" means.
        std::transform(name.begin(), name.end(), name.begin(), [](char c) {
          return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        });
        script.extra_headers.emplace_back(std::move(name),
                                          value.substr(colon + 1));
      }
    }
    if (!ok) {
      script.error = "bad query parameter: " + key + "\n";
      return script;
    }
  }
  if (script.corrupt != Corrupt::none && !script.has_ce) {
    script.error = "bad query parameter: ce_corrupt (needs ce)\n";
  }
  return script;
}

// ---------------------------------------------------------------------------
// Server objects

class Server;
class ServerConnection;

// One request/response exchange. Owned by its connection, freed when nghttp2
// closes the stream (or with the connection), which also cancels its timer.
struct ServerStream {
  ServerStream(ServerConnection *conn, int32_t stream_id)
      : conn_(conn), stream_id_(stream_id) {}

  // Fills `buf` with the next response bytes for the data provider, or
  // returns NGHTTP2_ERR_DEFERRED where a scripted fault strikes.
  ssize_t read_body(uint8_t *buf, size_t length, uint32_t *data_flags);
  // The fault strikes after the headers and fault_limit_ body bytes.
  uint64_t fault_limit() const {
    return std::min(script_.fault_after, body_size_);
  }

  ServerConnection *conn_;
  int32_t stream_id_;
  RecordedRequest request_;
  bool keep_body_ = false;
  bool had_body_ = false;
  uint64_t body_length_ = 0;
  bool handled_ = false;
  // refuse_every picked this stream: RST_STREAM(REFUSED_STREAM) is on its
  // way and the request is never handled.
  bool refused_ = false;
  uint64_t request_number_ = 0;
  Script script_;
  EventPtr delay_timer_;

  // Response body: either generated (test_body, or zeros) or a buffer.
  bool generated_ = false;
  bool zeros_ = false;
  // trailer=: trailers go out once the body has (and end the stream).
  bool send_trailers_ = false;
  // early=: interim HEADERS frames submitted but not yet sent; they do not
  // count as "the response headers" for fault_at.
  size_t interim_unsent_ = 0;
  std::string body_buffer_;
  uint64_t body_size_ = 0;
  uint64_t body_offset_ = 0;
  // A fault scripted after the headers; struck once its point is reached
  // (a stall stays pending forever).
  bool fault_pending_ = false;
  bool fault_struck_ = false;
  // fault_delay_ms: the fault waits on this timer once its point is reached.
  bool fault_delayed_ = false;
  EventPtr fault_timer_;

  // ServerOptions::extended_connect: this stream is an echo tunnel. The
  // client's bytes wait in tunnel_buffer_ (from tunnel_pos_) until the data
  // provider sends them back; tunnel_eof_ once the client ended its side.
  ssize_t read_tunnel(uint8_t *buf, size_t length, uint32_t *data_flags);
  bool tunnel_ = false;
  bool tunnel_eof_ = false;
  std::string tunnel_buffer_;
  size_t tunnel_pos_ = 0;
};

class ServerConnection {
public:
  ServerConnection(Server *server, uint64_t id, BufferEventPtr bev)
      : server_(server), id_(id), bev_(std::move(bev)) {}
  ~ServerConnection() {
    // The session first: nghttp2_session_del calls no callbacks, and after it
    // no data provider can point into a freed stream.
    session_.reset();
    streams_.clear();
  }

  // What on_read, on_write and send() do; every phase but serving is a
  // scripted or fatal end of the connection.
  enum class Phase {
    // The nghttp2 session reads and writes.
    serving,
    // A fatal protocol error from the client: stop reading, flush the
    // session's GOAWAY, then close.
    closing,
    // Nothing more is produced; once what is queued is written, finish_
    // happens (FIN, then discarding; or TCP RST).
    finishing,
    // Nothing more is produced; everything read is discarded until the
    // client closes (send_settings=false from the start; after a scripted
    // protocol error or FIN).
    discarding,
  };
  enum class Finish { fin, rst };

  // Creates the session, queues our SETTINGS and flushes, then runs the
  // after_settings script. Returns 0 or -1.
  int start();
  // ConnectionScript::after_settings, once the SETTINGS is queued.
  int run_after_settings();
  // Enters Phase::finishing; acts at once if nothing is queued.
  int finish_after_flush(Finish how);
  // Everything queued is written: FIN or RST. Returns -1 to close now.
  int finish();
  // Returns -1 when the connection should be closed now.
  int on_read();
  int on_write();
  // Serialises what nghttp2 has queued into the bufferevent. Returns -1 when
  // the connection is finished or broken.
  int send();

  ServerStream *create_stream(int32_t stream_id);
  void close_stream(int32_t stream_id);
  // The request on `stream` is complete: record it, then respond now or
  // after its delay.
  int handle_request(ServerStream *stream);
  void respond(ServerStream *stream);
  // ce=: replaces the stream's body by its encoding (and ce_corrupt=
  // damage), buffered. Returns false if it failed or grew over 64 MiB.
  bool encode_body(ServerStream *stream);
  void on_delay_expired(ServerStream *stream);
  // Decides which faults apply to this request (fault_conn, fault_times,
  // refuse=P, chaos) and rewrites its script accordingly.
  void choose_faults(ServerStream *stream);
  // Sends GOAWAY now, or its first step when graceful. `last` -1: the
  // stream `current` (abrupt) or the last processed stream (graceful).
  void start_goaway(uint32_t code, int64_t last, const std::string &debug,
                    bool graceful, uint64_t grace_ms, int32_t current);
  void on_goaway_grace_expired();
  // A scripted fault strikes `stream` now (after its headers/body bytes).
  void strike(ServerStream *stream);
  // Runs after the frame went out; see on_frame_send.
  void on_frame_sent(const nghttp2_frame *frame);
  void on_begin_frame(const nghttp2_frame_hd *hd);
  void on_control_frame(const nghttp2_frame *frame);
  // A request's HEADERS arrived: refuse_every and read_pause_ms. Returns
  // whether the stream was refused.
  bool on_request_headers(ServerStream *stream);
  // ServerOptions::origin_frame: queues the ORIGIN frame. Returns 0 or -1.
  int submit_origin_frame();
  // ServerOptions::misdirect_host: whether `stream` gets a 421 here.
  bool misdirected(const ServerStream *stream) const;
  // read_pause_ms: stop reading the socket now, resume on a timer.
  void begin_read_pause();
  void on_read_pause_expired();
  // ServerOptions::extended_connect: whether `stream` (its request HEADERS
  // just arrived) is an extended CONNECT, which is then answered at once:
  // opened as an echo tunnel (recorded, 200), or, when its path has
  // status=N for a non-2xx N, with that ordinary scripted response.
  bool open_tunnel(ServerStream *stream);
  // Bytes of an open tunnel arrived, or (`eof`) the client's END_STREAM:
  // queued for echoing.
  void feed_tunnel(ServerStream *stream, const uint8_t *data, size_t len,
                   bool eof);

  Server *server_;
  uint64_t id_;
  BufferEventPtr bev_;
  std::unordered_map<int32_t, std::unique_ptr<ServerStream>> streams_;
  SessionPtr session_;
  uint32_t open_streams_ = 0;
  Phase phase_ = Phase::serving;
  Finish finish_ = Finish::fin;
  // read_pause_ms: a request arrived during this read; pause after it.
  bool pause_pending_ = false;
  EventPtr read_pause_timer_;

  ConnectionScript script_;
  uint64_t requests_seen_ = 0;
  // GOAWAY scripting: the last_stream_id once the final GOAWAY is
  // submitted; streams above it are never answered.
  bool goaway_started_ = false;
  int64_t goaway_last_ = INT64_MAX;
  uint32_t goaway_code_ = 0;
  int64_t goaway_final_last_ = -1;
  std::string goaway_debug_;
  EventPtr goaway_timer_;
  // drop=: flush what is queued, then close (FIN) or abort (RST); or cut a
  // frame header short, then FIN (midframe).
  Fault drop_ = Fault::none;
  // settings_mcs=: SETTINGS frames sent / ACKs received, and which one
  // lowered MAX_CONCURRENT_STREAMS.
  uint64_t settings_sent_ = 0;
  uint64_t settings_acked_ = 0;
  uint64_t lowered_seq_ = 0;
  bool lowered_acked_ = false;
  int32_t last_client_stream_ = 0;
};

class Server {
public:
  explicit Server(ServerOptions options) : options_(std::move(options)) {}
  ~Server() { stop(); }

  int start();
  void stop();

  uint16_t port() const { return port_.load(std::memory_order_acquire); }
  std::string base_url() const {
    if (!options_.unix_socket.empty())
      return "http://localhost";
    bool v6 = options_.host.find(':') != std::string::npos;
    return (options_.tls_cert_file.empty() ? "http://" : "https://") +
           (v6 ? "[" + options_.host + "]" : options_.host) + ":" +
           std::to_string(port());
  }
  ServerStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {records_.begin(), records_.end()};
  }
  bool wait_for_stats(const std::function<bool(const ServerStats &)> &pred,
                      std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(stats_); });
  }

  // Loop thread only.
  void on_accept(evutil_socket_t fd);
  // ServerOptions::tls_cert_file: the context every connection's TLS
  // comes from. Returns 0 or a negative errno value.
  int make_tls_context();
  // A bufferevent for an accepted socket: plain, or TLS (accepting).
  BufferEventPtr make_bufferevent(evutil_socket_t fd);
  void close_connection(ServerConnection *conn);
  void on_wake();
  event_base *base() const { return base_.get(); }
  const ServerOptions &options() const { return options_; }
  const nghttp2_session_callbacks *callbacks() const {
    return callbacks_.get();
  }

  // Stats updates, from the loop thread; each wakes wait_for_stats().
  template <typename F> void update_stats(F &&f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      f(stats_);
    }
    cv_.notify_all();
  }
  uint64_t count_request();
  void record(RecordedRequest request);
  void record_reset(ClientReset reset) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Bounded like the request records; the count is always exact.
      if (resets_.size() < options_.record_limit) {
        resets_.push_back(reset);
      }
      ++stats_.client_resets;
    }
    cv_.notify_all();
  }
  std::vector<ClientReset> client_resets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return resets_;
  }
  // Loop thread only: a uniform draw in [0, 1) from the seeded RNG.
  double draw() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  uint64_t draw_below(uint64_t n) {
    return n ? std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_) : 0;
  }
  // Loop thread only: how many requests with this path have arrived.
  uint64_t count_path(const std::string &path) { return ++path_counts_[path]; }
  // Loop thread only: the 1-based arrival number of a new request stream,
  // across all connections (refuse_every).
  uint64_t count_stream() { return ++streams_arrived_; }

private:
  void free_loop_objects();

  const ServerOptions options_;
  std::atomic<uint16_t> port_{0};
  uint64_t next_connection_id_ = 1;

  CallbacksPtr callbacks_;
  SslCtxPtr tls_;
  EventBasePtr base_;
  ListenerPtr listener_;
  Fd wake_read_;
  Fd wake_write_;
  EventPtr wake_event_;
  std::unordered_map<ServerConnection *, std::unique_ptr<ServerConnection>>
      connections_;
  std::thread thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  ServerStats stats_;
  std::deque<RecordedRequest> records_;
  std::vector<ClientReset> resets_;
  std::mt19937_64 rng_{options_.seed};
  std::unordered_map<std::string, uint64_t> path_counts_;
  uint64_t streams_arrived_ = 0;
};

// ---------------------------------------------------------------------------
// nghttp2 callbacks

int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                     void *user_data) {
  auto conn = static_cast<ServerConnection *>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  try {
    auto stream = conn->create_stream(frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream);
  } catch (...) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

int on_header(nghttp2_session *session, const nghttp2_frame *frame,
              const uint8_t *name, size_t namelen, const uint8_t *value,
              size_t valuelen, uint8_t flags, void *user_data) {
  auto conn = static_cast<ServerConnection *>(user_data);
  (void)conn;
  (void)flags;
  // Request trailers (NGHTTP2_HCAT_HEADERS) are recorded with the headers,
  // so echo_header= reports them too (the response starts after them).
  if (frame->hd.type != NGHTTP2_HEADERS ||
      (frame->headers.cat != NGHTTP2_HCAT_REQUEST &&
       frame->headers.cat != NGHTTP2_HCAT_HEADERS)) {
    return 0;
  }
  auto stream = static_cast<ServerStream *>(
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!stream) {
    return 0;
  }
  std::string_view n(reinterpret_cast<const char *>(name), namelen);
  std::string_view v(reinterpret_cast<const char *>(value), valuelen);
  try {
    RecordedRequest &req = stream->request_;
    if (n == ":method") {
      req.method = v;
    } else if (n == ":scheme") {
      req.scheme = v;
    } else if (n == ":authority") {
      req.authority = v;
    } else if (n == ":path") {
      req.path = v;
    } else if (n == ":protocol") {
      req.protocol = v;
    } else if (!n.empty() && n[0] != ':') {
      req.headers.emplace_back(n, v);
    }
  } catch (...) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

int on_data_chunk_recv(nghttp2_session *session, uint8_t flags,
                       int32_t stream_id, const uint8_t *data, size_t len,
                       void *user_data) {
  auto conn = static_cast<ServerConnection *>(user_data);
  (void)conn;
  (void)flags;
  auto stream = static_cast<ServerStream *>(
      nghttp2_session_get_stream_user_data(session, stream_id));
  if (!stream) {
    return 0;
  }
  if (stream->tunnel_) {
    try {
      conn->feed_tunnel(stream, data, len, false);
    } catch (...) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }
  stream->body_length_ += len;
  if (stream->keep_body_) {
    try {
      stream->request_.body.append(reinterpret_cast<const char *>(data), len);
    } catch (...) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                  void *user_data) {
  auto conn = static_cast<ServerConnection *>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
    conn->on_control_frame(frame);
    return 0;
  }
  auto stream = static_cast<ServerStream *>(
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!stream) {
    return 0;
  }
  if (stream->refused_) {
    // Whatever still arrives before nghttp2 closes the stream is dropped.
    return 0;
  }
  bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (stream->tunnel_) {
    if (end_stream) {
      conn->feed_tunnel(stream, nullptr, 0, true);
    }
    return 0;
  }
  if (frame->hd.type == NGHTTP2_DATA) {
    stream->had_body_ = true;
  } else if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (conn->on_request_headers(stream)) {
      return 0;
    }
    try {
      if (conn->open_tunnel(stream)) {
        if (end_stream) {
          conn->feed_tunnel(stream, nullptr, 0, true);
        }
        return 0;
      }
    } catch (...) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    // The path is known before any DATA, so decide here whether to keep the
    // body: echo needs it whatever the recording options say.
    stream->keep_body_ =
        conn->server_->options().record_bodies ||
        std::string_view(stream->request_.path)
                .substr(0, stream->request_.path.find('?')) == "/echo";
  }
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !stream->handled_) {
    try {
      return conn->handle_request(stream);
    } catch (...) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
                  void *user_data) {
  auto conn = static_cast<ServerConnection *>(user_data);
  (void)session;
  // A server only ends its side of a stream with the last frame of a
  // response, so END_STREAM going out means that response is fully sent.
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    conn->server_->update_stats([](ServerStats &s) { ++s.responses; });
  }
  conn->on_frame_sent(frame);
  return 0;
}

int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd,
                   void *user_data) {
  (void)session;
  static_cast<ServerConnection *>(user_data)->on_begin_frame(hd);
  return 0;
}

void on_fault_timer(evutil_socket_t fd, short events, void *ptr) {
  (void)fd;
  (void)events;
  auto stream = static_cast<ServerStream *>(ptr);
  ServerConnection *conn = stream->conn_;
  conn->strike(stream);
  // send() may free the stream (and this timer) or the connection.
  if (conn->send() != 0) {
    conn->server_->close_connection(conn);
  }
}

void on_goaway_timer(evutil_socket_t fd, short events, void *ptr) {
  (void)fd;
  (void)events;
  static_cast<ServerConnection *>(ptr)->on_goaway_grace_expired();
}

void on_read_pause_timer(evutil_socket_t fd, short events, void *ptr) {
  (void)fd;
  (void)events;
  static_cast<ServerConnection *>(ptr)->on_read_pause_expired();
}

int on_stream_close(nghttp2_session *session, int32_t stream_id,
                    uint32_t error_code, void *user_data) {
  auto conn = static_cast<ServerConnection *>(user_data);
  (void)session;
  (void)error_code;
  conn->close_stream(stream_id);
  return 0;
}

ssize_t read_response_body(nghttp2_session *session, int32_t stream_id,
                           uint8_t *buf, size_t length, uint32_t *data_flags,
                           nghttp2_data_source *source, void *user_data) {
  auto stream = static_cast<ServerStream *>(source->ptr);
  (void)session;
  (void)stream_id;
  (void)user_data;
  if (stream->tunnel_) {
    return stream->read_tunnel(buf, length, data_flags);
  }
  return stream->read_body(buf, length, data_flags);
}

CallbacksPtr make_callbacks() {
  nghttp2_session_callbacks *raw = nullptr;
  if (nghttp2_session_callbacks_new(&raw) != 0) {
    return nullptr;
  }
  CallbacksPtr cbs(raw);
  nghttp2_session_callbacks_set_on_begin_headers_callback(raw,
                                                          on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(raw, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw,
                                                            on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_recv_callback(raw, on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(raw, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(raw, on_stream_close);
  nghttp2_session_callbacks_set_on_begin_frame_callback(raw, on_begin_frame);
  return cbs;
}

// ---------------------------------------------------------------------------
// libevent callbacks

void on_bev_read(bufferevent *bev, void *ptr) {
  auto conn = static_cast<ServerConnection *>(ptr);
  (void)bev;
  if (conn->on_read() != 0) {
    conn->server_->close_connection(conn);
  }
}

void on_bev_write(bufferevent *bev, void *ptr) {
  auto conn = static_cast<ServerConnection *>(ptr);
  (void)bev;
  if (conn->on_write() != 0) {
    conn->server_->close_connection(conn);
  }
}

void on_bev_event(bufferevent *bev, short events, void *ptr) {
  auto conn = static_cast<ServerConnection *>(ptr);
  (void)bev;
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    conn->server_->close_connection(conn);
  }
}

void on_delay_timer(evutil_socket_t fd, short events, void *ptr) {
  auto stream = static_cast<ServerStream *>(ptr);
  (void)fd;
  (void)events;
  // May free `stream` (and this timer) or the whole connection.
  stream->conn_->on_delay_expired(stream);
}

void on_listener_accept(evconnlistener *listener, evutil_socket_t fd,
                        sockaddr *addr, int addrlen, void *ptr) {
  auto server = static_cast<Server *>(ptr);
  (void)listener;
  (void)addr;
  (void)addrlen;
  server->on_accept(fd);
}

void on_listener_error(evconnlistener *listener, void *ptr) {
  // EMFILE and friends: drop this accept and keep listening; the client sees
  // a refused or stalled connect, which is what its test is about anyway.
  (void)listener;
  (void)ptr;
}

void on_wake_event(evutil_socket_t fd, short events, void *ptr) {
  auto server = static_cast<Server *>(ptr);
  (void)fd;
  (void)events;
  server->on_wake();
}

// ---------------------------------------------------------------------------
// ServerStream

ssize_t ServerStream::read_body(uint8_t *buf, size_t length,
                                uint32_t *data_flags) {
  uint64_t end = fault_pending_ ? fault_limit() : body_size_;
  if (fault_pending_ && body_offset_ >= end) {
    // The fault strikes once the bytes before it are out (on_frame_sent);
    // until then, and for a stall forever, nothing more is sent.
    return NGHTTP2_ERR_DEFERRED;
  }
  uint64_t left = end - body_offset_;
  size_t n = static_cast<size_t>(std::min<uint64_t>(left, length));
  if (generated_ && zeros_) {
    std::memset(buf, 0, n);
  } else if (generated_) {
    fill_test_body(script_.seed, body_offset_, n, buf);
  } else if (n > 0) {
    std::memcpy(buf, body_buffer_.data() + body_offset_, n);
  }
  body_offset_ += n;
  if (body_offset_ == body_size_ && !fault_pending_) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (send_trailers_) {
      // The trailers' HEADERS frame ends the stream instead.
      std::vector<nghttp2_nv> nva;
      for (const auto &[name, value] : script_.trailers) {
        nva.push_back(
            {reinterpret_cast<uint8_t *>(const_cast<char *>(name.data())),
             reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
             name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
      }
      if (nghttp2_submit_trailer(conn_->session_.get(), stream_id_, nva.data(),
                                 nva.size()) == 0) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
      send_trailers_ = false;
    }
  }
  return static_cast<ssize_t>(n);
}

ssize_t ServerStream::read_tunnel(uint8_t *buf, size_t length,
                                  uint32_t *data_flags) {
  size_t n = std::min(length, tunnel_buffer_.size() - tunnel_pos_);
  if (n == 0) {
    if (tunnel_eof_) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    return NGHTTP2_ERR_DEFERRED; // feed_tunnel resumes it
  }
  std::memcpy(buf, tunnel_buffer_.data() + tunnel_pos_, n);
  tunnel_pos_ += n;
  if (tunnel_pos_ == tunnel_buffer_.size()) {
    tunnel_buffer_.clear();
    tunnel_pos_ = 0;
    if (tunnel_eof_) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
  }
  conn_->server_->update_stats(
      [n](ServerStats &s) { s.tunnel_bytes_echoed += n; });
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------------------
// ServerConnection

int ServerConnection::start() {
  const ServerOptions &options = server_->options();
  script_ = options.connection_script ? options.connection_script(id_)
                                      : options.connection;
  if (!script_.send_settings) {
    phase_ = Phase::discarding;
    return 0;
  }
  nghttp2_option *opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    return -1;
  }
  if (script_.ignore_ping) {
    nghttp2_option_set_no_auto_ping_ack(opt, 1);
  }
  // hdr_count/hdr_size must be able to exceed a client's limits; nghttp2
  // refuses to send header blocks over 64 KiB by default.
  nghttp2_option_set_max_send_header_block_length(opt, 64u << 20);
  if (options.rfc9218) {
    // nghttp2 applies a client's PRIORITY_UPDATE only when asked to parse
    // the frame; the priority header it reads by itself.
    nghttp2_option_set_builtin_recv_extension_type(opt,
                                                   NGHTTP2_PRIORITY_UPDATE);
  }
  nghttp2_session *raw = nullptr;
  int rv = nghttp2_session_server_new2(&raw, server_->callbacks(), this, opt);
  nghttp2_option_del(opt);
  if (rv != 0) {
    return -1;
  }
  session_.reset(raw);
  settings_sent_ = 1;
  nghttp2_settings_entry iv[4];
  size_t niv = 0;
  if (script_.settings_mcs_initial) {
    iv[niv++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                 *script_.settings_mcs_initial};
  } else if (options.max_concurrent_streams != 0) {
    iv[niv++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                 options.max_concurrent_streams};
  }
  if (script_.initial_window_size) {
    iv[niv++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                 *script_.initial_window_size};
  }
  if (options.rfc9218) {
    // RFC 9218 section 2.1; with it, nghttp2's server session schedules
    // DATA by the urgency and incremental flag of each stream.
    iv[niv++] = {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
  }
  if (options.extended_connect) {
    // RFC 8441 section 3; nghttp2 then accepts :protocol on CONNECT.
    iv[niv++] = {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
  }
  if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, iv, niv) !=
      0) {
    return -1;
  }
  if (script_.initial_window_size &&
      *script_.initial_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    // The stream windows alone would still leave the whole connection at
    // 64 KiB in flight.
    nghttp2_session_set_local_window_size(
        session_.get(), NGHTTP2_FLAG_NONE, 0,
        static_cast<int32_t>(*script_.initial_window_size));
  }
  if (submit_origin_frame() != 0 || send() != 0) {
    return -1;
  }
  return run_after_settings();
}

int ServerConnection::run_after_settings() {
  switch (script_.after_settings) {
  case AfterSettings::none:
    return 0;
  case AfterSettings::goaway: {
    // Submitted after send() put the SETTINGS in the output, so the
    // GOAWAY is the second frame on the wire whatever nghttp2's queue order.
    goaway_started_ = true;
    goaway_last_ = 0;
    const std::string &debug = script_.after_settings_debug;
    if (nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE, 0,
                              script_.after_settings_goaway_code,
                              reinterpret_cast<const uint8_t *>(debug.data()),
                              debug.size()) != 0) {
      return -1;
    }
    int rv = send();
    // nghttp2 would now close the connection (GOAWAY out, no stream) and
    // ignore all input; instead the client decides when it ends.
    phase_ = Phase::discarding;
    return rv;
  }
  case AfterSettings::protocol_error: {
    // Frames nghttp2 refuses to produce, so they bypass the session.
    std::string bad;
    switch (script_.after_settings_protocol_error) {
    case ProtocolErrorKind::settings_ack_with_payload:
      bad = std::string("\x00\x00\x06\x04\x01\x00\x00\x00\x00", 9) +
            std::string("\x00\x03\x00\x00\x00\x64", 6);
      break;
    case ProtocolErrorKind::ping_wrong_length:
      bad = std::string("\x00\x00\x07\x06\x00\x00\x00\x00\x00", 9) +
            std::string(7, '\0');
      break;
    case ProtocolErrorKind::data_on_stream_0:
      bad = std::string("\x00\x00\x05\x00\x00\x00\x00\x00\x00", 9) + "hello";
      break;
    }
    if (bufferevent_write(bev_.get(), bad.data(), bad.size()) != 0) {
      return -1;
    }
    phase_ = Phase::discarding;
    server_->update_stats([](ServerStats &s) { ++s.protocol_errors_sent; });
    return 0;
  }
  case AfterSettings::close:
  case AfterSettings::reset:
    server_->update_stats([](ServerStats &s) { ++s.connections_dropped; });
    return finish_after_flush(script_.after_settings == AfterSettings::close
                                  ? Finish::fin
                                  : Finish::rst);
  }
  return 0;
}

int ServerConnection::finish_after_flush(Finish how) {
  phase_ = Phase::finishing;
  finish_ = how;
  if (evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0) {
    return finish();
  }
  // Otherwise the write callback calls finish() once the output is written.
  return 0;
}

int ServerConnection::finish() {
  evutil_socket_t fd = bufferevent_getfd(bev_.get());
  if (finish_ == Finish::rst) {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return -1;
  }
  // A half-close: closing the socket outright while the client's bytes sit
  // unread in it would make the kernel answer with RST instead.
  shutdown(fd, SHUT_WR);
  phase_ = Phase::discarding;
  return 0;
}

int ServerConnection::on_read() {
  evbuffer *input = bufferevent_get_input(bev_.get());
  switch (phase_) {
  case Phase::discarding:
  case Phase::finishing: {
    size_t n = evbuffer_get_length(input);
    evbuffer_drain(input, n);
    server_->update_stats([n](ServerStats &s) { s.bytes_discarded += n; });
    return 0;
  }
  case Phase::closing:
    return 0;
  case Phase::serving:
    break;
  }
  size_t total = evbuffer_get_length(input);
  // Feed every chunk without copying, then answer once: the responses to a
  // burst of requests go out together.
  int nvec = evbuffer_peek(input, -1, nullptr, nullptr, 0);
  std::vector<evbuffer_iovec> vecs(static_cast<size_t>(std::max(nvec, 0)));
  evbuffer_peek(input, -1, nullptr, vecs.data(), nvec);
  for (const auto &v : vecs) {
    ssize_t rv = nghttp2_session_mem_recv(
        session_.get(), static_cast<const uint8_t *>(v.iov_base), v.iov_len);
    if (rv < 0) {
      // Fatal for the session (e.g. a bad client preface). Say GOAWAY if
      // nghttp2 still will, then close once it is flushed.
      evbuffer_drain(input, total);
      phase_ = Phase::closing;
      bufferevent_disable(bev_.get(), EV_READ);
      nghttp2_session_terminate_session(session_.get(), NGHTTP2_PROTOCOL_ERROR);
      const uint8_t *data = nullptr;
      ssize_t n;
      while ((n = nghttp2_session_mem_send(session_.get(), &data)) > 0) {
        bufferevent_write(bev_.get(), data, static_cast<size_t>(n));
      }
      return evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0 ? -1
                                                                          : 0;
    }
  }
  evbuffer_drain(input, total);
  if (pause_pending_) {
    pause_pending_ = false;
    begin_read_pause();
  }
  return send();
}

int ServerConnection::on_write() {
  switch (phase_) {
  case Phase::serving:
    return send();
  case Phase::closing:
    return evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0 ? -1
                                                                        : 0;
  case Phase::finishing:
    return evbuffer_get_length(bufferevent_get_output(bev_.get())) == 0
               ? finish()
               : 0;
  case Phase::discarding:
    return 0;
  }
  return 0;
}

int ServerConnection::send() {
  if (phase_ != Phase::serving) {
    return 0;
  }
  evbuffer *output = bufferevent_get_output(bev_.get());
  while (evbuffer_get_length(output) < kOutputHighWater) {
    const uint8_t *data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
    if (n < 0) {
      return -1;
    }
    if (n == 0) {
      break;
    }
    if (bufferevent_write(bev_.get(), data, static_cast<size_t>(n)) != 0) {
      return -1;
    }
  }
  if (drop_ == Fault::drop_midframe) {
    // A DATA frame header cut after its flags byte (length 16384): the
    // client holds 5 bytes of a frame when the FIN arrives.
    static constexpr uint8_t kCut[] = {0x00, 0x40, 0x00, 0x00, 0x00};
    if (bufferevent_write(bev_.get(), kCut, sizeof kCut) != 0) {
      return -1;
    }
    return finish_after_flush(Finish::fin);
  }
  if (drop_ != Fault::none) {
    // Push what is queued (the partial response) into the kernel, then
    // close; SO_LINGER 0 makes the close an abort (TCP RST).
    evutil_socket_t fd = bufferevent_getfd(bev_.get());
    while (evbuffer_get_length(output) > 0 && evbuffer_write(output, fd) > 0) {
    }
    if (drop_ == Fault::drop_reset) {
      linger lg{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else {
      shutdown(fd, SHUT_WR);
    }
    return -1;
  }
  // After a GOAWAY exchange nghttp2 wants nothing more; close once the last
  // bytes have reached the kernel (the write callback calls us again).
  if (!nghttp2_session_want_read(session_.get()) &&
      !nghttp2_session_want_write(session_.get()) &&
      evbuffer_get_length(output) == 0) {
    return -1;
  }
  return 0;
}

ServerStream *ServerConnection::create_stream(int32_t stream_id) {
  auto stream = std::make_unique<ServerStream>(this, stream_id);
  auto raw = stream.get();
  streams_[stream_id] = std::move(stream);
  ++open_streams_;
  uint32_t open = open_streams_;
  server_->update_stats([open](ServerStats &s) {
    s.peak_concurrent_streams = std::max(s.peak_concurrent_streams, open);
  });
  return raw;
}

void ServerConnection::close_stream(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return;
  }
  streams_.erase(it);
  --open_streams_;
}

int ServerConnection::handle_request(ServerStream *stream) {
  stream->handled_ = true;
  stream->request_number_ = server_->count_request();
  stream->script_ = parse_script(stream->request_.path);
  ++requests_seen_;

  RecordedRequest record;
  record.connection_id = id_;
  record.stream_id = stream->stream_id_;
  record.method = stream->request_.method;
  record.scheme = stream->request_.scheme;
  record.authority = stream->request_.authority;
  record.path = stream->request_.path;
  record.headers = stream->request_.headers;
  if (server_->options().record_bodies) {
    record.body = stream->request_.body;
  }
  server_->record(std::move(record));

  if (stream->stream_id_ > goaway_last_) {
    // Above a GOAWAY's last_stream_id: never processed (nghttp2 closes it
    // when the GOAWAY goes out).
    return 0;
  }
  choose_faults(stream);
  if (script_.goaway_after_requests != 0 &&
      requests_seen_ == script_.goaway_after_requests) {
    start_goaway(script_.goaway_code, script_.goaway_last_stream_id,
                 script_.goaway_debug, script_.goaway_graceful,
                 script_.goaway_grace_ms, stream->stream_id_);
  }
  const Script &sc = stream->script_;
  if (sc.goaway_code >= 0) {
    start_goaway(static_cast<uint32_t>(sc.goaway_code), sc.goaway_last,
                 sc.goaway_debug, sc.goaway_graceful, sc.goaway_grace_ms,
                 stream->stream_id_);
  }
  if (sc.settings_mcs >= 0 && sc.error.empty()) {
    nghttp2_settings_entry iv{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                              static_cast<uint32_t>(sc.settings_mcs)};
    if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, &iv, 1) ==
        0) {
      lowered_seq_ = ++settings_sent_;
      lowered_acked_ = false;
      server_->update_stats([](ServerStats &s) { ++s.settings_lowered; });
    }
  }
  if (stream->stream_id_ > goaway_last_) {
    return 0;
  }

  if (stream->script_.delay_ms > 0 && stream->script_.error.empty()) {
    EventPtr timer(evtimer_new(server_->base(), on_delay_timer, stream));
    if (!timer) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    timeval tv;
    tv.tv_sec = static_cast<time_t>(stream->script_.delay_ms / 1000);
    tv.tv_usec =
        static_cast<suseconds_t>(stream->script_.delay_ms % 1000) * 1000;
    // Measure from now, not from when this loop iteration began, so the
    // delay is a lower bound a test can assert on.
    event_base_update_cache_time(server_->base());
    if (evtimer_add(timer.get(), &tv) != 0) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    stream->delay_timer_ = std::move(timer);
    return 0;
  }
  respond(stream);
  return 0;
}

void ServerConnection::on_delay_expired(ServerStream *stream) {
  respond(stream);
  // send() may close the stream (freeing it and the running timer, which
  // libevent allows from the timer's own callback); touch neither after.
  if (send() != 0) {
    server_->close_connection(this);
  }
}

void ServerConnection::respond(ServerStream *stream) {
  const Script &script = stream->script_;
  if (stream->stream_id_ > goaway_last_) {
    return;
  }
  if (script.fault == Fault::refuse ||
      (script.fault != Fault::none && script.fault_before)) {
    strike(stream);
    return;
  }
  int status = script.error.empty() ? script.status : 400;
  if (misdirected(stream)) {
    status = 421;
  }
  if (!script.error.empty()) {
    stream->body_buffer_ = script.error;
  } else if (script.has_size) {
    stream->generated_ = true;
    stream->body_size_ = script.size;
  } else if (script.has_zeros) {
    stream->generated_ = true;
    stream->zeros_ = true;
    stream->body_size_ = script.zeros;
  } else if (script.echo) {
    stream->body_buffer_ = std::move(stream->request_.body);
  } else {
    stream->body_buffer_ = kDefaultBody;
  }
  if (!stream->generated_) {
    stream->body_size_ = stream->body_buffer_.size();
  }
  // ce= / ce_unknown=: encode (or just checksum) the body.
  bool encoded =
      script.error.empty() && (script.has_ce || !script.ce_unknown.empty());
  std::string identity_length_str = std::to_string(stream->body_size_);
  std::string crc_str;
  std::string ce_str;
  if (encoded) {
    if (encode_body(stream)) {
      uLong crc = crc32(0L, Z_NULL, 0);
      const auto *p =
          reinterpret_cast<const Bytef *>(stream->body_buffer_.data());
      for (size_t off = 0; off < stream->body_buffer_.size();) {
        size_t n = std::min<size_t>(stream->body_buffer_.size() - off,
                                    size_t{1} << 30);
        crc = crc32(crc, p + off, static_cast<uInt>(n));
        off += n;
      }
      char hex[16];
      std::snprintf(hex, sizeof hex, "%08lx", crc & 0xffffffffUL);
      crc_str = hex;
      ce_str = script.ce_announce;
      if (!script.ce_unknown.empty()) {
        ce_str += (ce_str.empty() ? "" : ", ") + script.ce_unknown;
      }
    } else {
      encoded = false;
      status = 500;
      stream->generated_ = false;
      stream->zeros_ = false;
      stream->body_buffer_ = "ce: encoding failed or over 64 MiB\n";
      stream->body_size_ = stream->body_buffer_.size();
    }
  }
  // 204 and 304 never carry content (RFC 9110 6.4.1); a HEAD response
  // announces the length it would have had.
  bool no_content = status == 204 || status == 304;
  bool send_body =
      !no_content && stream->request_.method != "HEAD" && stream->body_size_;
  if (script.error.empty() && status != 500 && !script.trailers.empty() &&
      !no_content && stream->request_.method != "HEAD") {
    // The data provider submits the trailers at the end of the body, so a
    // bodiless response with trailers still needs one (an empty DATA).
    stream->send_trailers_ = true;
    send_body = true;
  }
  if (script.fault != Fault::none) {
    // Strikes after the headers and fault_after body bytes; the provider
    // holds the rest back (and END_STREAM) until then.
    stream->fault_pending_ = true;
    send_body = true;
  }

  std::string status_str = std::to_string(status);
  std::string length_str =
      std::to_string(script.has_cl ? script.cl : stream->body_size_);
  std::string count_str = std::to_string(stream->request_number_);
  std::string body_length_str = std::to_string(stream->body_length_);
  std::vector<nghttp2_nv> nva;
  auto add = [&nva](std::string_view name, std::string_view value) {
    nva.push_back(
        {reinterpret_cast<uint8_t *>(const_cast<char *>(name.data())),
         reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
         name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  };
  add(":status", status_str);
  if (!no_content) {
    add("content-length", length_str);
  }
  add("x-request-count", count_str);
  if (stream->had_body_) {
    add("x-request-body-length", body_length_str);
  }
  if (encoded) {
    add("content-encoding", ce_str);
    add("x-body-crc32", crc_str);
    add("x-identity-length", identity_length_str);
  }
  std::vector<std::string> echo_names;
  std::vector<std::string> echo_values;
  echo_names.reserve(script.echo_headers.size());
  if (script.error.empty()) {
    echo_values.reserve(script.echo_headers.size());
    for (const auto &want : script.echo_headers) {
      bool found = false;
      std::string joined;
      for (const auto &[name, value] : stream->request_.headers) {
        if (name == want) {
          joined += (found ? ", " : "") + value;
          found = true;
        }
      }
      if (found) {
        echo_names.push_back("x-echo-" + want);
        echo_values.push_back(std::move(joined));
        add(echo_names.back(), echo_values.back());
      }
    }
  }
  // Stable storage for the big headers: reserved up front, never moved.
  std::vector<std::string> big_names;
  std::string big_value;
  if (script.error.empty()) {
    for (const auto &[name, value] : script.extra_headers) {
      add(name, value);
    }
    big_names.reserve(script.hdr_count);
    big_value.assign(script.hdr_size, 'a');
    for (uint64_t i = 0; i < script.hdr_count; ++i) {
      big_names.push_back("x-big-" + std::to_string(i));
      add(big_names.back(), big_value);
    }
  }
  if (script.error.empty()) {
    // early=: interim responses, in order, before the final one.
    static const std::string kLink = "</style.css>; rel=preload";
    for (size_t i = 0; i < script.early.size(); ++i) {
      std::string code = std::to_string(script.early[i]);
      std::string pos = std::to_string(i + 1);
      std::vector<nghttp2_nv> interim;
      auto add_interim = [&interim](std::string_view name,
                                    std::string_view value) {
        interim.push_back(
            {reinterpret_cast<uint8_t *>(const_cast<char *>(name.data())),
             reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
             name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
      };
      add_interim(":status", code);
      if (script.early[i] == 103) {
        add_interim("link", kLink);
      }
      add_interim("x-interim", pos);
      if (nghttp2_submit_headers(session_.get(), NGHTTP2_FLAG_NONE,
                                 stream->stream_id_, nullptr, interim.data(),
                                 interim.size(), nullptr) >= 0) {
        ++stream->interim_unsent_;
      }
    }
  }
  nghttp2_data_provider provider;
  provider.source.ptr = stream;
  provider.read_callback = read_response_body;
  // nghttp2 copies the name/value pairs, so the strings may die after this.
  int rv =
      nghttp2_submit_response(session_.get(), stream->stream_id_, nva.data(),
                              nva.size(), send_body ? &provider : nullptr);
  if (rv != 0) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                              stream->stream_id_, NGHTTP2_INTERNAL_ERROR);
  }
}

bool ServerConnection::encode_body(ServerStream *stream) {
  const Script &sc = stream->script_;
  if (!stream->generated_ && stream->body_buffer_.size() > kMaxEncodedBody) {
    return false;
  }
  std::vector<Coding> codings = sc.codings;
  if (codings.empty()) {
    codings.push_back(Coding::identity); // ce_unknown= alone
  }
  std::string current;
  std::string source_buffer;
  if (!stream->generated_) {
    source_buffer = std::move(stream->body_buffer_);
  }
  for (size_t i = 0; i < codings.size(); ++i) {
    uint64_t offset = 0;
    std::function<size_t(uint8_t *, size_t)> next;
    if (i == 0 && stream->generated_) {
      // Generated sources are compressed chunk by chunk, never whole.
      next = [&offset, stream](uint8_t *buf, size_t room) {
        size_t n = static_cast<size_t>(
            std::min<uint64_t>(room, stream->body_size_ - offset));
        if (stream->zeros_) {
          std::memset(buf, 0, n);
        } else {
          fill_test_body(stream->script_.seed, offset, n, buf);
        }
        offset += n;
        return n;
      };
    } else {
      const std::string &in = i == 0 ? source_buffer : current;
      next = [&offset, &in](uint8_t *buf, size_t room) {
        size_t n =
            static_cast<size_t>(std::min<uint64_t>(room, in.size() - offset));
        std::memcpy(buf, in.data() + offset, n);
        offset += n;
        return n;
      };
    }
    std::string out;
    bool encoded = false;
    switch (codings[i]) {
    case Coding::br:
#if H2POOL_SERVER_HAVE_BROTLI
      encoded = br_into(next, out);
#endif
      break;
    case Coding::zstd:
#if H2POOL_SERVER_HAVE_ZSTD
      encoded = zstd_into(next, sc.zstd_window_log, out);
#endif
      break;
    default:
      encoded = deflate_into(codings[i], next, out);
      break;
    }
    if (!encoded) {
      return false;
    }
    current = std::move(out);
  }
  switch (sc.corrupt) {
  case Corrupt::none:
    break;
  case Corrupt::header:
    if (!current.empty()) {
      current[0] = static_cast<char>(~static_cast<unsigned char>(current[0]));
    }
    break;
  case Corrupt::crc: {
    Coding last = codings.back();
    size_t at = last == Coding::gzip ? 8 : last == Coding::zstd ? 4 : 1;
    if (current.size() >= at) {
      size_t i = current.size() - at;
      current[i] = static_cast<char>(current[i] ^ 0x5a);
    }
    break;
  }
  case Corrupt::truncate:
    current.resize(current.size() / 2);
    break;
  case Corrupt::trailing:
    current.append("trailing garbage");
    break;
  }
  stream->generated_ = false;
  stream->zeros_ = false;
  stream->body_buffer_ = std::move(current);
  stream->body_size_ = stream->body_buffer_.size();
  return true;
}

void ServerConnection::choose_faults(ServerStream *stream) {
  Script &sc = stream->script_;
  if (!sc.error.empty()) {
    return;
  }
  bool on = !(sc.fault_conn != 0 && sc.fault_conn != id_);
  if (on && sc.fault_times != 0) {
    on = server_->count_path(stream->request_.path) <= sc.fault_times;
  }
  if (!on) {
    sc.goaway_code = -1;
    sc.fault = Fault::none;
    sc.refuse = 0;
    return;
  }
  if (sc.refuse > 0 && sc.fault == Fault::none &&
      (sc.refuse >= 1 || server_->draw() < sc.refuse)) {
    sc.fault = Fault::refuse;
    sc.fault_before = true;
    return;
  }
  const ChaosOptions &chaos = server_->options().chaos;
  if (sc.fault != Fault::none || sc.goaway_code >= 0 ||
      chaos.goaway + chaos.refuse + chaos.drop <= 0) {
    return;
  }
  double r = server_->draw();
  if (r < chaos.goaway) {
    // Abrupt: this stream (and anything after it) was never processed.
    // Graceful: everything the client sent before the final step counts.
    bool graceful = server_->draw_below(2) == 0;
    start_goaway(NGHTTP2_NO_ERROR,
                 graceful ? -1 : std::max(0, stream->stream_id_ - 2), "chaos",
                 graceful, 20, stream->stream_id_);
  } else if (r < chaos.goaway + chaos.refuse) {
    sc.fault = Fault::refuse;
    sc.fault_before = true;
  } else if (r < chaos.goaway + chaos.refuse + chaos.drop) {
    sc.fault = Fault::drop_reset;
    sc.fault_before = server_->draw_below(2) == 0;
    sc.fault_after = server_->draw_below(sc.has_size ? sc.size + 1 : 1);
  }
}

void ServerConnection::start_goaway(uint32_t code, int64_t last,
                                    const std::string &debug, bool graceful,
                                    uint64_t grace_ms, int32_t current) {
  if (goaway_started_ || !session_) {
    return;
  }
  goaway_started_ = true;
  goaway_code_ = code;
  goaway_debug_ = debug;
  if (!graceful) {
    goaway_last_ = last >= 0 ? last : current;
    nghttp2_submit_goaway(
        session_.get(), NGHTTP2_FLAG_NONE, static_cast<int32_t>(goaway_last_),
        code, reinterpret_cast<const uint8_t *>(debug.data()), debug.size());
    return;
  }
  goaway_final_last_ = last;
  nghttp2_submit_shutdown_notice(session_.get());
  goaway_timer_.reset(evtimer_new(server_->base(), on_goaway_timer, this));
  if (goaway_timer_) {
    timeval tv;
    tv.tv_sec = static_cast<time_t>(grace_ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>(grace_ms % 1000) * 1000;
    evtimer_add(goaway_timer_.get(), &tv);
  }
}

void ServerConnection::on_goaway_grace_expired() {
  goaway_last_ = goaway_final_last_ >= 0
                     ? goaway_final_last_
                     : nghttp2_session_get_last_proc_stream_id(session_.get());
  nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE,
                        static_cast<int32_t>(goaway_last_), goaway_code_,
                        reinterpret_cast<const uint8_t *>(goaway_debug_.data()),
                        goaway_debug_.size());
  if (send() != 0) {
    server_->close_connection(this);
  }
}

void ServerConnection::strike(ServerStream *stream) {
  const Script &sc = stream->script_;
  if (sc.fault_delay_ms > 0 && !stream->fault_delayed_) {
    // Hold everything back for the pause, then strike.
    stream->fault_delayed_ = true;
    stream->fault_struck_ = true;
    stream->fault_pending_ = true;
    stream->fault_timer_.reset(
        evtimer_new(server_->base(), on_fault_timer, stream));
    if (stream->fault_timer_) {
      timeval tv;
      tv.tv_sec = static_cast<time_t>(sc.fault_delay_ms / 1000);
      tv.tv_usec = static_cast<suseconds_t>(sc.fault_delay_ms % 1000) * 1000;
      evtimer_add(stream->fault_timer_.get(), &tv);
    }
    return;
  }
  stream->fault_struck_ = true;
  // A stall sends nothing more, ever. A drop sends nothing more either: the
  // stream's data provider is asked again in the same
  // nghttp2_session_mem_send call that reported the frame before the fault
  // point, and would otherwise hand out the rest of the body (END_STREAM
  // included) before send() gets to close.
  stream->fault_pending_ =
      sc.fault == Fault::stall || sc.fault == Fault::drop_close ||
      sc.fault == Fault::drop_reset || sc.fault == Fault::drop_midframe;
  switch (sc.fault) {
  case Fault::none:
    return;
  case Fault::refuse:
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                              stream->stream_id_, NGHTTP2_REFUSED_STREAM);
    server_->update_stats([](ServerStats &s) { ++s.streams_refused; });
    return;
  case Fault::rst:
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                              stream->stream_id_, sc.rst_code);
    server_->update_stats([](ServerStats &s) { ++s.streams_reset; });
    return;
  case Fault::drop_close:
  case Fault::drop_reset:
  case Fault::drop_midframe:
    drop_ = sc.fault;
    server_->update_stats([](ServerStats &s) { ++s.connections_dropped; });
    return;
  case Fault::stall:
    server_->update_stats([](ServerStats &s) { ++s.streams_stalled; });
    return;
  }
}

void ServerConnection::on_frame_sent(const nghttp2_frame *frame) {
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    server_->update_stats([](ServerStats &s) { ++s.goaways_sent; });
    return;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
    return;
  }
  auto stream =
      static_cast<ServerStream *>(nghttp2_session_get_stream_user_data(
          session_.get(), frame->hd.stream_id));
  if (stream && frame->hd.type == NGHTTP2_HEADERS &&
      stream->interim_unsent_ > 0) {
    // An early= interim response: the final headers are still to come.
    --stream->interim_unsent_;
    return;
  }
  if (stream && stream->fault_pending_ && !stream->fault_struck_ &&
      stream->body_offset_ >= stream->fault_limit()) {
    strike(stream);
  }
}

void ServerConnection::on_begin_frame(const nghttp2_frame_hd *hd) {
  if (hd->type != NGHTTP2_HEADERS || hd->stream_id <= last_client_stream_) {
    return;
  }
  // A new stream, counted before nghttp2 checks it against our limit, so a
  // client that overshoots a lowered limit shows here.
  last_client_stream_ = hd->stream_id;
  if (lowered_acked_) {
    uint32_t open = open_streams_ + 1;
    server_->update_stats([open](ServerStats &s) {
      s.peak_streams_after_settings_ack =
          std::max(s.peak_streams_after_settings_ack, open);
    });
  }
}

void ServerConnection::on_control_frame(const nghttp2_frame *frame) {
  switch (frame->hd.type) {
  case NGHTTP2_RST_STREAM: {
    ClientReset r;
    r.connection_id = id_;
    r.stream_id = frame->hd.stream_id;
    r.error_code = frame->rst_stream.error_code;
    server_->record_reset(r);
    break;
  }
  case NGHTTP2_PING:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
      server_->update_stats([](ServerStats &s) { ++s.pings_received; });
    }
    break;
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
      ++settings_acked_;
      if (lowered_seq_ != 0 && !lowered_acked_ &&
          settings_acked_ >= lowered_seq_) {
        lowered_acked_ = true;
        server_->update_stats(
            [](ServerStats &s) { ++s.settings_lowered_acked; });
      }
    }
    break;
  case NGHTTP2_PRIORITY_UPDATE:
    server_->update_stats([](ServerStats &s) { ++s.priority_updates; });
    break;
  default:
    break;
  }
}

bool ServerConnection::on_request_headers(ServerStream *stream) {
  if (script_.read_pause_ms > 0) {
    // Acted on once on_read has fed nghttp2 everything it read.
    pause_pending_ = true;
  }
  uint32_t every = server_->options().refuse_every;
  if (every == 0 || server_->count_stream() % every != 0) {
    return false;
  }
  stream->refused_ = true;
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                            stream->stream_id_, NGHTTP2_REFUSED_STREAM);
  server_->update_stats([](ServerStats &s) { ++s.streams_refused; });
  return true;
}

bool ServerConnection::open_tunnel(ServerStream *stream) {
  const RecordedRequest &req = stream->request_;
  if (!server_->options().extended_connect || req.method != "CONNECT" ||
      req.protocol.empty()) {
    return false;
  }
  Script script = parse_script(req.path);
  if (script.error.empty() && script.status / 100 != 2) {
    // status=N: refused with an ordinary response, at once (the client's
    // side of the stream is still open).
    handle_request(stream);
    return true;
  }
  stream->tunnel_ = true;
  stream->handled_ = true;
  stream->request_number_ = server_->count_request();
  ++requests_seen_;
  RecordedRequest record = req;
  record.connection_id = id_;
  record.stream_id = stream->stream_id_;
  server_->record(std::move(record));
  server_->update_stats([](ServerStats &s) { ++s.tunnels_opened; });
  static const std::string kStatus = "200";
  std::string count = std::to_string(stream->request_number_);
  const nghttp2_nv nva[] = {
      {reinterpret_cast<uint8_t *>(const_cast<char *>(":status")),
       reinterpret_cast<uint8_t *>(const_cast<char *>(kStatus.data())), 7,
       kStatus.size(), NGHTTP2_NV_FLAG_NONE},
      {reinterpret_cast<uint8_t *>(const_cast<char *>("x-request-count")),
       reinterpret_cast<uint8_t *>(count.data()), 15, count.size(),
       NGHTTP2_NV_FLAG_NONE},
  };
  nghttp2_data_provider provider;
  provider.source.ptr = stream;
  provider.read_callback = read_response_body;
  if (nghttp2_submit_response(session_.get(), stream->stream_id_, nva, 2,
                              &provider) != 0) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                              stream->stream_id_, NGHTTP2_INTERNAL_ERROR);
  }
  return true;
}

void ServerConnection::feed_tunnel(ServerStream *stream, const uint8_t *data,
                                   size_t len, bool eof) {
  if (len > 0) {
    stream->tunnel_buffer_.append(reinterpret_cast<const char *>(data), len);
  }
  stream->tunnel_eof_ = stream->tunnel_eof_ || eof;
  // The provider said DEFERRED when it ran dry; harmless otherwise.
  nghttp2_session_resume_data(session_.get(), stream->stream_id_);
}

void ServerConnection::begin_read_pause() {
  if (!read_pause_timer_) {
    read_pause_timer_.reset(
        evtimer_new(server_->base(), on_read_pause_timer, this));
    if (!read_pause_timer_) {
      return;
    }
  }
  // The socket stays unread (libevent stops polling it), so the kernel's
  // buffers fill and then the client's writes block.
  bufferevent_disable(bev_.get(), EV_READ);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(script_.read_pause_ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>(script_.read_pause_ms % 1000) * 1000;
  event_base_update_cache_time(server_->base());
  evtimer_add(read_pause_timer_.get(), &tv);
  server_->update_stats([](ServerStats &s) { ++s.read_pauses; });
}

void ServerConnection::on_read_pause_expired() {
  server_->update_stats([](ServerStats &s) { ++s.read_pauses_ended; });
  if (phase_ == Phase::serving) {
    bufferevent_enable(bev_.get(), EV_READ);
  }
}

// ---------------------------------------------------------------------------
// Server

uint64_t Server::count_request() {
  uint64_t n = 0;
  update_stats([&n](ServerStats &s) { n = ++s.requests; });
  return n;
}

void Server::record(RecordedRequest request) {
  if (options_.record_limit == 0) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(request));
    while (records_.size() > options_.record_limit) {
      records_.pop_front();
    }
  }
  cv_.notify_all();
}

int parse_loopback(const std::string &host, sockaddr_storage &ss,
                   socklen_t &len) {
  std::memset(&ss, 0, sizeof(ss));
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  auto sin = reinterpret_cast<sockaddr_in *>(&ss);
  auto sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
  if (inet_pton(AF_INET, h.c_str(), &sin->sin_addr) == 1) {
    // Loopback only: tests must stay hermetic and an echo server must not
    // be reachable from the network.
    if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
      return -EINVAL;
    }
    sin->sin_family = AF_INET;
    len = sizeof(sockaddr_in);
    return 0;
  }
  if (inet_pton(AF_INET6, h.c_str(), &sin6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
      return -EINVAL;
    }
    sin6->sin6_family = AF_INET6;
    len = sizeof(sockaddr_in6);
    return 0;
  }
  return -EINVAL;
}

int Server::start() {
  if (thread_.joinable()) {
    return -EALREADY;
  }
  sockaddr_storage ss;
  socklen_t len = 0;
  const std::string &uds = options_.unix_socket;
  if (!uds.empty()) {
    std::memset(&ss, 0, sizeof ss);
    auto sun = reinterpret_cast<sockaddr_un *>(&ss);
    bool abstract = uds[0] == '@';
    if (uds.size() >= sizeof sun->sun_path) {
      return -ENAMETOOLONG;
    }
    sun->sun_family = AF_UNIX;
    // Abstract: a leading NUL, then the name without '@'.
    std::memcpy(sun->sun_path + (abstract ? 1 : 0),
                uds.data() + (abstract ? 1 : 0),
                uds.size() - (abstract ? 1 : 0));
    len = socklen_t(offsetof(sockaddr_un, sun_path) + uds.size() +
                    (abstract ? 0 : 1));
  } else if (int rv = parse_loopback(options_.host, ss, len); rv != 0) {
    return rv;
  }
  if (ss.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in *>(&ss)->sin_port = htons(options_.port);
  } else if (ss.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port = htons(options_.port);
  }

  // Bind ourselves rather than through evconnlistener_new_bind, so the
  // caller gets the real errno (EADDRINUSE, EAFNOSUPPORT, ...).
  Fd sock(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    return -errno;
  }
  int one = 1;
  setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(sock.get(), reinterpret_cast<sockaddr *>(&ss), len) != 0 ||
      listen(sock.get(), 1024) != 0) {
    return -errno;
  }
  sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  if (getsockname(sock.get(), reinterpret_cast<sockaddr *>(&bound),
                  &bound_len) != 0) {
    return -errno;
  }
  uint16_t port =
      bound.ss_family == AF_UNIX
          ? 0
          : ntohs(bound.ss_family == AF_INET
                      ? reinterpret_cast<sockaddr_in *>(&bound)->sin_port
                      : reinterpret_cast<sockaddr_in6 *>(&bound)->sin6_port);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return -errno;
  }
  wake_read_.reset(pipe_fds[0]);
  wake_write_.reset(pipe_fds[1]);

  if (int rv = make_tls_context(); rv != 0) {
    return rv;
  }
  if (!callbacks_) {
    callbacks_ = make_callbacks();
    if (!callbacks_) {
      free_loop_objects();
      return -ENOMEM;
    }
  }
  // libevent's default clock is CLOCK_MONOTONIC_COARSE, whose ticks let a
  // delay_ms timer fire a few milliseconds early.
  struct ConfigDeleter {
    void operator()(event_config *p) const { event_config_free(p); }
  };
  std::unique_ptr<event_config, ConfigDeleter> config(event_config_new());
  if (config) {
    event_config_set_flag(config.get(), EVENT_BASE_FLAG_PRECISE_TIMER);
    base_.reset(event_base_new_with_config(config.get()));
  }
  if (!base_) {
    free_loop_objects();
    return -ENOMEM;
  }
  wake_event_.reset(event_new(base_.get(), wake_read_.get(),
                              EV_READ | EV_PERSIST, on_wake_event, this));
  if (!wake_event_ || event_add(wake_event_.get(), nullptr) != 0) {
    free_loop_objects();
    return -ENOMEM;
  }
  // Backlog 0: the socket is already listening.
  listener_.reset(evconnlistener_new(
      base_.get(), on_listener_accept, this,
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, sock.get()));
  if (!listener_) {
    free_loop_objects();
    return -ENOMEM;
  }
  sock.release();
  evconnlistener_set_error_cb(listener_.get(), on_listener_error);
  port_.store(port, std::memory_order_release);

  try {
    thread_ = std::thread([this] {
      // libevent writes with writev(), so a peer that resets mid-response
      // would raise SIGPIPE and kill the whole test binary. Blocking it on
      // this thread only turns that into EPIPE without touching the process.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      event_base_dispatch(base_.get());
    });
  } catch (const std::system_error &e) {
    free_loop_objects();
    return -(e.code().value() ? e.code().value() : EAGAIN);
  }
  return 0;
}

void Server::stop() {
  if (!thread_.joinable()) {
    return;
  }
  // The loop is not thread-safe (we do not ask libevent for locking, which
  // is process-global); a byte on a pipe is the portable wake-up.
  char byte = 1;
  while (write(wake_write_.get(), &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  // The loop thread has exited, so everything below is ours alone.
  free_loop_objects();
}

void Server::on_wake() { event_base_loopbreak(base_.get()); }

void Server::free_loop_objects() {
  while (!connections_.empty()) {
    close_connection(connections_.begin()->first);
  }
  listener_.reset();
  wake_event_.reset();
  base_.reset();
  wake_read_.reset();
  wake_write_.reset();
}

void Server::on_accept(evutil_socket_t fd) {
  int one = 1;
  // Responses are written in whole frames already; Nagle would only add
  // latency between a request and its small response.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  BufferEventPtr bev = make_bufferevent(fd);
  if (!bev) {
    return;
  }
  std::unique_ptr<ServerConnection> conn;
  try {
    conn = std::make_unique<ServerConnection>(this, next_connection_id_++,
                                              std::move(bev));
  } catch (...) {
    return;
  }
  auto raw = conn.get();
  bufferevent_setcb(raw->bev_.get(), on_bev_read, on_bev_write, on_bev_event,
                    raw);
  connections_.emplace(raw, std::move(conn));
  update_stats([](ServerStats &s) {
    ++s.connections_accepted;
    ++s.connections_open;
    s.peak_connections_open =
        std::max(s.peak_connections_open, s.connections_open);
  });
  if (raw->start() != 0) {
    close_connection(raw);
    return;
  }
  bufferevent_enable(raw->bev_.get(), EV_READ | EV_WRITE);
}

int Server::make_tls_context() {
  if (options_.tls_cert_file.empty() || tls_) {
    return 0;
  }
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx ||
      SSL_CTX_use_certificate_chain_file(ctx.get(),
                                         options_.tls_cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), options_.tls_key_file.c_str(),
                                  SSL_FILETYPE_PEM) != 1) {
    ERR_clear_error();
    return -EINVAL;
  }
  // RFC 9113 section 3.2: "h2" over TLS; a client that offers only
  // HTTP/1.1 gets no protocol, and speaks that.
  SSL_CTX_set_alpn_select_cb(
      ctx.get(),
      [](SSL *, const unsigned char **out, unsigned char *outlen,
         const unsigned char *in, unsigned int inlen, void *) {
        static const unsigned char h2[] = {2, 'h', '2'};
        unsigned char *sel = nullptr;
        if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2, in, inlen) !=
            OPENSSL_NPN_NEGOTIATED) {
          return SSL_TLSEXT_ERR_NOACK;
        }
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
      },
      nullptr);
  tls_ = std::move(ctx);
  return 0;
}

BufferEventPtr Server::make_bufferevent(evutil_socket_t fd) {
  BufferEventPtr bev;
  if (!tls_) {
    bev.reset(bufferevent_socket_new(base_.get(), fd, BEV_OPT_CLOSE_ON_FREE));
  } else if (SSL *ssl = SSL_new(tls_.get())) {
    // Frees the SSL object with the bufferevent; what nghttp2 writes
    // before the handshake is done waits in its output buffer.
    bev.reset(bufferevent_openssl_socket_new(base_.get(), fd, ssl,
                                             BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE));
    if (!bev) {
      SSL_free(ssl);
    }
  }
  if (!bev) {
    evutil_closesocket(fd);
  }
  return bev;
}

int ServerConnection::submit_origin_frame() {
  const auto &origins = server_->options().origin_frame;
  if (!origins) {
    return 0;
  }
  std::vector<nghttp2_origin_entry> ov;
  for (const std::string &o : *origins) {
    ov.push_back(
        {reinterpret_cast<uint8_t *>(const_cast<char *>(o.data())), o.size()});
  }
  return nghttp2_submit_origin(session_.get(), NGHTTP2_FLAG_NONE, ov.data(),
                               ov.size()) == 0
             ? 0
             : -1;
}

bool ServerConnection::misdirected(const ServerStream *stream) const {
  const std::string &host = server_->options().misdirect_host;
  const std::string &authority = stream->request_.authority;
  if (host.empty() || authority.substr(0, authority.rfind(':')) != host) {
    return false;
  }
  SSL *ssl = bufferevent_openssl_get_ssl(bev_.get());
  const char *sni =
      ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : nullptr;
  return !sni || host != sni;
}

void Server::close_connection(ServerConnection *conn) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) {
    return;
  }
  connections_.erase(it);
  update_stats([](ServerStats &s) { --s.connections_open; });
}

} // namespace

// ---------------------------------------------------------------------------
// Public interface

void fill_test_body(uint64_t seed, uint64_t offset, size_t n, uint8_t *out) {
  const uint64_t key = splitmix64(seed);
  uint64_t word = offset / 8;
  size_t skip = static_cast<size_t>(offset % 8);
  while (n > 0) {
    uint64_t v = splitmix64(key + word * kGamma);
    if (skip == 0 && n >= 8) {
      store_le64(out, v);
      out += 8;
      n -= 8;
    } else {
      for (size_t j = skip; j < 8 && n > 0; ++j, --n) {
        *out++ = static_cast<uint8_t>(v >> (8 * j));
      }
      skip = 0;
    }
    ++word;
  }
}

std::string test_body(uint64_t seed, size_t n) {
  std::string body(n, '\0');
  fill_test_body(seed, 0, n, reinterpret_cast<uint8_t *>(body.data()));
  return body;
}

struct TestServer::Impl {
  explicit Impl(ServerOptions options) : server(std::move(options)) {}
  Server server;
};

TestServer::TestServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

TestServer::~TestServer() { stop(); }

int TestServer::start() { return impl_->server.start(); }

void TestServer::stop() { impl_->server.stop(); }

uint16_t TestServer::port() const { return impl_->server.port(); }

std::string TestServer::base_url() const { return impl_->server.base_url(); }

ServerStats TestServer::stats() const { return impl_->server.stats(); }

std::vector<RecordedRequest> TestServer::requests() const {
  return impl_->server.requests();
}

std::vector<ClientReset> TestServer::client_resets() const {
  return impl_->server.client_resets();
}

bool TestServer::wait_for_stats(
    const std::function<bool(const ServerStats &)> &pred,
    std::chrono::milliseconds timeout) const {
  return impl_->server.wait_for_stats(pred, timeout);
}

} // namespace h2pool_testing
