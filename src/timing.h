// Per-request timings, with libcurl's semantics (CURLINFO_*_TIME_T): every
// time is measured from the request's submission and is cumulative, so
// namelookup <= connect <= appconnect <= pretransfer <= starttransfer <=
// total for the phases reached.
//
// The edges are real reads of CLOCK_MONOTONIC, not libevent's cached loop
// time, which can be a whole loop turn old. Edges that many requests reach
// in the same pass (bytes read in one batch, request heads serialised in one
// output pass, a batch of placements) share one reading of the clock taken
// when the pass begins (ClockPass): that is when the bytes arrived or left,
// and it spares a clock read per request and edge.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "h2pool.h"

namespace h2pool_core {

// Nanoseconds of CLOCK_MONOTONIC; never 0 (0 marks "not reached" below).
int64_t monotonic_ns();

// One reading of the clock for the duration of a pass over I/O on the loop
// thread; pass_now_ns() returns the current pass's reading, or a fresh one
// outside any pass. A nested pass keeps the outer reading, unless it is
// `fresh` (an output pass inside a read pass: callbacks in between may have
// taken a while), and the outer one applies again once it ends.
class ClockPass {
public:
  explicit ClockPass(bool fresh = false);
  ~ClockPass();
  ClockPass(const ClockPass &) = delete;
  ClockPass &operator=(const ClockPass &) = delete;

private:
  int64_t saved_;
};
int64_t pass_now_ns();

// When one connection's setup phases ended (monotonic ns; 0: not reached),
// and whom it reached.
struct ConnectionTimes {
  int64_t resolved = 0;      // name known, TCP connect begins
  int64_t tcp_connected = 0; // TCP (or the attached socket) is up
  int64_t tls_done = 0;      // TLS handshake finished; 0 for cleartext
  int64_t established = 0;   // the byte stream was handed to a session
  std::string remote_ip;     // numeric; empty if unknown
  uint16_t remote_port = 0;
  bool tls = false;
};

// The request's own edges (monotonic ns; 0: not reached), and those of the
// connection it went to or failed with.
struct RequestTimes {
  int64_t submitted = 0;
  int64_t placed = 0;      // put on a connection (the last attempt's)
  int64_t pretransfer = 0; // request head handed to the transport
  int64_t first_byte = 0;  // first byte of the response
  int64_t resolved = 0;    // the connection's edges, as in ConnectionTimes
  int64_t tcp_connected = 0;
  int64_t tls_done = 0;
  uint32_t num_connects = 0;
  bool has_connection = false;
  bool tls = false;
  bool reused = false;

  // The request goes to (or failed with) a connection whose times are `c`.
  // `reused`: see h2pool_response_connection_reused() in h2pool.h.
  void note_connection(const ConnectionTimes &c, bool reused_connection);
  // Starts a new attempt: the edges of the last one no longer apply.
  void new_attempt() { pretransfer = first_byte = 0; }
};

// What a request reports, read by the public accessors: its edges as of
// `end` (completion, or the delivery of a streamed response's head), turned
// into microseconds from submission only when asked for, so completing a
// request costs a copy and one clock read.
struct Timings {
  RequestTimes edges;
  int64_t end = 0;
  std::string remote_ip;
  uint16_t remote_port = 0;

  // Microseconds from submission to the end of phase `which`; -1 if it was
  // not reached (or `which` is no phase).
  int64_t us(int which) const;
  bool reused() const { return edges.has_connection && edges.reused; }
};

// Timings that are usually absent: an error carries them only once a
// request completes with it, and most errors are made and copied without
// (a Request holds two), so they cost a null pointer until then.
class TimingsBox {
public:
  TimingsBox() noexcept = default;
  TimingsBox(const TimingsBox &o)
      : p_(o.p_ ? std::make_unique<Timings>(*o.p_) : nullptr) {}
  TimingsBox &operator=(const TimingsBox &o) {
    if (this != &o)
      p_ = o.p_ ? std::make_unique<Timings>(*o.p_) : nullptr;
    return *this;
  }
  TimingsBox(TimingsBox &&) noexcept = default;
  TimingsBox &operator=(TimingsBox &&) noexcept = default;

  const Timings *get() const { return p_.get(); }
  void set(const Timings &t) { p_ = std::make_unique<Timings>(t); }

private:
  std::unique_ptr<Timings> p_;
};

} // namespace h2pool_core
