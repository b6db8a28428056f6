// Shared machinery for the fault tests: a pool wrapper whose requests record
// everything their completion callback saw (copied: it is borrowed), waits
// bounded by deadlines, and small helpers (RSS, stats).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "h2pool.h"

namespace faults {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;
using namespace std::chrono_literals;

// Generous bound for anything that should happen "soon" on loopback, even
// under sanitizers.
constexpr Ms kWait = 15s;

// What one completion callback saw.
struct Call {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  bool ok = false;
  int code = H2POOL_OK;
  int64_t http2_code = -1;
  int32_t err_stream_id = 0;
  int64_t goaway_last = -1;
  std::string message;
  bool has_resp = false;
  int status = 0;
  std::string body;
  uint64_t conn_id = 0;
  int32_t stream_id = 0;
  int protocol = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers, trailers;
  uint64_t id = 0;
  // h2pool_{response,error}_timing_us of CONNECT and APPCONNECT.
  int64_t connect_us = -1, appconnect_us = -1;
  Clock::time_point submitted;
  Clock::time_point done_at;

  bool wait(Ms timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return calls > 0; });
  }
  Ms elapsed() const {
    return std::chrono::duration_cast<Ms>(done_at - submitted);
  }
  std::string describe() {
    std::lock_guard<std::mutex> lock(mu);
    return "calls=" + std::to_string(calls) + " ok=" + std::to_string(ok) +
           " code=" + std::to_string(code) + " (" + h2pool_strerror(code) +
           ") http2=" + std::to_string(http2_code) +
           " status=" + std::to_string(status) +
           " body=" + std::to_string(body.size()) +
           "B conn=" + std::to_string(conn_id) +
           " stream=" + std::to_string(stream_id) + " msg='" + message + "'";
  }

  static void callback(const h2pool_response *resp, const h2pool_error *err,
                       void *user_data) {
    auto c = static_cast<Call *>(user_data);
    {
      std::lock_guard<std::mutex> lock(c->mu);
      ++c->calls;
      if (c->calls == 1) {
        c->done_at = Clock::now();
        c->ok = err == nullptr;
        c->connect_us =
            resp ? h2pool_response_timing_us(resp, H2POOL_TIMING_CONNECT)
                 : h2pool_error_timing_us(err, H2POOL_TIMING_CONNECT);
        c->appconnect_us =
            resp ? h2pool_response_timing_us(resp, H2POOL_TIMING_APPCONNECT)
                 : h2pool_error_timing_us(err, H2POOL_TIMING_APPCONNECT);
        if (err) {
          c->code = h2pool_error_code(err);
          c->http2_code = h2pool_error_http2_code(err);
          c->err_stream_id = h2pool_error_stream_id(err);
          c->goaway_last = h2pool_error_goaway_last_stream_id(err);
          c->message = h2pool_error_message(err);
        }
        if (resp) {
          c->has_resp = true;
          c->status = h2pool_response_status(resp);
          size_t n = 0;
          const uint8_t *b = h2pool_response_body(resp, &n);
          c->body.assign(reinterpret_cast<const char *>(b), n);
          c->conn_id = h2pool_response_connection_id(resp);
          c->stream_id = h2pool_response_stream_id(resp);
          c->protocol = h2pool_response_protocol(resp);
          c->reason = h2pool_response_reason(resp);
          h2pool_header h;
          for (size_t i = 0; h2pool_response_header_at(resp, i, &h) == 0; ++i)
            c->headers.emplace_back(std::string(h.name, h.name_len),
                                    std::string(h.value, h.value_len));
          for (size_t i = 0; h2pool_response_trailer_at(resp, i, &h) == 0; ++i)
            c->trailers.emplace_back(std::string(h.name, h.name_len),
                                     std::string(h.value, h.value_len));
        }
      }
    }
    c->cv.notify_all();
  }
};

class Config {
public:
  Config() { EXPECT_EQ(h2pool_config_new(&cfg_), H2POOL_OK); }
  ~Config() { h2pool_config_free(cfg_); }
  Config(const Config &) = delete;
  Config &operator=(const Config &) = delete;
  h2pool_config *get() const { return cfg_; }
  operator h2pool_config *() const { return cfg_; }

private:
  h2pool_config *cfg_ = nullptr;
};

class Opts {
public:
  Opts() { EXPECT_EQ(h2pool_request_opts_new(&opts_), H2POOL_OK); }
  ~Opts() { h2pool_request_opts_free(opts_); }
  Opts(const Opts &) = delete;
  Opts &operator=(const Opts &) = delete;
  operator h2pool_request_opts *() const { return opts_; }

private:
  h2pool_request_opts *opts_ = nullptr;
};

// A pool plus the Calls of its requests. The pool is destroyed first, so no
// callback can outlive its Call.
class Client {
public:
  explicit Client(const h2pool_config *cfg) {
    EXPECT_EQ(h2pool_create(cfg, &pool_), H2POOL_OK);
  }
  ~Client() { destroy(); }
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  void destroy() {
    h2pool_destroy(pool_);
    pool_ = nullptr;
  }
  h2pool *pool() const { return pool_; }

  // Submits a request; returns its Call (owned by the Client). A request
  // refused synchronously gets code set and calls = -1.
  Call &request(const std::string &url, const char *method = "GET",
                const std::string &body = "",
                const h2pool_request_opts *opts = nullptr) {
    std::unique_ptr<Call> owned = std::make_unique<Call>();
    Call &c = *owned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(std::move(owned));
    }
    c.submitted = Clock::now();
    int rc = h2pool_request(pool_, method, url.c_str(), nullptr, 0,
                            reinterpret_cast<const uint8_t *>(body.data()),
                            body.size(), opts, &Call::callback, &c, &c.id);
    if (rc != H2POOL_OK) {
      std::lock_guard<std::mutex> lock(c.mu);
      c.calls = -1;
      c.code = rc;
    }
    return c;
  }
  Call &get(const std::string &url) { return request(url); }

  uint64_t stat(h2pool_stat which) const {
    h2pool_stats *s = nullptr;
    if (h2pool_stats_get(pool_, &s) != H2POOL_OK) {
      return ~uint64_t{0};
    }
    uint64_t v = h2pool_stats_value(s, which);
    h2pool_stats_free(s);
    return v;
  }

  // Polls a stats value until pred holds or the deadline passes (stats can
  // only be observed by asking; this waits for the state, it does not
  // stand in for it).
  bool wait_stat(h2pool_stat which, const std::function<bool(uint64_t)> &pred,
                 Ms timeout = kWait) const {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (pred(stat(which))) {
        return true;
      }
      std::this_thread::sleep_for(2ms);
    }
    return pred(stat(which));
  }

private:
  h2pool *pool_ = nullptr;
  std::mutex mu_;
  std::deque<std::unique_ptr<Call>> calls_;
};

// Resident set size of this process, from /proc/self/statm.
inline uint64_t rss_bytes() {
  FILE *f = std::fopen("/proc/self/statm", "r");
  if (!f) {
    return 0;
  }
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? uint64_t(resident) * uint64_t(sysconf(_SC_PAGESIZE)) : 0;
}

// Polls any predicate with a deadline.
inline bool wait_until(const std::function<bool()> &pred, Ms timeout = kWait) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

} // namespace faults
