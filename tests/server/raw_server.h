// A raw HTTP/2 frame (and HTTP/1.1 byte) scripter for tests: a loopback
// listener whose connections are driven by a test-supplied script of raw bytes,
// for what a real server (nghttp2's) would never send: DATA before HEADERS, bad
// padding, oversize frames, broken HPACK, malformed pseudo-headers,
// CONTINUATION, PING and SETTINGS floods, HPACK bombs.
//
// Each accepted connection runs the script on its own thread with blocking,
// deadline-bounded I/O. RawConnection reads (and keeps) the client's preface
// and frames, enough to know which streams the client opened (1, 3, 5, ...).
// When the script returns, the connection keeps reading and discarding until
// the client closes it (or the server stops), then closes.
//
// With RawTlsOptions the server speaks TLS (OpenSSL): each connection's
// thread completes the handshake (ALPN as configured) before the script
// runs, and everything the script sends and reads goes through TLS; reset()
// is still a TCP RST. A connection whose handshake fails never runs the
// script (RawServerStats::tls_handshake_failures).
//
// Frame builders below produce exact wire bytes; HPACK helpers produce header
// block fragments (literal representations, no Huffman) to put in them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace h2pool_testing {

class TlsContext;
class TlsStream;

namespace h2frame {

// Frame types and flags (RFC 9113 section 6).
enum : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
enum : uint8_t {
  kEndStream = 0x1,
  kAck = 0x1,
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};

// Any frame: 9-byte header + payload. The length field is the payload's
// size, unless `length_override` is given (to lie about it).
std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                  std::string_view payload,
                  std::optional<uint32_t> length_override = std::nullopt);
std::string settings(const std::vector<std::pair<uint16_t, uint32_t>> &iv = {});
std::string settings_ack();
std::string headers(uint32_t stream_id, std::string_view block,
                    uint8_t flags = kEndHeaders);
std::string continuation(uint32_t stream_id, std::string_view block,
                         uint8_t flags = 0);
std::string data(uint32_t stream_id, std::string_view payload,
                 uint8_t flags = 0);
std::string rst_stream(uint32_t stream_id, uint32_t error_code);
std::string goaway(uint32_t last_stream_id, uint32_t error_code,
                   std::string_view debug = {});
std::string ping(uint64_t opaque = 0, bool ack = false);
std::string window_update(uint32_t stream_id, uint32_t increment);

// HPACK (RFC 7541), no Huffman coding.
// An integer with an N-bit prefix; `first` carries the pattern bits above it.
std::string hpack_int(uint64_t value, int prefix_bits, uint8_t first);
// A string literal (H=0).
std::string hpack_string(std::string_view s);
// Indexed field (static table 1..61, dynamic from 62).
std::string hpack_indexed(uint64_t index);
// Literal without indexing, new name (0x00).
std::string hpack_literal(std::string_view name, std::string_view value);
// Literal with incremental indexing, new name (0x40): adds a dynamic entry.
std::string hpack_literal_indexed(std::string_view name,
                                  std::string_view value);
// ":status: N" as a literal with an indexed name (static index 8).
std::string hpack_status(int status);

} // namespace h2frame

// A frame the client sent.
struct ClientFrame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
};

class RawConnection {
public:
  using Ms = std::chrono::milliseconds;

  // `closer` closes the socket (the server tracks open sockets so stop()
  // can unblock a script). `fd` must be non-blocking.
  RawConnection(int fd, uint64_t id, const std::atomic<bool> &stopping,
                std::function<void(int)> closer);
  ~RawConnection();
  RawConnection(const RawConnection &) = delete;
  RawConnection &operator=(const RawConnection &) = delete;

  uint64_t id() const { return id_; }
  // The client's address as getpeername() reports it: "127.0.0.1:PORT",
  // "[::1]:PORT", or "" for a Unix socket or on error.
  std::string peer_address() const;

  // Runs the server side of a TLS handshake on the socket; from then on
  // every read and write goes through TLS. Returns whether it completed in
  // time. (RawServer does this before the script when it serves TLS.)
  bool tls_handshake(const TlsContext &context, Ms timeout = Ms(10000));
  bool tls() const { return tls_ != nullptr; }
  // The protocol ALPN selected ("" when none, or without TLS).
  const std::string &alpn() const { return alpn_; }

  // Reads the 24-byte client preface. Returns whether it arrived intact.
  bool read_preface(Ms timeout = Ms(5000));
  // The next client frame, or nullopt on timeout, EOF or error (closed()
  // tells which). Frames are also appended to frames().
  std::optional<ClientFrame> read_frame(Ms timeout = Ms(5000));
  // Reads the preface if not yet read, then frames until a HEADERS opening a
  // new stream arrives; returns its id, or 0 on timeout/EOF.
  uint32_t wait_request(Ms timeout = Ms(5000));
  // Writes all of `bytes`; false once the peer is gone (or on timeout).
  bool send(std::string_view bytes, Ms timeout = Ms(5000));
  // Like send(), returning how many bytes went before the peer left or the
  // timeout passed.
  size_t send_counted(std::string_view bytes, Ms timeout);
  // Writes `chunk` repeatedly, without reading, until the peer goes away,
  // `max_bytes` have been written or `timeout` passes. Returns the bytes
  // written.
  uint64_t flood(std::string_view chunk, uint64_t max_bytes, Ms timeout);
  // Like flood(), with a generator per chunk.
  uint64_t flood_with(const std::function<std::string(uint64_t i)> &gen,
                      uint64_t max_bytes, Ms timeout);
  // HTTP/1.1 scripts, which read raw bytes rather than frames: everything
  // up to and including the first `delim` (a request head ends at
  // "\r\n\r\n"), or nullopt on timeout/EOF.
  std::optional<std::string> read_until(std::string_view delim,
                                        Ms timeout = Ms(5000));
  // Exactly `n` bytes, or nullopt on timeout/EOF.
  std::optional<std::string> read_bytes(size_t n, Ms timeout = Ms(5000));
  // Reads and discards until EOF/error; returns whether that came in time.
  bool wait_closed(Ms timeout = Ms(5000));
  // Aborts the connection (SO_LINGER 0: TCP RST; over TLS no close_notify
  // either) or closes it (over TLS: close_notify, then FIN).
  void reset();
  void close();
  // Sends `bytes` and closes (with close_notify over TLS) in one TCP
  // segment, so the peer reads the data and the end of the stream
  // together: a server that hangs up right after what it says, with no
  // gap in which the client could act on it.
  bool send_and_close(std::string_view bytes);
  // Over TLS: FIN without close_notify, a truncated TLS stream. Without
  // TLS the same as close().
  void close_without_notify();

  bool closed() const { return closed_; }
  const std::vector<ClientFrame> &frames() const { return frames_; }

private:
  using Deadline = std::chrono::steady_clock::time_point;
  enum class Io { done, want_read, want_write, closed };

  // Fills the read buffer with at least `n` bytes.
  bool fill(size_t n, Deadline deadline);
  // One non-blocking read or write, plain or TLS. `n` is the bytes moved.
  Io read_some(char *buf, size_t len, size_t &n);
  Io write_some(std::string_view bytes, size_t &n);
  // Waits (at most until `deadline`, in slices that notice stop()) for the
  // socket to be ready for what `io` wants.
  void wait_ready(Io io, Deadline deadline);

  int fd_;
  uint64_t id_;
  const std::atomic<bool> &stopping_;
  std::function<void(int)> closer_;
  bool preface_read_ = false;
  bool closed_ = false;
  uint32_t last_stream_ = 0;
  std::string in_;
  std::vector<ClientFrame> frames_;
  std::unique_ptr<TlsStream> tls_;
  std::string alpn_;
};

// Serving TLS: the certificate chain and key (PEM files the test made), and
// what ALPN selects.
struct RawTlsOptions {
  std::string cert_file;
  std::string key_file;
  // The protocol selected when the client offers it; when it does not (or
  // this is empty), no protocol is selected and the handshake goes on
  // without ALPN.
  std::string alpn = "h2";
  // Select `alpn` even when the client did not offer it (a client must
  // then fail the handshake). Needs the client to send ALPN at all.
  bool alpn_force = false;
};

// What RawServer saw from clients, across all connections.
struct RawServerStats {
  uint64_t connections = 0;
  uint64_t scripts_finished = 0;
  uint64_t connections_closed = 0;
  // TLS only: handshakes completed, and failed (or timed out; the script
  // then never runs).
  uint64_t tls_handshakes = 0;
  uint64_t tls_handshake_failures = 0;
  // GOAWAY / RST_STREAM frames received from clients, by error code.
  std::vector<uint32_t> client_goaway_codes;
  std::vector<uint32_t> client_rst_codes;
};

class RawServer {
public:
  using Script = std::function<void(RawConnection &)>;

  explicit RawServer(Script script);
  // Serves TLS; start() fails with -EINVAL if the certificate or key cannot
  // be loaded.
  RawServer(Script script, RawTlsOptions tls);
  ~RawServer();
  RawServer(const RawServer &) = delete;
  RawServer &operator=(const RawServer &) = delete;

  // Listens on 127.0.0.1 with an ephemeral port. 0 or a negative errno.
  int start();
  // Listens on a Unix domain socket instead: a path (which must not exist)
  // or, with `abstract`, a name in Linux's abstract namespace. 0 or a
  // negative errno.
  int start_unix(const std::string &path, bool abstract = false);
  // Stops accepting, unblocks and joins every connection thread. Idempotent.
  void stop();

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT", or https:// when serving TLS.
  std::string base_url() const;
  RawServerStats stats() const;
  bool wait_for_stats(const std::function<bool(const RawServerStats &)> &pred,
                      std::chrono::milliseconds timeout) const;

private:
  // The checks and TLS setup both start()s begin with: 0 or -errno.
  int prepare_start();
  void accept_loop();
  void run_connection(int fd, uint64_t id);

  Script script_;
  std::optional<RawTlsOptions> tls_options_;
  std::unique_ptr<TlsContext> tls_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  mutable std::condition_variable_any cv_;
  std::vector<std::thread> threads_;
  std::vector<int> fds_;
  RawServerStats stats_;
};

} // namespace h2pool_testing
