#include "timing.h"

#include "error.h"
#include "request.h"

#include <time.h>

#include <algorithm>

namespace h2pool_core {

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  return ns ? ns : 1;
}

void RequestTimes::note_connection(const ConnectionTimes &c,
                                   bool reused_connection) {
  has_connection = true;
  tls = c.tls;
  reused = reused_connection;
  resolved = c.resolved;
  tcp_connected = c.tcp_connected;
  tls_done = c.tls_done;
  if (!reused_connection && c.established)
    ++num_connects;
}

void RequestTimes::compute(int64_t now, Timings *out) const {
  // Microseconds from submission; an edge from before the submission (a
  // connection another request opened) counts as 0: this request did not
  // wait for it.
  auto since = [this](int64_t t) -> int64_t {
    if (t == 0 || submitted == 0)
      return -1;
    return std::max<int64_t>(0, (t - submitted) / 1000);
  };
  int64_t *us = out->us;
  us[H2POOL_TIMING_QUEUED] = since(placed);
  if (has_connection && reused) {
    // As libcurl: a reused connection cost nothing to set up.
    us[H2POOL_TIMING_NAMELOOKUP] = 0;
    us[H2POOL_TIMING_CONNECT] = 0;
    us[H2POOL_TIMING_APPCONNECT] = tls ? 0 : -1;
  } else if (has_connection) {
    us[H2POOL_TIMING_NAMELOOKUP] = since(resolved);
    us[H2POOL_TIMING_CONNECT] = since(tcp_connected);
    us[H2POOL_TIMING_APPCONNECT] = tls ? since(tls_done) : -1;
  } else {
    us[H2POOL_TIMING_NAMELOOKUP] = -1;
    us[H2POOL_TIMING_CONNECT] = -1;
    us[H2POOL_TIMING_APPCONNECT] = -1;
  }
  us[H2POOL_TIMING_PRETRANSFER] = since(pretransfer);
  us[H2POOL_TIMING_STARTTRANSFER] = since(first_byte);
  us[H2POOL_TIMING_TOTAL] = since(now);
  out->reused = has_connection && reused;
  out->num_connects = num_connects;
}

} // namespace h2pool_core

// The public accessors, for responses and errors alike.
namespace {

using h2pool_core::Timings;

int64_t timing_us(const Timings *t, h2pool_timing which) {
  if (t == nullptr || int(which) < 0 || int(which) > H2POOL_TIMING_TOTAL)
    return -1;
  return t->us[int(which)];
}

} // namespace

extern "C" {

int64_t h2pool_response_timing_us(const h2pool_response *resp,
                                  h2pool_timing which) {
  return timing_us(resp ? &resp->timings : nullptr, which);
}

int h2pool_response_connection_reused(const h2pool_response *resp) {
  return resp ? int(resp->timings.reused) : int(H2POOL_ERR_INVALID_ARGUMENT);
}

const char *h2pool_response_remote_ip(const h2pool_response *resp) {
  return resp ? resp->timings.remote_ip.c_str() : "";
}

int h2pool_response_remote_port(const h2pool_response *resp) {
  return resp ? resp->timings.remote_port : 0;
}

int h2pool_response_num_connects(const h2pool_response *resp) {
  return resp ? int(resp->timings.num_connects) : 0;
}

int64_t h2pool_error_timing_us(const h2pool_error *err, h2pool_timing which) {
  return timing_us(err ? &err->timings : nullptr, which);
}

int h2pool_error_connection_reused(const h2pool_error *err) {
  return err ? int(err->timings.reused) : int(H2POOL_ERR_INVALID_ARGUMENT);
}

const char *h2pool_error_remote_ip(const h2pool_error *err) {
  return err ? err->timings.remote_ip.c_str() : "";
}

int h2pool_error_remote_port(const h2pool_error *err) {
  return err ? err->timings.remote_port : 0;
}

int h2pool_error_num_connects(const h2pool_error *err) {
  return err ? int(err->timings.num_connects) : 0;
}

} // extern "C"
