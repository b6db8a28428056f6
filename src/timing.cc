#include "timing.h"

#include "error.h"
#include "request.h"

#include <time.h>

namespace h2pool_core {

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  return ns ? ns : 1;
}

namespace {
thread_local int64_t pass_reading = 0; // 0: no pass under way
} // namespace

ClockPass::ClockPass(bool fresh) : saved_(pass_reading) {
  if (fresh || pass_reading == 0)
    pass_reading = monotonic_ns();
}

ClockPass::~ClockPass() { pass_reading = saved_; }

int64_t pass_now_ns() { return pass_reading ? pass_reading : monotonic_ns(); }

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

int64_t Timings::us(int which) const {
  const RequestTimes &e = edges;
  // An edge from before the submission (a connection another request
  // opened) counts as 0: this request did not wait for it.
  auto since = [&e](int64_t t) -> int64_t {
    if (t == 0 || e.submitted == 0)
      return -1;
    return t > e.submitted ? (t - e.submitted) / 1000 : 0;
  };
  switch (which) {
  case H2POOL_TIMING_QUEUED:
    return since(e.placed);
  case H2POOL_TIMING_NAMELOOKUP:
  case H2POOL_TIMING_CONNECT:
  case H2POOL_TIMING_APPCONNECT:
    if (!e.has_connection || (which == H2POOL_TIMING_APPCONNECT && !e.tls))
      return -1;
    if (e.reused)
      return 0; // as libcurl: a reused connection cost nothing to set up
    return since(which == H2POOL_TIMING_NAMELOOKUP ? e.resolved
                 : which == H2POOL_TIMING_CONNECT  ? e.tcp_connected
                                                   : e.tls_done);
  case H2POOL_TIMING_PRETRANSFER:
    return since(e.pretransfer);
  case H2POOL_TIMING_STARTTRANSFER:
    return since(e.first_byte);
  case H2POOL_TIMING_TOTAL:
    return since(end);
  default:
    return -1;
  }
}

} // namespace h2pool_core

// The public accessors, for responses and errors alike.
namespace {

using h2pool_core::Timings;

int64_t timing_us(const Timings *t, h2pool_timing which) {
  return t ? t->us(int(which)) : -1;
}

} // namespace

extern "C" {

int64_t h2pool_response_timing_us(const h2pool_response *resp,
                                  h2pool_timing which) {
  return timing_us(resp ? &resp->timings : nullptr, which);
}

int h2pool_response_connection_reused(const h2pool_response *resp) {
  return resp ? int(resp->timings.reused()) : int(H2POOL_ERR_INVALID_ARGUMENT);
}

const char *h2pool_response_remote_ip(const h2pool_response *resp) {
  return resp ? resp->timings.remote_ip.c_str() : "";
}

int h2pool_response_remote_port(const h2pool_response *resp) {
  return resp ? resp->timings.remote_port : 0;
}

int h2pool_response_num_connects(const h2pool_response *resp) {
  return resp ? int(resp->timings.edges.num_connects) : 0;
}

int64_t h2pool_error_timing_us(const h2pool_error *err, h2pool_timing which) {
  return timing_us(err ? err->timings.get() : nullptr, which);
}

int h2pool_error_connection_reused(const h2pool_error *err) {
  if (err == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return err->timings.get() ? int(err->timings.get()->reused()) : 0;
}

const char *h2pool_error_remote_ip(const h2pool_error *err) {
  return err && err->timings.get() ? err->timings.get()->remote_ip.c_str() : "";
}

int h2pool_error_remote_port(const h2pool_error *err) {
  return err && err->timings.get() ? err->timings.get()->remote_port : 0;
}

int h2pool_error_num_connects(const h2pool_error *err) {
  return err && err->timings.get() ? int(err->timings.get()->edges.num_connects)
                                   : 0;
}

} // extern "C"
