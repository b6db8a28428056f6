// Arbitrary server bytes into a client Connection.
//
// A Connection is started on one end of a socketpair with the production
// nghttp2 session options and callbacks (Connection::attach_socket). The
// harness plays the server on the other end: it writes the input in chunks,
// runs the event loop after each, submits three requests as soon as the
// connection is ready, then half-closes its end and runs the loop until the
// connection has closed.
//
// The requests cover what the pool hands a connection: a plain GET that asks
// for gzip/deflate (auto-decoding on), a GET with a copied body whose
// response is streamed to on_headers/on_data callbacks, and a POST whose
// body comes from a reader callback.
//
// Input layout: bytes 0 and 1 are flag bytes, the rest is what the "server"
// sends.
//   bit 0     the harness first sends a valid, empty server SETTINGS frame
//             (so inputs need not spell one out to reach the stream code)
//   bit 1     the third request's body is larger than the default 65535-byte
//             flow-control window, so WINDOW_UPDATE handling matters
//   bit 2     tight limits: response body 64 bytes, decoded body 4 KiB,
//             header block 256 bytes / 8 fields, one local stream slot
//   bit 3     reset (cancel) the second request once it is in flight
//   bits 4-6  chunk size: 1, 2, 7, 16, 64, 256, 1024 bytes, or all at once
//             (after the first frame, which is always written on its own)
//   bit 7     drain the connection right after the requests are submitted
// Byte 1:
//   bit 0     the second request's on_data pauses after every chunk (the
//             harness resumes it after each loop pass)
//   bit 1     the third request's body reader says H2POOL_BODY_WAIT every
//             other call (the harness resumes the upload after each pass)
//   bit 2     the second request's on_headers aborts it
//   bit 3     the second request's on_data aborts it on the second chunk
//   bit 4     the first request has auto-decompression off
//   bit 5     speak HTTP/1.1 (H1Session) instead of HTTP/2: the input is
//             then raw response bytes, written in chunks from the start,
//             and byte 0's SETTINGS bit is ignored
//   bit 6     connect through a proxy (with credentials): the input starts
//             with the proxy's reply to the tunnel request, then goes on
//             with the origin's bytes; everything is written in chunks from
//             the start, and byte 0's SETTINGS bit is ignored
//   bit 7     with bit 6: a SOCKS5 proxy (socks5h://, the name is sent, so
//             no lookup) rather than HTTP CONNECT
//
// Invariants checked (trap on violation): every submitted request that was
// not reset is reported by on_stream_closed exactly once, a reset one never;
// on_connection_closed comes exactly once, after every stream; while open,
// every unreported request holds a stream slot and a draining connection has
// streams left; after the EOF the connection is closed.
#include <event2/event.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "body.h"
#include "connection.h"
#include "error.h"
#include "headers.h"
#include "log.h"
#include "proxy.h"
#include "request.h"
#include "url.h"

using namespace h2pool_core;

namespace {

constexpr int kRequests = 3;
// Loop passes allowed after the input is written before the harness gives up
// waiting for the connection to notice the EOF and closes it itself.
constexpr int kMaxSettlePasses = 64;

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      __builtin_trap();                                                        \
  } while (0)

// H2POOL_FUZZ_VERBOSE=1 prints what happened to each request, to check that
// a seed reaches the code it was written for.
const bool verbose = getenv("H2POOL_FUZZ_VERBOSE") != nullptr;

struct FakeOwner final : ConnectionOwner {
  Request *requests[kRequests] = {};
  int reported[kRequests] = {};
  bool reset[kRequests] = {};
  bool parked[kRequests] = {};
  int closed_calls = 0;

  int index_of(const Request &req) const {
    for (int i = 0; i < kRequests; ++i)
      if (requests[i] == &req)
        return i;
    return -1;
  }

  void on_connection_state(Connection &, Connection::State from,
                           Connection::State to) override {
    // Transitions only go forward, and closed is final.
    FUZZ_CHECK(from != Connection::State::closed);
    FUZZ_CHECK(int(to) > int(from));
  }
  void on_tls_established(Connection &) override { __builtin_trap(); }
  void on_connection_changed(Connection &) override {}
  void on_connection_useful(Connection &) override {}
  void on_stream_closed(Connection &, Request &req,
                        const StreamEnd &end) override {
    int i = index_of(req);
    FUZZ_CHECK(i >= 0);
    FUZZ_CHECK(!reset[i]);
    FUZZ_CHECK(closed_calls == 0);
    ++reported[i];
    FUZZ_CHECK(reported[i] == 1);
    if (verbose)
      fprintf(stderr,
              "request %d: stream %d status %d body %zu, http2 code %u, "
              "local error %d, connection error %d\n",
              i, req.stream_id, req.response ? req.response->status : 0,
              req.response ? req.response->body.size() : size_t(0),
              end.http2_code, req.local_error().code,
              end.connection_error ? end.connection_error->code : 0);
    // Touch what the pool would read, so ASan sees any stale request.
    if (end.connection_error)
      FUZZ_CHECK(end.connection_error->code != H2POOL_OK);
    if (req.response)
      (void)req.response->body.size();
    (void)req.local_error().message.size();
    // Complete it as Pool::on_stream_closed does: a paused response that
    // still holds bytes is parked until resumed (the harness resumes it at
    // the end), anything else that ended cleanly checks the decoder.
    if (req.local_error().code == H2POOL_OK && req.end_stream) {
      if (req.download_paused && req.has_pending_body())
        parked[i] = true;
      else
        end_body(req);
    }
  }
  // Pool::resume_download for a parked request, until it is done.
  void finish_parked(Request &req, const BodyLimits &limits) {
    int i = index_of(req);
    if (i < 0 || !parked[i])
      return;
    for (int rounds = 0; req.download_paused && rounds < 1000000; ++rounds) {
      size_t consumed;
      if (resume_body(req, limits, &consumed) != H2POOL_OK)
        return;
    }
    FUZZ_CHECK(!req.download_paused); // every resume makes progress
    end_body(req);
  }
  void on_connection_closed(Connection &, const Error &why) override {
    FUZZ_CHECK(why.code != H2POOL_OK);
    if (verbose)
      fprintf(stderr, "connection closed: %d %s\n", why.code,
              why.message.c_str());
    ++closed_calls;
    FUZZ_CHECK(closed_calls == 1);
  }
};

// The connection is attached to a socket: it never looks a name up.
struct NoResolver final : Resolver {
  void resolve(const std::string &, uint16_t, Callback) override {
    __builtin_trap();
  }
  void shutdown() override {}
};

// What the request callbacks see; the requests' user_data.
struct Probe {
  uint8_t flags1 = 0;
  int data_calls = 0;
  size_t data_bytes = 0;
  bool headers_seen = false;
  // Body reader.
  size_t upload_size = 0;
  size_t uploaded = 0;
  int read_calls = 0;
  bool eof_sent = false;
};

int on_headers(const h2pool_response *resp, void *user_data) {
  auto probe = static_cast<Probe *>(user_data);
  FUZZ_CHECK(!probe->headers_seen); // once, before any data
  FUZZ_CHECK(probe->data_calls == 0);
  probe->headers_seen = true;
  FUZZ_CHECK(resp->status >= 200 || resp->status == 101);
  FUZZ_CHECK(resp->body.empty());
  return (probe->flags1 & 4) ? 1 : 0;
}

int on_data(const uint8_t *data, size_t len, void *user_data) {
  auto probe = static_cast<Probe *>(user_data);
  FUZZ_CHECK(probe->headers_seen);
  FUZZ_CHECK(data != nullptr || len == 0);
  if (len)
    (void)(data[0] + data[len - 1]); // let ASan check the whole range
  ++probe->data_calls;
  probe->data_bytes += len;
  if ((probe->flags1 & 8) && probe->data_calls == 2)
    return 2; // abort
  return (probe->flags1 & 1) ? H2POOL_DATA_PAUSE : 0;
}

int64_t read_body(uint8_t *buf, size_t len, int *eof, void *user_data) {
  auto probe = static_cast<Probe *>(user_data);
  FUZZ_CHECK(!probe->eof_sent); // never asked again after the end
  if ((probe->flags1 & 2) && (probe->read_calls++ % 2) == 0)
    return H2POOL_BODY_WAIT;
  size_t n = std::min(len, probe->upload_size - probe->uploaded);
  memset(buf, 'r', n);
  probe->uploaded += n;
  if (probe->uploaded == probe->upload_size) {
    *eof = 1;
    probe->eof_sent = true;
  }
  return int64_t(n);
}

// Builds a request the way h2pool_request() does in src/api.cc.
void make_request(Request &req, const char *method, const char *url,
                  size_t body_len, uint64_t id, Probe *probe) {
  std::string why;
  FUZZ_CHECK(parse_url(url, &req.url, &why) == H2POOL_OK);
  FUZZ_CHECK(valid_method(method));
  static const h2pool_header extra[] = {
      {"Accept", 6, "*/*", 3},
      {"User-Agent", 10, "h2pool-fuzz", 11},
  };
  RequestHeaders normalized;
  FUZZ_CHECK(normalize_request_headers(extra, 2, &normalized, &why) ==
             H2POOL_OK);
  req.method = method;
  req.headers = std::move(normalized.fields);
  if (!normalized.authority.empty() &&
      normalized.authority != req.url.authority)
    req.make_rare().authority = normalized.authority;
  if (body_len) {
    req.body_copy.reset(new uint8_t[body_len]);
    std::memset(req.body_copy.get(), 'b', body_len);
    req.body_data = req.body_copy.get();
    req.body_size = body_len;
    req.add_content_length = !normalized.has_content_length;
  }
  req.add_accept_encoding =
      req.auto_decompress && !normalized.has_accept_encoding;
  req.user_data = probe;
  req.id = id;
}

// Discards what the client wrote, so its socket buffer never fills up.
void drain_peer(int fd) {
  char buf[65536];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

void run_loop(event_base *base, int peer) {
  event_base_loop(base, EVLOOP_NONBLOCK);
  drain_peer(peer);
}

// Writes all of [data, data + len) to the non-blocking peer socket, running
// the loop when the socket buffer is full.
void write_all(event_base *base, int peer, const uint8_t *data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(peer, data, len);
    if (n > 0) {
      data += n;
      len -= size_t(n);
    } else {
      run_loop(base, peer);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  // The harness half-closes its end; writes by the client afterwards must
  // fail with EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  const uint8_t flags = data[0], flags1 = data[1];
  data += 2;
  size -= 2;
  static const size_t kChunks[8] = {1, 2, 7, 16, 64, 256, 1024, SIZE_MAX};
  const size_t chunk = kChunks[(flags >> 4) & 7];

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds))
    return 0;
  event_base *base = event_base_new();
  FUZZ_CHECK(base != nullptr);

  Logger log(nullptr, H2POOL_LOG_NONE, nullptr);
  ConnectionSettings settings;
  if (flags & 4) {
    settings.h2.body_limits.max_body_bytes = 64;
    settings.h2.body_limits.decode.max_bytes = 4096;
    settings.h2.max_response_header_bytes = 256;
    settings.h2.max_response_header_fields = 8;
    settings.h2.local_max_streams = 1;
    settings.h1.body_limits = settings.h2.body_limits;
    settings.h1.max_response_header_bytes = 256;
    settings.h1.max_response_header_fields = 8;
  }
  const bool http1 = flags1 & 0x20;
  if (http1)
    settings.h1.expect_continue_timeout_ms = 0; // no timer-driven sends
  NoResolver resolver;
  ConnectTarget target;
  target.host = "fuzz.example";
  target.port = 80;
  target.name = "http://fuzz.example:80";
  if (http1)
    target.http_version = H2POOL_HTTP_VERSION_1_1;
  const bool proxied = flags1 & 0x40;
  ProxyTarget proxy;
  if (proxied) {
    proxy.kind =
        (flags1 & 0x80) ? ProxyTarget::Kind::socks5h : ProxyTarget::Kind::http;
    proxy.host = "proxy.fuzz.example";
    proxy.port = 3128;
    proxy.name = (flags1 & 0x80) ? "socks5h://proxy.fuzz.example:3128"
                                 : "http://proxy.fuzz.example:3128";
    proxy.has_credentials = true;
    proxy.user = "user";
    proxy.password = "password";
    target.proxy = &proxy;
  }
  FakeOwner owner;
  Request requests[kRequests];
  Probe probes[kRequests];
  for (Probe &p : probes)
    p.flags1 = flags1;
  requests[0].auto_decompress = !(flags1 & 0x10);
  make_request(requests[0], "GET", "http://fuzz.example/", 0, 1, &probes[0]);
  make_request(requests[1], "GET", "http://fuzz.example:8080/q?x=1", 11, 2,
               &probes[1]);
  requests[1].on_headers = on_headers;
  requests[1].on_data = on_data;
  make_request(requests[2], "POST", "https://[::1]/upload", 0, 3, &probes[2]);
  probes[2].upload_size = (flags & 2) ? 70000 : 300;
  requests[2].body_reader = read_body;
  requests[2].body_content_length = int64_t(probes[2].upload_size);
  requests[2].add_content_length = true;
  bool submitted[kRequests] = {};

  {
    Connection conn(base, owner, log, settings, 1, target, resolver, nullptr);
    conn.attach_socket(fds[0]); // the connection owns fds[0] now
    run_loop(base, fds[1]);

    // Stream accounting after every pass: each request still on the
    // connection holds a stream slot, and a draining connection whose last
    // stream has ended must have closed (the pool would wait on it forever).
    auto check_streams = [&] {
      if (conn.state() == Connection::State::closed)
        return;
      size_t outstanding = 0;
      for (int i = 0; i < kRequests; ++i)
        if (submitted[i] && !owner.reset[i] && owner.reported[i] == 0)
          ++outstanding;
      FUZZ_CHECK(conn.active_streams() >= outstanding);
      FUZZ_CHECK(!(conn.state() == Connection::State::draining &&
                   conn.active_streams() == 0));
    };

    // What the pool does when the caller calls h2pool_request_resume_*().
    auto resume = [&] {
      if (conn.state() == Connection::State::closed)
        return;
      if (requests[1].download_paused && submitted[1] && !owner.reset[1] &&
          owner.reported[1] == 0)
        conn.resume_download(requests[1]);
      if (requests[2].upload_deferred && submitted[2] && !owner.reset[2] &&
          owner.reported[2] == 0)
        conn.resume_upload(requests[2]);
    };

    auto submit_when_ready = [&] {
      bool any = false;
      for (int i = 0; i < kRequests; ++i) {
        if (submitted[i] || !conn.has_free_slot())
          continue;
        if (conn.submit(requests[i]) == H2POOL_OK) {
          owner.requests[i] = &requests[i];
          submitted[i] = true;
          any = true;
        }
      }
      if (!any)
        return;
      if ((flags & 8) && submitted[1] && !owner.reset[1] &&
          owner.reported[1] == 0) {
        owner.reset[1] = true;
        conn.reset(requests[1], NGHTTP2_CANCEL);
      }
      if (flags & 0x80)
        conn.drain();
      conn.flush();
    };

    if ((flags & 1) && !http1 && !proxied) {
      static const uint8_t kSettings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
      write_all(base, fds[1], kSettings, sizeof kSettings);
      run_loop(base, fds[1]);
    }
    submit_when_ready();

    // The first frame (the server's SETTINGS, in a well-formed stream) goes
    // alone, so the requests can be on the wire before responses arrive,
    // whatever the chunk size.
    size_t first = http1 || proxied ? 0 : size;
    if (size >= 9 && !http1 && !proxied)
      first = std::min(size, 9 + (size_t(data[0]) << 16 | size_t(data[1]) << 8 |
                                  size_t(data[2])));
    size_t off = 0;
    while (off < size && conn.state() != Connection::State::closed) {
      size_t n = std::min(off < first ? first - off : chunk, size - off);
      write_all(base, fds[1], data + off, n);
      off += n;
      run_loop(base, fds[1]);
      check_streams();
      submit_when_ready();
      resume();
      check_streams();
    }
    ::shutdown(fds[1], SHUT_WR);
    for (int i = 0;
         i < kMaxSettlePasses && conn.state() != Connection::State::closed;
         ++i) {
      run_loop(base, fds[1]);
      submit_when_ready();
      resume();
    }
    // An EOF must close the connection; staying open would leave the pool
    // with a connection that can never finish its streams.
    FUZZ_CHECK(conn.state() == Connection::State::closed);
    FUZZ_CHECK(owner.closed_calls == 1);
    for (int i = 0; i < kRequests; ++i)
      if (submitted[i] && !owner.reset[i])
        FUZZ_CHECK(owner.reported[i] == 1);
  }
  for (Request &req : requests)
    owner.finish_parked(req, settings.h2.body_limits);
  ::close(fds[1]);
  event_base_free(base);
  return 0;
}
