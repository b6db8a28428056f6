// An in-process TCP relay that models a long fat pipe, for tests and
// benchmarks of HTTP/2 flow-control windows: put it between h2pool and a
// loopback server and every WINDOW_UPDATE (and PING ACK) takes a real round
// trip to come back, so a stream's throughput is bounded by window / RTT as
// on a WAN.
//
// Each direction of each relayed connection is a link of its own with a
// one-way propagation delay and, optionally, a bottleneck rate. A chunk read
// from one side at time t departs at d = max(t, link_free_at) + len / rate
// (link_free_at becomes d) and is written to the other side no earlier than
// d + one_way_delay, in order. An EOF travels the same way, behind the bytes
// read before it, and is forwarded as shutdown(SHUT_WR); the connection is
// closed once both directions have forwarded theirs. An error on either side
// resets both.
//
// What a user must know:
//  - The relay terminates TCP on both legs (a middlebox, not a packet-level
//    emulator): the sender's kernel sees its bytes acknowledged at once, so
//    TCP's own congestion control never sees the delay. Only feedback from
//    the peer's application (HTTP/2 WINDOW_UPDATE, PING ACK, responses) does,
//    which is what flow-control tests need.
//  - Pacing is per read: the relay reads at most about 1 ms of link time at
//    once (between 1460 bytes, one segment, and 64 KiB; always 64 KiB when
//    unpaced), and its loop waits in ppoll() with a nanosecond timeout, so a
//    chunk is written late by scheduling latency (usually tens of
//    microseconds, more on a loaded machine), never early.
//  - Besides queue_limit_bytes, the kernel socket buffers on both legs hold
//    bytes too (on Linux, autotuned up to net.ipv4.tcp_rmem / tcp_wmem), so
//    a sender can get that much further ahead before it is pushed back.
//    Bytes waiting in the relay's receive buffer are not yet timestamped:
//    they act like a larger bottleneck queue.
//  - Loopback only: it listens on 127.0.0.1 and connects to 127.0.0.1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace h2pool_testing {

struct LinkOptions {
  // Added to each direction independently: RTT = 2 x this.
  uint32_t one_way_delay_ms = 25;
  // Bottleneck rate per direction; 0 = unpaced (only the delay applies).
  uint64_t rate_bytes_per_sec = 0;
  // Bytes a direction holds (read, not yet written) before the relay stops
  // reading from the sender, which TCP then pushes back on. 0 = rate x RTT +
  // 1 MiB, or 8 MiB when unpaced. A direction may exceed it by less than one
  // read.
  size_t queue_limit_bytes = 0;
};

// Thread-safe: every member may be called from any thread; the relay runs
// its own loop thread.
class DelayRelay {
public:
  // Listens on 127.0.0.1, an ephemeral port, and relays each accepted
  // connection to 127.0.0.1:target_port through `link`. Check ok().
  DelayRelay(uint16_t target_port, const LinkOptions &link);
  // Stops the loop thread and closes every socket, whatever is still queued
  // (peers see EOF or a reset). Returns within one loop turn.
  ~DelayRelay();
  DelayRelay(const DelayRelay &) = delete;
  DelayRelay &operator=(const DelayRelay &) = delete;

  // Listening and the loop thread running.
  bool ok() const;
  // The listening port (0 when the relay could not listen).
  uint16_t port() const;
  // Connections accepted so far, including any the target refused.
  uint64_t connections() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace h2pool_testing

// The namespace the relay was first specified in; the test helpers all live
// in h2pool_testing, so this only keeps that spelling compiling.
namespace h2pool_test {
using h2pool_testing::DelayRelay;
using h2pool_testing::LinkOptions;
} // namespace h2pool_test
