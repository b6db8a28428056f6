// A scriptable HTTP/2 (h2c, prior knowledge) server for tests, benchmarks and
// `h2pool serve`. Built on nghttp2's server API and libevent; it runs its
// own loop thread and listens on a loopback address with an ephemeral port.
//
// Each request is scripted by its URL, so any client (h2pool, nghttp, curl)
// can drive it:
//
//   any path        200 with the body "hello from h2pool test server\n"
//   /echo           200 whose body is the request body
//   query parameters, combinable on any path:
//     status=N        response status (100..599 final statuses only)
//     size=N          body of N bytes given by test_body(seed, N)
//     seed=K          seed for test_body (default 0)
//     delay_ms=N      wait N ms (on a timer, not blocking) before responding
//     header=NAME:VAL an extra response header (repeatable)
//     zeros=N         body of N zero bytes (generated, never held in memory
//                     unless compressed; see ce=)
//     echo_header=NAME  copy the request header NAME (matched lower-case;
//                     several fields of that name joined with ", " in
//                     order) into the response header "x-echo-NAME";
//                     absent when the request had none (repeatable);
//                     request trailers count as request headers here
//
// Body encodings, trailers and interim responses (combinable with the above;
// never applied to a 400 for a bad query):
//     ce=LIST         compress the body (whatever size/seed/zeros/echo/the
//                     default gives) with zlib: LIST is comma-separated
//                     codings applied in the order listed (so
//                     "deflate,gzip" is DEFLATE first, then gzip), each one
//                     of gzip and x-gzip (gzip wrapper), deflate (zlib
//                     wrapper), deflate-raw (raw DEFLATE, announced as
//                     "deflate"), br (brotli, quality 5), zstd (level 3,
//                     with a checksum; zstd_wlog=N forces window log N,
//                     10..30) or identity (unchanged); br and zstd only
//                     when the server was built with libbrotlienc and
//                     libzstd. At most 16.
//                     "content-encoding" announces LIST as given (spaces
//                     around commas kept), with each deflate-raw written
//                     "deflate"; content-length is the encoded size (unless
//                     cl=). Sources are compressed in 64 KiB chunks, so
//                     zeros=104857600&ce=gzip (a ~100 KB "bomb") never holds
//                     the 100 MiB; the encoded body is buffered, at most
//                     64 MiB (beyond that the response is a 500).
//     ce_corrupt=KIND damage the encoded body (needs ce=): "header" flips
//                     every bit of byte 0 (breaks the gzip magic / zlib
//                     header), "crc" flips a byte of the checksum trailer
//                     (gzip CRC32 at size-8, zlib Adler-32 at size-1, zstd
//                     XXH64 at size-4; raw DEFLATE and br have none, so
//                     their last byte), "truncate" cuts
//                     off the second half (keeps size/2 bytes), "trailing"
//                     appends the 16 bytes "trailing garbage".
//     ce_unknown=TOKEN  append TOKEN (one token, e.g. compress) to the
//                     announced content-encoding without transforming the
//                     body; alone, the body is sent plain with
//                     "content-encoding: TOKEN".
//     Whenever ce= or ce_unknown= is given the response also carries
//     "x-body-crc32: XXXXXXXX" (8 lower-case hex digits, zlib's CRC32 of the
//     body bytes exactly as sent) and "x-identity-length: N" (the size of
//     the body before encoding).
//     trailer=NAME:VAL  send a trailer field after the body (repeatable;
//                     the name is lower-cased): the body's last DATA frame
//                     goes without END_STREAM, then a HEADERS frame with
//                     the trailers ends the stream (also for an empty body).
//                     Not sent on HEAD, 204 or 304 responses.
//     early=N         send an interim response HEADERS with :status N
//                     (100..199 except 101) before the final response
//                     (repeatable, sent in order: early=103&early=103).
//                     A 103 carries "link: </style.css>; rel=preload"; any
//                     interim response also carries "x-interim: <i>" (its
//                     1-based position).
//
// Fault injection, per request (query parameters, combinable with the above):
//     goaway=CODE       send GOAWAY with HTTP/2 error CODE when this request
//                       arrives (before answering it)
//     goaway_last=N     its last_stream_id; default -1 = this request's own
//                       stream id. Requests above it are not answered (the
//                       server never processed them; nghttp2 closes them).
//     goaway_debug=TEXT its opaque debug data
//     goaway_graceful=1 two-step: GOAWAY(2^31-1, NO_ERROR) at once, then
//                       after goaway_grace_ms (default 100) the real GOAWAY
//                       (CODE, last_stream_id = goaway_last, or when that is
//                       -1 the last stream the server processed)
//     rst=CODE          reset the stream with RST_STREAM(CODE) at fault_at
//     refuse=P          RST_STREAM(REFUSED_STREAM) before any response, with
//                       probability P (0..1; 1 = always; seeded RNG, see
//                       ServerOptions::seed)
//     drop=close|reset|midframe
//                       at fault_at, close the TCP connection (FIN), or abort
//                       it (SO_LINGER 0, so the peer gets a TCP RST), or
//                       (midframe) write the first 5 bytes of a 9-byte DATA
//                       frame header, 00 40 00 00 00 (length 16384, type
//                       DATA, flags 0; the stream id never comes), then FIN
//                       once everything queued is written; the server then
//                       reads and discards until the client closes
//     stall=1           at fault_at stop sending and never finish; with
//                       fault_at=before the request is never answered
//     fault_at=before|N where rst/drop/stall strike: "before" = before any
//                       response headers; N (default 0) = after the response
//                       headers and N body bytes (N = size: after the whole
//                       body, but without END_STREAM)
//     fault_conn=K      faults (goaway, rst, refuse, drop, stall) strike only
//                       on connection K (1-based, accept order); elsewhere
//                       the request is answered normally
//     fault_times=K     faults strike only for the first K requests with this
//                       exact path (so a retry of the same URL succeeds)
//     fault_delay_ms=N  once at fault_at, pause N ms (sending nothing more on
//                       the stream) before the fault strikes, so the client
//                       has read what came before it (a TCP RST can make the
//                       peer's kernel discard data it has not read yet)
//     cl=N              announce content-length N whatever the body size
//     hdr_count=N       add N response headers "x-big-<i>" ...
//     hdr_size=M        ... each with a value of M bytes (default 16)
//     settings_mcs=N    send SETTINGS with MAX_CONCURRENT_STREAMS=N on this
//                       connection (lowering it mid-flight); once the client
//                       ACKs it, ServerStats::peak_streams_after_settings_ack
//                       tracks the streams open at once on that connection
//
// TLS, ORIGIN frames and 421 for connection coalescing tests: see
// ServerOptions::tls_cert_file, origin_frame and misdirect_host.
//
// Per connection (ConnectionScript: ServerOptions::connection, or
// ServerOptions::connection_script for a script chosen per connection id):
// never send SETTINGS (a silent peer: the server only reads and discards),
// the MAX_CONCURRENT_STREAMS of the first SETTINGS, the initial flow-control
// window, what happens right after SETTINGS (GOAWAY, a protocol error, FIN,
// RST), ignore PINGs (nghttp2_option_set_no_auto_ping_ack), GOAWAY after N
// requests on the connection, pausing reads after each request (slow
// reader). Server-wide (ServerOptions): refuse every Nth stream, and chaos
// (random GOAWAY, refused streams and dropped connections, seeded).
//
// Every response carries "x-request-count: N" (N = requests this server has
// seen, 1-based) and, when the request had a body, "x-request-body-length".
//
// It records what it saw: connections, peak concurrent streams on any one
// connection, every request's method, path, headers and body (up to
// ServerOptions::record_limit requests), the RST_STREAMs clients sent
// (client_resets()), PINGs received, and the faults it injected.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// Not `h2pool::testing`: the public header declares `struct h2pool` in the
// global namespace, and C++ forbids a namespace of the same name beside it.
namespace h2pool_testing {

// Deterministic body bytes: the same (seed, n) always gives the same bytes,
// and different seeds give different bytes, so a test can check that each
// response is byte-exact and reached the right request.
std::string test_body(uint64_t seed, size_t n);

// Writes bytes [offset, offset + n) of the infinite test body for `seed` into
// `out`, so a client can check a streamed body chunk by chunk. Byte i is byte
// (i % 8), least significant first, of splitmix64(splitmix64(seed) +
// (i / 8) * 0x9e3779b97f4a7c15), where splitmix64(x) is Vigna's finaliser of
// x + 0x9e3779b97f4a7c15; other languages can reproduce it from this.
void fill_test_body(uint64_t seed, uint64_t offset, size_t n, uint8_t *out);

// ConnectionScript::after_settings: what a connection does right after it
// has written its SETTINGS, before it reads anything.
enum class AfterSettings {
  // Serve requests.
  none,
  // GOAWAY(after_settings_goaway_code, last_stream_id 0,
  // after_settings_debug): no stream will be processed. Then the server
  // reads and discards until the client closes (nghttp2 itself would close
  // now, and ignores input after such a GOAWAY anyway), so nothing else is
  // sent: no SETTINGS or PING ACK, no response. Counted in
  // ServerStats::goaways_sent.
  goaway,
  // The raw frame after_settings_protocol_error, written after nghttp2's
  // own output (nghttp2 never sends such a frame); then the server reads and
  // discards until the client closes. Counted in protocol_errors_sent.
  protocol_error,
  // FIN once the SETTINGS is written (shutdown(SHUT_WR)); then the server
  // reads and discards until the client closes, so no RST follows. Counted
  // in connections_dropped.
  close,
  // TCP RST (SO_LINGER 0, close) once the SETTINGS is written to the
  // kernel. The RST may make the client's kernel drop the SETTINGS unread.
  // Counted in connections_dropped.
  reset,
};

// The malformed frame AfterSettings::protocol_error writes. Each is a
// connection error the client must answer with GOAWAY (RFC 9113).
enum class ProtocolErrorKind {
  // SETTINGS with the ACK flag and a 6-byte payload (MAX_CONCURRENT_STREAMS
  // = 100): FRAME_SIZE_ERROR (section 6.5).
  settings_ack_with_payload,
  // PING with a 7-byte payload: FRAME_SIZE_ERROR (section 6.7).
  ping_wrong_length,
  // DATA on stream 0 (5 bytes "hello", no flags): PROTOCOL_ERROR
  // (section 6.1).
  data_on_stream_0,
};

// What a connection does besides answering requests. The defaults are a
// well-behaved server.
struct ConnectionScript {
  // false: never send SETTINGS (nor anything else); the client's bytes are
  // read and discarded. after_settings is then moot.
  bool send_settings = true;
  // SETTINGS_MAX_CONCURRENT_STREAMS of the connection's first SETTINGS,
  // instead of ServerOptions::max_concurrent_streams (0: announce 0, so the
  // client may open no stream; nghttp2 refuses any it opens anyway).
  std::optional<uint32_t> settings_mcs_initial;
  // SETTINGS_INITIAL_WINDOW_SIZE of the first SETTINGS (at most 2^31-1);
  // above 65535 the connection window is widened to the same size. Unset:
  // nghttp2's defaults (65535 for both), which stop a client's upload after
  // 64 KiB until the server reads and grants more.
  std::optional<uint32_t> initial_window_size;
  // See AfterSettings.
  AfterSettings after_settings = AfterSettings::none;
  uint32_t after_settings_goaway_code = 0; // NO_ERROR
  std::string after_settings_debug = "after_settings";
  ProtocolErrorKind after_settings_protocol_error =
      ProtocolErrorKind::settings_ack_with_payload;
  // Slow reader: each time a request's HEADERS arrive, once the bytes
  // already read from the socket are processed, the server stops reading
  // the connection's socket for this many ms (a timer; 0: never). A large
  // upload then fills the socket buffers and the client's writes block -
  // provided flow control lets it send that much (see initial_window_size).
  // Responses still go out meanwhile. Counted in ServerStats::read_pauses
  // and read_pauses_ended.
  uint32_t read_pause_ms = 0;
  // Do not answer PINGs (nghttp2_option_set_no_auto_ping_ack).
  bool ignore_ping = false;
  // After this many requests have arrived on the connection (0: never), send
  // GOAWAY(goaway_code, goaway_last_stream_id; -1 = the stream of the Nth
  // request) with goaway_debug, two-step when goaway_graceful (the final
  // GOAWAY goaway_grace_ms after the first).
  uint32_t goaway_after_requests = 0;
  uint32_t goaway_code = 0;
  int32_t goaway_last_stream_id = -1;
  std::string goaway_debug;
  bool goaway_graceful = false;
  uint32_t goaway_grace_ms = 100;
};

// Random faults for chaos tests, drawn per request from an RNG seeded with
// ServerOptions::seed (reproducible up to thread timing). Probabilities are
// per request, 0..1, and exclusive (at most one fault per request).
struct ChaosOptions {
  // GOAWAY(NO_ERROR) whose last_stream_id leaves this request (and any
  // later stream) unprocessed; half of them two-step.
  double goaway = 0;
  // RST_STREAM(REFUSED_STREAM) before any response.
  double refuse = 0;
  // Abort the connection (TCP RST) before the headers or mid-body.
  double drop = 0;
};

struct ServerOptions {
  // Address to listen on; loopback only. "127.0.0.1" or "::1".
  std::string host = "127.0.0.1";
  // 0 picks an ephemeral port.
  uint16_t port = 0;
  // If set, listen on this Unix domain socket instead of host:port: a path
  // (which must not exist), or "@name" for Linux's abstract namespace.
  // base_url() is then "http://localhost".
  std::string unix_socket;
  // SETTINGS_MAX_CONCURRENT_STREAMS sent to clients; 0 means not sent
  // (unlimited).
  uint32_t max_concurrent_streams = 100;
  // Requests recorded for requests(); older ones beyond this are dropped.
  size_t record_limit = 100000;
  // Whether to keep request bodies in the record (echo works regardless).
  bool record_bodies = true;
  // The script of every connection, unless connection_script is set; then
  // it is called (on the server's loop thread, must not block) with each
  // new connection's 1-based id.
  ConnectionScript connection;
  std::function<ConnectionScript(uint64_t connection_id)> connection_script;
  // Deterministic load shedding: every Nth stream the server receives
  // (counted in arrival order of request HEADERS across all connections,
  // 1-based, so with N=2 streams 2, 4, 6, ...) is answered with
  // RST_STREAM(REFUSED_STREAM) as its HEADERS arrive, before any response
  // and before its body is read. Such a stream never reaches a handler: it
  // is not recorded nor counted in ServerStats::requests (nor in
  // x-request-count), only in streams_refused. 0: off.
  uint32_t refuse_every = 0;
  // Random faults (off by default) and the seed of the server's RNG (which
  // also draws refuse=P).
  ChaosOptions chaos;
  uint64_t seed = 1;
  // RFC 9218: announce SETTINGS_NO_RFC7540_PRIORITIES=1 and read clients'
  // PRIORITY_UPDATE frames, so that nghttp2 sends the DATA of more urgent
  // streams (by the priority header, then PRIORITY_UPDATE) first. Off: the
  // nghttp2 default, RFC 7540's tree, which every h2pool stream shares
  // equally.
  bool rfc9218 = false;
  // TLS instead of h2c: the certificate chain and key (PEM files) the
  // server presents, ALPN "h2" only. base_url() is then https://.
  std::string tls_cert_file;
  std::string tls_key_file;
  // RFC 8336: an ORIGIN frame listing these origins ("https://host[:port]")
  // right after each connection's SETTINGS; an empty list sends an empty
  // frame. Unset: none.
  std::optional<std::vector<std::string>> origin_frame;
  // Requests whose :authority names this host (any port) are answered 421
  // Misdirected Request on every connection whose TLS SNI is another name,
  // as a server does that will not serve an origin on a connection set up
  // for another. Empty: never.
  std::string misdirect_host;
  // RFC 8441: announce SETTINGS_ENABLE_CONNECT_PROTOCOL=1 and serve
  // extended CONNECT requests (a CONNECT with :protocol, any protocol and
  // path) as echo tunnels: 200 as soon as the request's HEADERS arrive,
  // then every DATA byte the client sends comes back on the stream, in
  // order; the client's END_STREAM ends the response once all is echoed.
  // Bytes waiting to be echoed are buffered without bound (the server's
  // receive window reopens as they arrive). Each tunnel is recorded as a
  // request when it opens (its body empty) and counted in tunnels_opened.
  // A path with status=N (N not 2xx) refuses the tunnel instead: the
  // scripted response to the path, sent at once.
  // Off: nghttp2 refuses such a request (RST_STREAM(PROTOCOL_ERROR)).
  bool extended_connect = false;
};

// An RST_STREAM the server received from a client.
struct ClientReset {
  uint64_t connection_id = 0;
  int32_t stream_id = 0;
  uint32_t error_code = 0;
};

struct RecordedRequest {
  uint64_t connection_id = 0; // 1-based, in accept order
  int32_t stream_id = 0;
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::string protocol; // :protocol of an extended CONNECT (RFC 8441)
  std::vector<std::pair<std::string, std::string>> headers; // regular only
  std::string body;
};

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0; // open now
  uint64_t peak_connections_open = 0;
  uint32_t peak_concurrent_streams = 0; // max over all connections
  uint64_t requests = 0;                // requests that reached a handler
  uint64_t responses = 0;               // responses fully sent
  // Fault injection and other observations.
  uint64_t goaways_sent = 0;         // GOAWAY frames (each step counts)
  uint64_t streams_refused = 0;      // RST_STREAM(REFUSED_STREAM) injected
                                     // (refuse=, refuse_every, chaos)
  uint64_t streams_reset = 0;        // other RST_STREAMs injected (rst=)
  uint64_t connections_dropped = 0;  // drop=, chaos drops, and
                                     // after_settings close/reset
  uint64_t protocol_errors_sent = 0; // after_settings protocol_error
  uint64_t read_pauses = 0;          // read_pause_ms pauses begun ...
  uint64_t read_pauses_ended = 0;    // ... and ended
  // Bytes read and thrown away by connections that no longer (or never)
  // speak HTTP/2: send_settings=false, after_settings goaway,
  // protocol_error and close, drop=midframe.
  uint64_t bytes_discarded = 0;
  uint64_t streams_stalled = 0;        // stall= reached its point
  uint64_t client_resets = 0;          // RST_STREAMs received from clients
  uint64_t pings_received = 0;         // PINGs (not ACKs) from clients
  uint64_t settings_lowered = 0;       // settings_mcs= SETTINGS sent
  uint64_t settings_lowered_acked = 0; // ... and ACKed by the client
  uint32_t peak_streams_after_settings_ack = 0;
  uint64_t priority_updates = 0; // PRIORITY_UPDATE frames (rfc9218 only)
  // extended_connect: tunnels opened, and bytes echoed on them.
  uint64_t tunnels_opened = 0;
  uint64_t tunnel_bytes_echoed = 0;
};

class TestServer {
public:
  explicit TestServer(ServerOptions options = {});
  ~TestServer(); // stops the server
  TestServer(const TestServer &) = delete;
  TestServer &operator=(const TestServer &) = delete;

  // Binds, listens and starts the loop thread. Returns 0, or a negative errno
  // value. On success port() is the bound port.
  int start();
  // Stops the loop thread and closes every connection. Idempotent.
  void stop();

  uint16_t port() const;
  // "http://127.0.0.1:PORT" (or "http://[::1]:PORT").
  std::string base_url() const;

  // Thread-safe snapshots.
  ServerStats stats() const;
  std::vector<RecordedRequest> requests() const;
  // The RST_STREAMs received from clients, in arrival order (the first
  // ServerOptions::record_limit of them).
  std::vector<ClientReset> client_resets() const;

  // Blocks until `pred(stats())` holds or `timeout` passes; returns whether it
  // held. Lets a test wait for the server-side effect of what it did (a
  // connection closed, a request recorded) instead of sleeping.
  bool wait_for_stats(const std::function<bool(const ServerStats &)> &pred,
                      std::chrono::milliseconds timeout) const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace h2pool_testing
