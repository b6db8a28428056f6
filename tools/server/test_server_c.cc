// C shim over TestServer for the CMocka tests of the public C API. No
// exception may cross into C, so every entry point that can allocate catches.
#include "test_server_c.h"

#include <cerrno>
#include <memory>
#include <new>
#include <system_error>

#include "test_server.h"

using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

struct h2ts {
  explicit h2ts(ServerOptions options) : server(std::move(options)) {}
  TestServer server;
};

extern "C" {

int h2ts_start(uint32_t max_concurrent_streams, h2ts **out) {
  if (!out) {
    return -EINVAL;
  }
  *out = nullptr;
  try {
    ServerOptions options;
    options.max_concurrent_streams = max_concurrent_streams;
    auto ts = std::make_unique<h2ts>(std::move(options));
    if (int rv = ts->server.start(); rv != 0) {
      return rv;
    }
    *out = ts.release();
    return 0;
  } catch (const std::bad_alloc &) {
    return -ENOMEM;
  } catch (const std::system_error &e) {
    return e.code().value() > 0 ? -e.code().value() : -EIO;
  } catch (...) {
    return -EIO;
  }
}

void h2ts_stop(h2ts *ts) { delete ts; }

uint16_t h2ts_port(const h2ts *ts) { return ts ? ts->server.port() : 0; }

uint64_t h2ts_connections_accepted(const h2ts *ts) {
  return ts ? ts->server.stats().connections_accepted : 0;
}

uint64_t h2ts_peak_connections_open(const h2ts *ts) {
  return ts ? ts->server.stats().peak_connections_open : 0;
}

uint32_t h2ts_peak_concurrent_streams(const h2ts *ts) {
  return ts ? ts->server.stats().peak_concurrent_streams : 0;
}

uint64_t h2ts_requests(const h2ts *ts) {
  return ts ? ts->server.stats().requests : 0;
}

void h2ts_test_body(uint64_t seed, size_t n, uint8_t *out) {
  if (out) {
    h2pool_testing::fill_test_body(seed, 0, n, out);
  }
}

void h2ts_fill_test_body(uint64_t seed, uint64_t offset, size_t n,
                         uint8_t *out) {
  if (out) {
    h2pool_testing::fill_test_body(seed, offset, n, out);
  }
}

} // extern "C"
