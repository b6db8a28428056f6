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
//
// Every response carries "x-request-count: N" (N = requests this server has
// seen, 1-based) and, when the request had a body, "x-request-body-length".
//
// It records what it saw: connections, peak concurrent streams on any one
// connection, and every request's method, path, headers and body (up to
// ServerOptions::record_limit requests).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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

struct ServerOptions {
  // Address to listen on; loopback only. "127.0.0.1" or "::1".
  std::string host = "127.0.0.1";
  // 0 picks an ephemeral port.
  uint16_t port = 0;
  // SETTINGS_MAX_CONCURRENT_STREAMS sent to clients; 0 means not sent
  // (unlimited).
  uint32_t max_concurrent_streams = 100;
  // Requests recorded for requests(); older ones beyond this are dropped.
  size_t record_limit = 100000;
  // Whether to keep request bodies in the record (echo works regardless).
  bool record_bodies = true;
};

struct RecordedRequest {
  uint64_t connection_id = 0;  // 1-based, in accept order
  int32_t stream_id = 0;
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // regular only
  std::string body;
};

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;     // open now
  uint64_t peak_connections_open = 0;
  uint32_t peak_concurrent_streams = 0;  // max over all connections
  uint64_t requests = 0;                 // requests that reached a handler
  uint64_t responses = 0;                // responses fully sent
};

class TestServer {
 public:
  explicit TestServer(ServerOptions options = {});
  ~TestServer();  // stops the server
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

  // Blocks until `pred(stats())` holds or `timeout` passes; returns whether it
  // held. Lets a test wait for the server-side effect of what it did (a
  // connection closed, a request recorded) instead of sleeping.
  bool wait_for_stats(const std::function<bool(const ServerStats &)> &pred,
                      std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace h2pool_testing
