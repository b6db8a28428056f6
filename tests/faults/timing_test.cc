// Per-request timings (h2pool_response_timing_us() and friends) against
// servers with known delays: the ordering libcurl's times follow, lower
// bounds from the delays, reused connections, TLS, HTTP/1.1 and failures.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>

#include "fault_util.h"
#include "raw_server.h"
#include "self_signed_cert.h"
#include "test_server.h"

namespace faults {
namespace {

using namespace h2pool_testing::h2frame;
using h2pool_testing::RawConnection;
using h2pool_testing::RawServer;
using h2pool_testing::RawTlsOptions;
using h2pool_testing::SelfSignedCert;
using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

constexpr int kPhases = H2POOL_TIMING_TOTAL + 1;

// A completion (or any one-shot event) another thread waits for.
struct Flag {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  void set() {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  }
  bool wait() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kWait, [&] { return done; });
  }
  static void on_complete(const h2pool_response *, const h2pool_error *,
                          void *user_data) {
    static_cast<Flag *>(user_data)->set();
  }
};

// What a completion reported about its timings (copied in the callback).
struct Timed : Flag {
  bool ok = false;
  int code = 0;
  bool has_resp = false;
  std::array<int64_t, kPhases> us{};
  std::array<int64_t, kPhases> resp_us{}; // from the response, on errors
  int reused = -2;
  std::string ip;
  int port = -1;
  int connects = -1;

  static void callback(const h2pool_response *resp, const h2pool_error *err,
                       void *user_data) {
    auto t = static_cast<Timed *>(user_data);
    t->record(resp, err);
    t->set();
  }
  void record(const h2pool_response *resp, const h2pool_error *err) {
    std::lock_guard<std::mutex> lock(mu);
    ok = err == nullptr;
    has_resp = resp != nullptr;
    for (int i = 0; i < kPhases; ++i) {
      auto which = h2pool_timing(i);
      us[i] = err ? h2pool_error_timing_us(err, which)
                  : h2pool_response_timing_us(resp, which);
      resp_us[i] = resp ? h2pool_response_timing_us(resp, which) : -2;
    }
    if (err) {
      code = h2pool_error_code(err);
      reused = h2pool_error_connection_reused(err);
      ip = h2pool_error_remote_ip(err);
      port = h2pool_error_remote_port(err);
      connects = h2pool_error_num_connects(err);
    } else {
      reused = h2pool_response_connection_reused(resp);
      ip = h2pool_response_remote_ip(resp);
      port = h2pool_response_remote_port(resp);
      connects = h2pool_response_num_connects(resp);
    }
  }
  int64_t operator[](h2pool_timing w) const { return us[int(w)]; }
  std::string describe() const {
    std::string s = "ok=" + std::to_string(ok) +
                    " code=" + std::to_string(code) +
                    " reused=" + std::to_string(reused) +
                    " connects=" + std::to_string(connects) + " peer=" + ip +
                    ":" + std::to_string(port) + " us=";
    for (int64_t v : us)
      s += std::to_string(v) + " ";
    return s;
  }
};

// Reached phases never decrease, in libcurl's order.
void expect_ordered(const Timed &t) {
  int64_t last = 0;
  for (h2pool_timing w : {H2POOL_TIMING_NAMELOOKUP, H2POOL_TIMING_CONNECT,
                          H2POOL_TIMING_APPCONNECT, H2POOL_TIMING_PRETRANSFER,
                          H2POOL_TIMING_STARTTRANSFER, H2POOL_TIMING_TOTAL}) {
    if (t[w] < 0)
      continue;
    EXPECT_GE(t[w], last) << "phase " << int(w) << ": " << t.describe();
    last = t[w];
  }
  if (t[H2POOL_TIMING_QUEUED] >= 0 && t[H2POOL_TIMING_PRETRANSFER] >= 0) {
    EXPECT_LE(t[H2POOL_TIMING_QUEUED], t[H2POOL_TIMING_PRETRANSFER])
        << t.describe();
  }
}

class Timings : public ::testing::Test {
protected:
  void TearDown() override {
    if (pool_)
      h2pool_destroy(pool_);
    if (raw_)
      raw_->stop();
  }
  void make_pool(const std::function<void(h2pool_config *)> &tune = {}) {
    Config cfg;
    h2pool_config_set_request_timeout_ms(cfg, 10000);
    h2pool_config_set_reconnect_backoff(cfg, 10, 50);
    if (tune)
      tune(cfg);
    ASSERT_EQ(h2pool_create(cfg, &pool_), H2POOL_OK);
  }
  void start_server() {
    ServerOptions o;
    server_ = std::make_unique<TestServer>(o);
    ASSERT_EQ(server_->start(), 0);
  }
  Timed &submit(const std::string &url) {
    timed_.push_back(std::make_unique<Timed>());
    Timed &t = *timed_.back();
    EXPECT_EQ(h2pool_request(pool_, "GET", url.c_str(), nullptr, 0, nullptr, 0,
                             nullptr, &Timed::callback, &t, nullptr),
              H2POOL_OK);
    return t;
  }
  Timed &get(const std::string &url) {
    Timed &t = submit(url);
    EXPECT_TRUE(t.wait()) << "no callback";
    return t;
  }

  h2pool *pool_ = nullptr;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<RawServer> raw_;
  std::deque<std::unique_ptr<Timed>> timed_;
};

TEST_F(Timings, ServerDelayBeforeHeadersShowsBetweenPretransferAndFirstByte) {
  start_server();
  make_pool();
  Timed &t = get(server_->base_url() + "/?delay_ms=150");
  ASSERT_TRUE(t.ok) << t.describe();
  expect_ordered(t);
  for (int i = 0; i < kPhases; ++i) {
    if (i != H2POOL_TIMING_APPCONNECT) {
      EXPECT_GE(t.us[i], 0) << "phase " << i << ": " << t.describe();
    }
  }
  EXPECT_EQ(t[H2POOL_TIMING_APPCONNECT], -1) << "cleartext has no TLS";
  EXPECT_GE(t[H2POOL_TIMING_STARTTRANSFER] - t[H2POOL_TIMING_PRETRANSFER],
            150000)
      << t.describe();
  EXPECT_LT(t[H2POOL_TIMING_TOTAL], 10000000) << t.describe();
  EXPECT_EQ(t.reused, 0);
  EXPECT_EQ(t.connects, 1);
  EXPECT_EQ(t.ip, "127.0.0.1");
  EXPECT_EQ(t.port, server_->port());
}

TEST_F(Timings, ReusedConnectionHasZeroConnectPhasesAndTheSamePeer) {
  start_server();
  make_pool();
  Timed &first = get(server_->base_url() + "/");
  ASSERT_TRUE(first.ok) << first.describe();
  Timed &second = get(server_->base_url() + "/?delay_ms=20");
  ASSERT_TRUE(second.ok) << second.describe();
  EXPECT_EQ(second.reused, 1) << second.describe();
  EXPECT_EQ(second.connects, 0);
  EXPECT_EQ(second[H2POOL_TIMING_NAMELOOKUP], 0);
  EXPECT_EQ(second[H2POOL_TIMING_CONNECT], 0);
  EXPECT_EQ(second[H2POOL_TIMING_APPCONNECT], -1);
  EXPECT_GE(second[H2POOL_TIMING_STARTTRANSFER], 20000);
  EXPECT_EQ(second.ip, "127.0.0.1");
  EXPECT_EQ(second.port, server_->port());
  expect_ordered(second);
}

// Requests submitted together all wait for the one connection the first
// of them opened: each reports it as new.
TEST_F(Timings, RequestsWaitingForANewConnectionAllReportItsPhases) {
  start_server();
  TestServer other;
  ASSERT_EQ(other.start(), 0);
  make_pool();
  // Submitted from a completion callback, on the loop thread: none of them
  // can be taken up (and the connection opened) before the last is in.
  struct Batch {
    h2pool *pool;
    std::string url;
    std::vector<Timed *> all;
    Flag submitted;
  } batch{pool_, server_->base_url() + "/?size=100", {}, {}};
  for (int i = 0; i < 50; ++i) {
    timed_.push_back(std::make_unique<Timed>());
    batch.all.push_back(timed_.back().get());
  }
  std::string first = other.base_url() + "/";
  ASSERT_EQ(h2pool_request(
                pool_, "GET", first.c_str(), nullptr, 0, nullptr, 0, nullptr,
                [](const h2pool_response *, const h2pool_error *, void *ud) {
                  auto b = static_cast<Batch *>(ud);
                  for (Timed *t : b->all)
                    h2pool_request(b->pool, "GET", b->url.c_str(), nullptr, 0,
                                   nullptr, 0, nullptr, &Timed::callback, t,
                                   nullptr);
                  b->submitted.set();
                },
                &batch, nullptr),
            H2POOL_OK);
  ASSERT_TRUE(batch.submitted.wait());
  for (Timed *t : batch.all) {
    ASSERT_TRUE(t->wait());
    ASSERT_TRUE(t->ok) << t->describe();
    EXPECT_EQ(t->reused, 0) << t->describe();
    EXPECT_EQ(t->connects, 1);
    EXPECT_GE((*t)[H2POOL_TIMING_CONNECT], 0);
    EXPECT_GE((*t)[H2POOL_TIMING_QUEUED], (*t)[H2POOL_TIMING_CONNECT]);
    expect_ordered(*t);
  }
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(Timings, OrderingHoldsOnManyConcurrentRequests) {
  start_server();
  make_pool([](h2pool_config *c) {
    h2pool_config_set_max_connections_per_endpoint(c, 4);
  });
  std::vector<Timed *> all;
  for (int i = 0; i < 400; ++i)
    all.push_back(&submit(server_->base_url() +
                          "/?size=" + std::to_string(i * 37 % 5000) +
                          (i % 7 == 0 ? "&delay_ms=5" : "")));
  for (Timed *t : all) {
    ASSERT_TRUE(t->wait());
    ASSERT_TRUE(t->ok) << t->describe();
    expect_ordered(*t);
    EXPECT_GE((*t)[H2POOL_TIMING_STARTTRANSFER], 0);
    EXPECT_EQ(t->connects, t->reused ? 0 : 1);
  }
}

TEST_F(Timings, RefusedConnectionReportsNoConnectAndATotal) {
  // A port nothing listens on: bound, then closed.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin), 0);
  socklen_t len = sizeof sin;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len), 0);
  ::close(fd);
  make_pool([](h2pool_config *c) { h2pool_config_set_max_retries(c, 0); });
  Timed &t =
      get("http://127.0.0.1:" + std::to_string(ntohs(sin.sin_port)) + "/");
  ASSERT_FALSE(t.ok);
  EXPECT_EQ(t.code, H2POOL_ERR_CONNECT) << t.describe();
  EXPECT_FALSE(t.has_resp);
  EXPECT_GE(t[H2POOL_TIMING_NAMELOOKUP], 0) << t.describe();
  EXPECT_EQ(t[H2POOL_TIMING_CONNECT], -1) << t.describe();
  EXPECT_EQ(t[H2POOL_TIMING_QUEUED], -1) << t.describe();
  EXPECT_EQ(t[H2POOL_TIMING_PRETRANSFER], -1) << t.describe();
  EXPECT_EQ(t[H2POOL_TIMING_STARTTRANSFER], -1) << t.describe();
  EXPECT_GE(t[H2POOL_TIMING_TOTAL], t[H2POOL_TIMING_NAMELOOKUP]);
  EXPECT_EQ(t.reused, 0);
  EXPECT_EQ(t.connects, 0);
}

TEST_F(Timings, FailureAfterHeadersReportsTheSameOnResponseAndError) {
  raw_ = std::make_unique<RawServer>([](RawConnection &conn) {
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    uint32_t sid = conn.wait_request();
    if (sid == 0)
      return;
    if (conn.send(headers(sid, hpack_status(200), kEndHeaders)))
      conn.send(rst_stream(sid, 0x2));
    conn.wait_closed();
  });
  ASSERT_EQ(raw_->start(), 0);
  make_pool();
  Timed &t = get(raw_->base_url() + "/");
  ASSERT_FALSE(t.ok);
  ASSERT_TRUE(t.has_resp);
  EXPECT_EQ(t.code, H2POOL_ERR_STREAM_RESET);
  EXPECT_GE(t[H2POOL_TIMING_STARTTRANSFER], t[H2POOL_TIMING_PRETRANSFER]);
  EXPECT_GE(t[H2POOL_TIMING_PRETRANSFER], 0);
  EXPECT_EQ(t.us, t.resp_us);
  EXPECT_EQ(t.ip, "127.0.0.1");
  expect_ordered(t);
}

TEST_F(Timings, TlsHandshakeEndsAfterConnect) {
  SelfSignedCert cert;
  ASSERT_TRUE(cert.ok());
  RawTlsOptions tls;
  tls.cert_file = cert.cert_file();
  tls.key_file = cert.key_file();
  raw_ = std::make_unique<RawServer>(
      [](RawConnection &conn) {
        if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
          return;
        for (;;) {
          uint32_t sid = conn.wait_request();
          if (sid == 0 || !conn.send(headers(sid, hpack_status(200),
                                             kEndHeaders | kEndStream)))
            return;
        }
      },
      tls);
  ASSERT_EQ(raw_->start(), 0);
  std::string ca = cert.cert_file();
  make_pool(
      [&](h2pool_config *c) { h2pool_config_set_tls_ca_file(c, ca.c_str()); });
  std::string url = "https://127.0.0.1:" + std::to_string(raw_->port()) + "/";
  Timed &t = get(url);
  ASSERT_TRUE(t.ok) << t.describe();
  EXPECT_GT(t[H2POOL_TIMING_APPCONNECT], t[H2POOL_TIMING_CONNECT])
      << t.describe();
  EXPECT_GE(t[H2POOL_TIMING_CONNECT], 0);
  expect_ordered(t);
  Timed &again = get(url);
  ASSERT_TRUE(again.ok) << again.describe();
  EXPECT_EQ(again.reused, 1);
  EXPECT_EQ(again[H2POOL_TIMING_APPCONNECT], 0) << "reused TLS: 0, as curl";
}

TEST_F(Timings, Http11ExchangesAreTimedAndTheSecondReusesTheConnection) {
  raw_ = std::make_unique<RawServer>([](RawConnection &conn) {
    for (int i = 0; i < 2; ++i) {
      std::string head;
      while (head.find("\r\n\r\n") == std::string::npos) {
        auto b = conn.read_bytes(1);
        if (!b)
          return;
        head += *b;
      }
      // The server's think time, which the timings must show.
      std::this_thread::sleep_for(80ms);
      if (!conn.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        return;
    }
    conn.wait_closed();
  });
  ASSERT_EQ(raw_->start(), 0);
  make_pool([](h2pool_config *c) {
    h2pool_config_set_http_version(c, H2POOL_HTTP_VERSION_1_1);
  });
  for (int i = 0; i < 2; ++i) {
    Timed &t = get(raw_->base_url() + "/");
    ASSERT_TRUE(t.ok) << t.describe();
    EXPECT_GE(t[H2POOL_TIMING_PRETRANSFER], 0) << t.describe();
    EXPECT_GE(t[H2POOL_TIMING_STARTTRANSFER] - t[H2POOL_TIMING_PRETRANSFER],
              80000)
        << t.describe();
    EXPECT_EQ(t.reused, i == 1) << t.describe();
    expect_ordered(t);
  }
}

TEST_F(Timings, CompletionQueueEventsCarryTheTimings) {
  start_server();
  make_pool();
  h2pool_queue *q = nullptr;
  ASSERT_EQ(h2pool_queue_create(&q), H2POOL_OK);
  std::string url = server_->base_url() + "/?delay_ms=50";
  ASSERT_EQ(h2pool_queue_request(pool_, q, "GET", url.c_str(), nullptr, 0,
                                 nullptr, 0, nullptr, nullptr, nullptr),
            H2POOL_OK);
  h2pool_event *ev = nullptr;
  auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline) {
    int n = h2pool_queue_next(q, &ev, 1, 100);
    ASSERT_GE(n, 0);
    if (n == 1 && h2pool_event_kind(ev) == H2POOL_EVENT_COMPLETE)
      break;
    if (n == 1)
      h2pool_event_free(ev);
    ev = nullptr;
  }
  ASSERT_NE(ev, nullptr) << "no COMPLETE event";
  const h2pool_response *resp = h2pool_event_response(ev);
  ASSERT_NE(resp, nullptr);
  EXPECT_GE(h2pool_response_timing_us(resp, H2POOL_TIMING_STARTTRANSFER) -
                h2pool_response_timing_us(resp, H2POOL_TIMING_PRETRANSFER),
            50000);
  EXPECT_GE(h2pool_response_timing_us(resp, H2POOL_TIMING_TOTAL),
            h2pool_response_timing_us(resp, H2POOL_TIMING_STARTTRANSFER));
  EXPECT_STREQ(h2pool_response_remote_ip(resp), "127.0.0.1");
  EXPECT_EQ(h2pool_response_num_connects(resp), 1);
  h2pool_event_free(ev);
  h2pool_destroy(pool_);
  pool_ = nullptr;
  h2pool_queue_destroy(q);
}

// A streamed response's head already has the phases up to the first byte.
TEST_F(Timings, OnHeadersSeesTheTimingsSoFar) {
  start_server();
  make_pool();
  struct Seen : Flag {
    std::atomic<int64_t> start{-2}, total{-2};
  } seen;
  Opts opts;
  h2pool_request_opts_set_on_headers(
      opts, [](const h2pool_response *resp, void *ud) {
        auto s = static_cast<Seen *>(ud);
        s->start = h2pool_response_timing_us(resp, H2POOL_TIMING_STARTTRANSFER);
        s->total = h2pool_response_timing_us(resp, H2POOL_TIMING_TOTAL);
        return 0;
      });
  h2pool_request_opts_set_on_data(
      opts, [](const uint8_t *, size_t, void *) { return 0; });
  std::string url = server_->base_url() + "/?size=10";
  ASSERT_EQ(h2pool_request(pool_, "GET", url.c_str(), nullptr, 0, nullptr, 0,
                           opts, &Flag::on_complete, &seen, nullptr),
            H2POOL_OK);
  ASSERT_TRUE(seen.wait());
  EXPECT_GE(seen.start, 0);
  EXPECT_GE(seen.total, seen.start);
}

// NULL arguments are covered by tests/c/test_api_args.c.
TEST_F(Timings, UnknownPhasesReadMinusOne) {
  start_server();
  make_pool();
  std::string url = server_->base_url() + "/";
  struct Seen : Flag {
    std::atomic<int64_t> bad_low{0}, bad_high{0};
  } seen;
  ASSERT_EQ(
      h2pool_request(
          pool_, "GET", url.c_str(), nullptr, 0, nullptr, 0, nullptr,
          [](const h2pool_response *resp, const h2pool_error *, void *ud) {
            auto s = static_cast<Seen *>(ud);
            s->bad_low = h2pool_response_timing_us(resp, h2pool_timing(-1));
            s->bad_high = h2pool_response_timing_us(
                resp, h2pool_timing(H2POOL_TIMING_TOTAL + 1));
            s->set();
          },
          &seen, nullptr),
      H2POOL_OK);
  ASSERT_TRUE(seen.wait());
  EXPECT_EQ(seen.bad_low, -1);
  EXPECT_EQ(seen.bad_high, -1);
}

} // namespace
} // namespace faults
