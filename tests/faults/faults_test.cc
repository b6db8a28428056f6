// Failure semantics against the scriptable test server's fault injection:
// GOAWAY, RST_STREAM, refused streams, dropped connections, timeouts, PING
// health, connection lifetime policies, limits. One behaviour per test.
#include "fault_util.h"
#include "test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

namespace faults {
namespace {

using h2pool_testing::ClientReset;
using h2pool_testing::ConnectionScript;
using h2pool_testing::ServerOptions;
using h2pool_testing::ServerStats;
using h2pool_testing::test_body;
using h2pool_testing::TestServer;

class Faults : public ::testing::Test {
protected:
  void start(ServerOptions options = {}) {
    server_ = std::make_unique<TestServer>(std::move(options));
    ASSERT_EQ(server_->start(), 0);
    base_ = server_->base_url();
  }
  void TearDown() override {
    client_.reset(); // pool first: no callback may outlive its Call
    server_.reset();
  }
  Client &client(const Config &cfg) {
    client_ = std::make_unique<Client>(cfg.get());
    return *client_;
  }
  bool wait_server(const std::function<bool(const ServerStats &)> &pred,
                   Ms timeout = kWait) {
    return server_->wait_for_stats(pred, timeout);
  }
  bool wait_client_reset(int32_t stream_id, uint32_t code, Ms timeout = kWait) {
    return wait_until(
        [&] {
          for (const ClientReset &r : server_->client_resets())
            if (r.stream_id == stream_id && r.error_code == code)
              return true;
          return false;
        },
        timeout);
  }
  std::string url(const std::string &path_query) const {
    return base_ + path_query;
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<Client> client_;
  std::string base_;
};

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

// ---------------------------------------------------------------------------
// GOAWAY

TEST_F(Faults, GoawayNoErrorRetriesStreamsAboveLastStreamIdOnNewConnection) {
  start();
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  std::vector<Call *> calls;
  // Streams 1..9 wait on the server; the sixth request (stream 11) makes it
  // send GOAWAY(NO_ERROR, last_stream_id=5) on connection 1 only.
  for (int i = 0; i < 5; ++i)
    calls.push_back(
        &c.get(url("/?delay_ms=300&size=1000&seed=" + std::to_string(i))));
  calls.push_back(&c.get(url("/?delay_ms=300&size=1000&seed=5&goaway=0&"
                             "goaway_last=5&fault_conn=1")));
  for (Call *call : calls)
    WAIT_DONE(*call);
  std::map<uint64_t, int> per_conn;
  uint64_t first_conn = 0;
  for (int i = 0; i < 6; ++i) {
    Call &call = *calls[i];
    ASSERT_TRUE(call.ok) << i << ": " << call.describe();
    EXPECT_EQ(call.calls, 1);
    EXPECT_EQ(call.body, test_body(i, 1000)) << i;
    ++per_conn[call.conn_id];
    if (i == 0)
      first_conn = call.conn_id;
  }
  ASSERT_EQ(per_conn.size(), 2u);
  // Streams 1, 3, 5 finished on the first connection; 7, 9, 11 went again.
  for (int i = 0; i < 6; ++i) {
    if (i < 3) {
      EXPECT_EQ(calls[i]->conn_id, first_conn) << i;
      EXPECT_LE(calls[i]->stream_id, 5) << i;
    } else {
      EXPECT_NE(calls[i]->conn_id, first_conn) << i;
    }
  }
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 3u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_FAILED), 0u);
  EXPECT_EQ(server_->stats().goaways_sent, 1u);
  EXPECT_EQ(server_->stats().requests, 9u);
}

TEST_F(Faults, GoawayAfterNRequestsOnConnectionMovesLaterRequestsToNewOne) {
  ServerOptions options;
  options.connection_script = [](uint64_t id) {
    ConnectionScript s;
    if (id == 1) {
      s.goaway_after_requests = 3; // last_stream_id = the third's stream
    }
    return s;
  };
  start(options);
  Config cfg;
  Client &c = client(cfg);
  std::vector<uint64_t> conns;
  for (int i = 0; i < 6; ++i) {
    Call &call = c.get(url("/?size=300&seed=" + std::to_string(i)));
    WAIT_DONE(call);
    ASSERT_TRUE(call.ok) << i << ": " << call.describe();
    EXPECT_EQ(call.body, test_body(i, 300));
    conns.push_back(call.conn_id);
  }
  EXPECT_EQ(conns[0], conns[2]);
  EXPECT_NE(conns[3], conns[0]);
  EXPECT_EQ(conns[3], conns[5]);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_FAILED), 0u);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(Faults, GracefulTwoStepGoawayLosesNothing) {
  start();
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  std::vector<Call *> calls;
  for (int i = 0; i < 6; ++i)
    calls.push_back(
        &c.get(url("/?delay_ms=400&size=2000&seed=" + std::to_string(i))));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 6; }));
  // GOAWAY(2^31-1) now, the real one (last processed stream) 150 ms later.
  calls.push_back(&c.get(url("/?size=2000&seed=6&goaway=0&goaway_graceful=1&"
                             "goaway_grace_ms=150&fault_conn=1")));
  WAIT_DONE(*calls.back());
  // Sent while the first connection drains.
  for (int i = 7; i < 13; ++i)
    calls.push_back(&c.get(url("/?size=2000&seed=" + std::to_string(i))));
  for (size_t i = 0; i < calls.size(); ++i) {
    WAIT_DONE(*calls[i]);
    ASSERT_TRUE(calls[i]->ok) << i << ": " << calls[i]->describe();
    EXPECT_EQ(calls[i]->body, test_body(i, 2000)) << i;
  }
  for (int i = 1; i < 7; ++i)
    EXPECT_EQ(calls[i]->conn_id, calls[0]->conn_id) << i;
  for (int i = 7; i < 13; ++i)
    EXPECT_NE(calls[i]->conn_id, calls[0]->conn_id) << i;
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_FAILED), 0u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 0u);
  EXPECT_TRUE(
      wait_server([](const ServerStats &s) { return s.goaways_sent == 2; }));
}

// LIBRARY BUG (reported to the lead; this test fails until it is fixed):
// when a stream above a GOAWAY's last_stream_id runs out of retries,
// Pool::on_stream_closed (src/pool.cc ~line 435) builds the error from
// end.connection_error, which is null there (nghttp2 closed the stream on
// receiving the GOAWAY), so it falls back to make_error(H2POOL_ERR_GOAWAY):
// no http2 code, no debug data in the message.
TEST_F(Faults, GoawayWithErrorCodeFailsWithGoawayAfterBoundedAttempts) {
  start();
  Config cfg;
  h2pool_config_set_max_retries(cfg, 2);
  Client &c = client(cfg);
  // Every connection answers its first stream with GOAWAY(INTERNAL_ERROR,
  // last_stream_id=0): the stream was never processed, so it is retried,
  // but only max_retries times.
  Call &call =
      c.get(url("/?goaway=2&goaway_last=0&goaway_debug=overloaded-try-later"));
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok);
  EXPECT_EQ(call.code, H2POOL_ERR_GOAWAY) << call.describe();
  EXPECT_EQ(call.http2_code, 2) << call.describe();
  EXPECT_EQ(call.goaway_last, 0) << call.describe();
  EXPECT_NE(call.message.find("overloaded-try-later"), std::string::npos)
      << call.describe();
  EXPECT_EQ(server_->stats().requests, 3u); // max_retries + 1 attempts
  EXPECT_EQ(server_->stats().connections_accepted, 3u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 2u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_FAILED), 1u);
}

// LIBRARY BUG: same cause as above (http2 code -1 instead of 0).
TEST_F(Faults, GoawayNoErrorAlwaysAboveLastStreamIdFailsWithGoaway) {
  start();
  Config cfg;
  h2pool_config_set_max_retries(cfg, 1);
  Client &c = client(cfg);
  Call &call = c.get(url("/?goaway=0&goaway_last=0"));
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_GOAWAY) << call.describe();
  EXPECT_EQ(call.http2_code, 0)
      << "the GOAWAY's code (NO_ERROR): " << call.describe();
  EXPECT_EQ(call.goaway_last, 0) << call.describe();
  EXPECT_EQ(server_->stats().requests, 2u);
}

TEST_F(Faults, GoawayRetryResendsTheWholeRequestBody) {
  start();
  Config cfg;
  Client &c = client(cfg);
  std::string body = test_body(77, 200000);
  Call &call =
      c.request(url("/echo?goaway=0&goaway_last=0&fault_conn=1"), "POST", body);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_TRUE(call.body == body) << "echoed " << call.body.size() << " bytes";
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 1u);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

// ---------------------------------------------------------------------------
// REFUSED_STREAM

TEST_F(Faults, RefusedStreamIsRetriedAndSucceeds) {
  start();
  Config cfg;
  Client &c = client(cfg);
  Call &call = c.get(url("/?refuse=1&fault_times=1&size=500&seed=7"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, test_body(7, 500));
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 1u);
  EXPECT_EQ(server_->stats().streams_refused, 1u);
  EXPECT_EQ(server_->stats().requests, 2u);
}

TEST_F(Faults, RefusedPostIsRetriedWithItsWholeBody) {
  start();
  Config cfg;
  Client &c = client(cfg);
  std::string body = test_body(78, 100000);
  Call &call = c.request(url("/echo?refuse=1&fault_times=1"), "POST", body);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_TRUE(call.body == body) << "echoed " << call.body.size() << " bytes";
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 1u);
}

// LIBRARY BUG (reported; fails until fixed): Pool::retry (src/pool.cc:262)
// puts the request back at the front of the endpoint queue and dispatch()
// (src/pool.cc:300) picks the most-loaded connection with a free slot,
// which is the one that just refused it; all attempts go to connection 1.
TEST_F(Faults, RefusedStreamIsRetriedOnAnotherConnection) {
  // h2pool.h: retried "on another connection" when the server provably did
  // not process it. Connection 1 refuses everything; others answer.
  start();
  Config cfg;
  h2pool_config_set_max_retries(cfg, 3);
  Client &c = client(cfg);
  Call &warm = c.get(url("/"));
  WAIT_DONE(warm);
  ASSERT_TRUE(warm.ok);
  Call &call = c.get(url("/?refuse=1&fault_conn=1&size=100&seed=3"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_NE(call.conn_id, warm.conn_id);
  EXPECT_EQ(call.body, test_body(3, 100));
}

TEST_F(Faults, EmptyRetryBudgetFailsRefusedStreamAtOnce) {
  start();
  Config cfg;
  h2pool_config_set_retry_budget(cfg, 0, 0);
  Client &c = client(cfg);
  Call &call = c.get(url("/?refuse=1&fault_times=1"));
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_REFUSED_STREAM) << call.describe();
  EXPECT_NE(call.message.find("retry budget"), std::string::npos)
      << call.describe();
  EXPECT_EQ(server_->stats().requests, 1u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 0u);
}

// A server that refuses everything and serves nothing gets the budget's
// burst of retries, each after a delay, and no more.
TEST_F(Faults, AlwaysRefusedFailsWithRefusedStreamOnceTheBudgetIsSpent) {
  start();
  Config cfg;
  h2pool_config_set_retry_budget(cfg, 2, 100);
  h2pool_config_set_retry_backoff(cfg, 20, 40);
  Client &c = client(cfg);
  Call &call = c.get(url("/?refuse=1"));
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok);
  EXPECT_EQ(call.code, H2POOL_ERR_REFUSED_STREAM) << call.describe();
  EXPECT_EQ(call.http2_code, 7) << call.describe();
  EXPECT_EQ(server_->stats().requests, 3u);
  EXPECT_EQ(server_->stats().streams_refused, 3u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 2u);
  // Two retries, the first after at least 10 ms, the second after 20.
  EXPECT_GE(call.elapsed(), 30ms);
}

// ---------------------------------------------------------------------------
// RST_STREAM

class RstInternalError : public Faults,
                         public ::testing::WithParamInterface<const char *> {};

TEST_P(RstInternalError, FailsWithStreamResetAndSparesOtherStreams) {
  start();
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  Call &other = c.get(url("/?delay_ms=300&size=1000&seed=2"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 1; }));
  Call &victim = c.get(
      url(std::string("/?size=100000&seed=1&rst=2&fault_at=") + GetParam()));
  WAIT_DONE(victim);
  WAIT_DONE(other);
  EXPECT_FALSE(victim.ok);
  EXPECT_EQ(victim.code, H2POOL_ERR_STREAM_RESET) << victim.describe();
  EXPECT_EQ(victim.http2_code, 2) << victim.describe();
  // The headers had arrived: the partial response is described, and is a
  // prefix of the real body.
  EXPECT_TRUE(victim.has_resp);
  EXPECT_EQ(victim.status, 200);
  EXPECT_LE(victim.body.size(), size_t(std::stoul(GetParam())));
  EXPECT_EQ(victim.body, test_body(1, victim.body.size()));
  ASSERT_TRUE(other.ok) << other.describe();
  EXPECT_EQ(other.body, test_body(2, 1000));
  EXPECT_EQ(other.conn_id, victim.conn_id);
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 0u);
}

// After the headers, mid-body, after the whole body (without END_STREAM).
INSTANTIATE_TEST_SUITE_P(At, RstInternalError,
                         ::testing::Values("0", "50000", "100000"),
                         [](const auto &info) {
                           return std::string(info.param[0] == '0' ? "Headers"
                                              : info.param[0] == '5'
                                                  ? "MidBody"
                                                  : "WholeBody");
                         });

// ---------------------------------------------------------------------------
// Lost connections

class DropMidBody : public Faults,
                    public ::testing::WithParamInterface<const char *> {};

TEST_P(DropMidBody, FailsEveryInFlightRequestWithConnectionLost) {
  start();
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  Call &warm = c.get(url("/"));
  WAIT_DONE(warm);
  ASSERT_TRUE(warm.ok) << warm.describe();
  Call &b = c.get(url("/?delay_ms=5000&size=100"));
  Call &d = c.get(url("/?delay_ms=5000&size=100"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 3; }));
  // The pause lets the client read the headers and the first 100000 bytes
  // before the connection goes.
  Call &a = c.get(
      url(std::string("/?size=200000&seed=1&fault_at=100000&fault_delay_ms=100&"
                      "drop=") +
          GetParam()));
  for (Call *call : {&a, &b, &d}) {
    WAIT_DONE(*call);
    EXPECT_FALSE(call->ok) << "a truncated response must not be a success: "
                           << call->describe();
    EXPECT_EQ(call->code, H2POOL_ERR_CONNECTION_LOST) << call->describe();
    EXPECT_EQ(call->calls, 1);
  }
  EXPECT_TRUE(a.has_resp) << "headers had arrived: " << a.describe();
  EXPECT_LE(a.body.size(), 100000u);
  EXPECT_EQ(a.body, test_body(1, a.body.size()));
  Call &next = c.get(url("/?size=1000&seed=4"));
  WAIT_DONE(next);
  ASSERT_TRUE(next.ok) << next.describe();
  EXPECT_EQ(next.body, test_body(4, 1000));
  EXPECT_NE(next.conn_id, warm.conn_id);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
  EXPECT_EQ(server_->stats().connections_dropped, 1u);
}

INSTANTIATE_TEST_SUITE_P(Mode, DropMidBody, ::testing::Values("reset", "close"),
                         [](const auto &info) {
                           return std::string(info.param);
                         });

TEST_F(Faults, RetryIdempotentRetriesGetLostBeforeHeaders) {
  start();
  Config cfg;
  h2pool_config_set_retry_idempotent(cfg, 1);
  Client &c = client(cfg);
  Call &call =
      c.get(url("/?drop=reset&fault_at=before&fault_conn=1&size=300&seed=3"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, test_body(3, 300));
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 1u);
  EXPECT_EQ(server_->stats().requests, 2u);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(Faults, RetryIdempotentDoesNotRetryPost) {
  start();
  Config cfg;
  h2pool_config_set_retry_idempotent(cfg, 1);
  Client &c = client(cfg);
  Call &call = c.request(url("/echo?drop=reset&fault_at=before&fault_conn=1"),
                         "POST", "payload");
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECTION_LOST) << call.describe();
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 0u);
  EXPECT_EQ(server_->stats().requests, 1u);
}

TEST_F(Faults, RetryIdempotentDoesNotRetryOnceHeadersArrived) {
  start();
  Config cfg;
  h2pool_config_set_retry_idempotent(cfg, 1);
  Client &c = client(cfg);
  Call &call =
      c.get(url("/?size=5000&drop=reset&fault_at=1000&fault_delay_ms=100&"
                "fault_conn=1"));
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECTION_LOST) << call.describe();
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 0u);
  EXPECT_EQ(server_->stats().requests, 1u);
}

TEST_F(Faults, QueuedRequestsSurviveLossOfTheConnectionTheyWaitFor) {
  ServerOptions options;
  options.max_concurrent_streams = 1;
  start(options);
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  Call &victim = c.get(url("/?delay_ms=200&drop=reset&fault_at=before&"
                           "fault_conn=1"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 1; }));
  // Never sent: they wait for the one stream slot.
  Call &q1 = c.get(url("/?size=100&seed=1"));
  Call &q2 = c.get(url("/?size=200&seed=2"));
  WAIT_DONE(victim);
  EXPECT_EQ(victim.code, H2POOL_ERR_CONNECTION_LOST) << victim.describe();
  WAIT_DONE(q1);
  WAIT_DONE(q2);
  ASSERT_TRUE(q1.ok) << q1.describe();
  ASSERT_TRUE(q2.ok) << q2.describe();
  EXPECT_EQ(q1.body, test_body(1, 100));
  EXPECT_EQ(q2.body, test_body(2, 200));
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

// ---------------------------------------------------------------------------
// Timeouts

// A listener whose accept queue is full: further SYNs are dropped, so a
// connect to it neither succeeds nor fails until the client gives up.
class FullListener {
public:
  bool open() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&sin), len) != 0 ||
        listen(fd_, 0) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr *>(&sin), &len) != 0)
      return false;
    port_ = ntohs(sin.sin_port);
    // Fill the queue until a connect no longer completes.
    for (int i = 0; i < 16; ++i) {
      int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      fillers_.push_back(c);
      if (connect(c, reinterpret_cast<sockaddr *>(&sin), sizeof sin) == 0)
        continue;
      pollfd p{c, POLLOUT, 0};
      if (poll(&p, 1, 300) == 0)
        return true; // this one hangs: the queue is full
    }
    return false;
  }
  ~FullListener() {
    for (int c : fillers_)
      close(c);
    if (fd_ >= 0)
      close(fd_);
  }
  uint16_t port() const { return port_; }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(Faults, ConnectTimeoutWhenTheListenerNeverCompletesTheHandshake) {
  FullListener listener;
  if (!listener.open())
    GTEST_SKIP() << "could not fill a loopback accept queue here, so no "
                    "connect can be made to hang deterministically";
  Config cfg;
  h2pool_config_set_connect_timeout_ms(cfg, 300);
  Client &c = client(cfg);
  Call &call =
      c.get("http://127.0.0.1:" + std::to_string(listener.port()) + "/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECT_TIMEOUT) << call.describe();
  EXPECT_GE(call.elapsed(), 250ms);
}

TEST_F(Faults, SettingsTimeoutWhenTheServerNeverSendsSettings) {
  ServerOptions options;
  options.connection.send_settings = false;
  start(options);
  Config cfg;
  h2pool_config_set_settings_timeout_ms(cfg, 300);
  Client &c = client(cfg);
  Call &call = c.get(url("/"));
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_SETTINGS_TIMEOUT) << call.describe();
  EXPECT_GE(call.elapsed(), 250ms);
  EXPECT_EQ(server_->stats().requests, 0u);
}

TEST_F(Faults, RequestTimeoutIncludesQueueWait) {
  ServerOptions options;
  options.max_concurrent_streams = 1;
  start(options);
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  Call &blocker = c.get(url("/?stall=1&fault_at=before"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 1; }));
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_timeout_ms(opts, 300);
  Call &queued = c.request(url("/"), "GET", "", opts);
  h2pool_request_opts_free(opts);
  WAIT_DONE(queued);
  EXPECT_EQ(queued.code, H2POOL_ERR_TIMEOUT) << queued.describe();
  EXPECT_GE(queued.elapsed(), 250ms);
  EXPECT_EQ(server_->stats().requests, 1u); // it never left the queue
  EXPECT_EQ(blocker.calls, 0);
  ASSERT_EQ(h2pool_cancel(c.pool(), blocker.id), H2POOL_OK);
  WAIT_DONE(blocker);
  EXPECT_EQ(blocker.code, H2POOL_ERR_CANCELLED);
}

TEST_F(Faults, RequestTimeoutInFlightResetsStreamWithCancel) {
  start();
  Config cfg;
  Client &c = client(cfg);
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_timeout_ms(opts, 300);
  Call &call =
      c.request(url("/?stall=1&fault_at=100&size=1000"), "GET", "", opts);
  h2pool_request_opts_free(opts);
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_TIMEOUT) << call.describe();
  EXPECT_GE(call.elapsed(), 250ms);
  ASSERT_GT(call.err_stream_id, 0) << call.describe();
  EXPECT_TRUE(wait_client_reset(call.err_stream_id, 8 /* CANCEL */));
  Call &next = c.get(url("/"));
  WAIT_DONE(next);
  ASSERT_TRUE(next.ok) << next.describe();
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(Faults, CancelQueuedRequestNeverReachesServer) {
  ServerOptions options;
  options.max_concurrent_streams = 1;
  start(options);
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  Call &blocker = c.get(url("/?delay_ms=300"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 1; }));
  Call &queued = c.get(url("/?size=10"));
  ASSERT_EQ(h2pool_cancel(c.pool(), queued.id), H2POOL_OK);
  WAIT_DONE(queued);
  EXPECT_EQ(queued.code, H2POOL_ERR_CANCELLED) << queued.describe();
  EXPECT_EQ(queued.err_stream_id, 0);
  WAIT_DONE(blocker);
  ASSERT_TRUE(blocker.ok) << blocker.describe();
  EXPECT_EQ(server_->stats().requests, 1u);
}

TEST_F(Faults, ResponseHeadersTimeoutResetsStreamWithCancelKeepsConnection) {
  start();
  Config cfg;
  h2pool_config_set_response_header_timeout_ms(cfg, 300);
  Client &c = client(cfg);
  Call &warm = c.get(url("/"));
  WAIT_DONE(warm);
  ASSERT_TRUE(warm.ok) << warm.describe();
  Call &call = c.get(url("/?stall=1&fault_at=before"));
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT) << call.describe();
  EXPECT_GE(call.elapsed(), 250ms);
  ASSERT_GT(call.err_stream_id, 0) << call.describe();
  EXPECT_TRUE(wait_client_reset(call.err_stream_id, 8 /* CANCEL */))
      << "server never saw RST_STREAM(CANCEL) on stream " << call.err_stream_id;
  Call &next = c.get(url("/?size=100&seed=1"));
  WAIT_DONE(next);
  ASSERT_TRUE(next.ok) << next.describe();
  EXPECT_EQ(next.body, test_body(1, 100));
  EXPECT_EQ(next.conn_id, warm.conn_id);
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(Faults, ResponseHeadersTimeoutDoesNotApplyOnceHeadersArrived) {
  start();
  Config cfg;
  h2pool_config_set_response_header_timeout_ms(cfg, 150);
  Client &c = client(cfg);
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_timeout_ms(opts, 600);
  // Headers at once, then the body stalls past the header timeout.
  Call &call =
      c.request(url("/?stall=1&fault_at=100&size=1000"), "GET", "", opts);
  h2pool_request_opts_free(opts);
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_TIMEOUT) << call.describe();
  EXPECT_GE(call.elapsed(), 550ms);
}

// ---------------------------------------------------------------------------
// Health and connection policies

TEST_F(Faults, UnansweredPingClosesConnectionWithConnectionLost) {
  ServerOptions options;
  options.connection.ignore_ping = true;
  start(options);
  Config cfg;
  h2pool_config_set_ping(cfg, 200, 200);
  Client &c = client(cfg);
  Call &call = c.get(url("/?stall=1&fault_at=before"));
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECTION_LOST) << call.describe();
  // Silent for an interval, then unanswered for the timeout.
  EXPECT_GE(call.elapsed(), 350ms);
  EXPECT_LE(call.elapsed(), 3000ms);
  EXPECT_GE(server_->stats().pings_received, 1u);
  EXPECT_TRUE(c.wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                          [](uint64_t v) { return v == 1; }));
}

TEST_F(Faults, AnsweredPingsKeepASilentConnectionOpen) {
  start();
  Config cfg;
  h2pool_config_set_ping(cfg, 100, 200);
  Client &c = client(cfg);
  Call &call = c.get(url("/?stall=1&fault_at=before"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.pings_received >= 3; }));
  EXPECT_EQ(call.calls, 0) << call.describe();
  ASSERT_EQ(h2pool_cancel(c.pool(), call.id), H2POOL_OK);
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CANCELLED) << call.describe();
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_CLOSED), 0u);
}

TEST_F(Faults, IdleTimeoutClosesIdleConnection) {
  start();
  Config cfg;
  h2pool_config_set_idle_timeout_ms(cfg, 200);
  Client &c = client(cfg);
  Call &call = c.get(url("/"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_TRUE(c.wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                          [](uint64_t v) { return v == 1; }));
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_OPEN), 0u);
  EXPECT_TRUE(wait_server(
      [](const ServerStats &s) { return s.connections_open == 0; }));
  EXPECT_GE(Clock::now() - call.done_at, 150ms);
}

TEST_F(Faults, MaxRequestsPerConnectionDrainsAndOpensNewOneLosingNothing) {
  start();
  Config cfg;
  h2pool_config_set_max_requests_per_connection(cfg, 3);
  Client &c = client(cfg);
  std::vector<Call *> calls;
  for (int i = 0; i < 10; ++i)
    calls.push_back(
        &c.get(url("/?delay_ms=100&size=700&seed=" + std::to_string(i))));
  std::map<uint64_t, int> per_conn;
  for (int i = 0; i < 10; ++i) {
    WAIT_DONE(*calls[i]);
    ASSERT_TRUE(calls[i]->ok) << i << ": " << calls[i]->describe();
    EXPECT_EQ(calls[i]->body, test_body(i, 700));
    ++per_conn[calls[i]->conn_id];
  }
  for (auto [conn, n] : per_conn)
    EXPECT_LE(n, 3) << "connection " << conn;
  EXPECT_GE(per_conn.size(), 4u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_FAILED), 0u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 0u);
  // Drained connections close once their streams are done.
  EXPECT_TRUE(c.wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                          [](uint64_t v) { return v >= 3; }));
}

TEST_F(Faults, MaxLifetimeDrainsConnectionAfterItsStreamsFinish) {
  start();
  Config cfg;
  h2pool_config_set_max_lifetime_ms(cfg, 300);
  Client &c = client(cfg);
  Call &slow = c.get(url("/?delay_ms=800&size=5000&seed=9"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 1; }));
  // Short requests until one lands on a new connection: the old one is too
  // old to take streams.
  uint64_t first = 0, other = 0;
  auto deadline = Clock::now() + kWait;
  while (other == 0 && Clock::now() < deadline) {
    Call &probe = c.get(url("/"));
    ASSERT_TRUE(probe.wait());
    ASSERT_TRUE(probe.ok) << probe.describe();
    if (first == 0)
      first = probe.conn_id;
    else if (probe.conn_id != first)
      other = probe.conn_id;
  }
  ASSERT_NE(other, 0u);
  WAIT_DONE(slow);
  ASSERT_TRUE(slow.ok) << slow.describe();
  EXPECT_EQ(slow.conn_id, first);
  EXPECT_EQ(slow.body, test_body(9, 5000));
  EXPECT_TRUE(c.wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                          [](uint64_t v) { return v >= 1; }));
}

TEST_F(Faults, CancelRunningRequestResetsItsStreamOnly) {
  start();
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  Call &victim = c.get(url("/?stall=1&fault_at=0"));
  Call &other = c.get(url("/?delay_ms=300&size=900&seed=5"));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.streams_stalled >= 1; }));
  ASSERT_EQ(h2pool_cancel(c.pool(), victim.id), H2POOL_OK);
  WAIT_DONE(victim);
  EXPECT_EQ(victim.code, H2POOL_ERR_CANCELLED) << victim.describe();
  ASSERT_GT(victim.err_stream_id, 0) << victim.describe();
  EXPECT_TRUE(wait_client_reset(victim.err_stream_id, 8 /* CANCEL */));
  WAIT_DONE(other);
  ASSERT_TRUE(other.ok) << other.describe();
  EXPECT_EQ(other.body, test_body(5, 900));
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(Faults, LoweredMaxConcurrentStreamsIsRespectedAfterTheAck) {
  start();
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  Client &c = client(cfg);
  std::vector<Call *> calls;
  for (int i = 0; i < 8; ++i)
    calls.push_back(
        &c.get(url("/?delay_ms=400&size=100&seed=" + std::to_string(i))));
  ASSERT_TRUE(
      wait_server([](const ServerStats &s) { return s.requests >= 8; }));
  Call &lower = c.get(url("/?settings_mcs=2"));
  WAIT_DONE(lower);
  ASSERT_TRUE(lower.ok) << lower.describe();
  ASSERT_TRUE(wait_server(
      [](const ServerStats &s) { return s.settings_lowered_acked == 1; }));
  for (int i = 8; i < 20; ++i)
    calls.push_back(
        &c.get(url("/?delay_ms=30&size=100&seed=" + std::to_string(i))));
  for (size_t i = 0; i < calls.size(); ++i) {
    WAIT_DONE(*calls[i]);
    ASSERT_TRUE(calls[i]->ok) << i << ": " << calls[i]->describe();
    EXPECT_EQ(calls[i]->body, test_body(i, 100));
  }
  ServerStats s = server_->stats();
  EXPECT_GE(s.peak_streams_after_settings_ack, 1u);
  EXPECT_LE(s.peak_streams_after_settings_ack, 2u);
  EXPECT_EQ(s.connections_accepted, 1u);
}

// ---------------------------------------------------------------------------
// Limits and malformed responses

class HugeHeaders : public Faults,
                    public ::testing::WithParamInterface<const char *> {};

TEST_P(HugeHeaders, FailWithResponseTooLargeAndConnectionStaysUsable) {
  start();
  Config cfg;
  // 64 KiB: nghttp2 itself rejects header blocks spread over more than 8
  // CONTINUATION frames (~144 KiB) as a connection error, so the library's
  // byte limit is exercised below that.
  h2pool_config_set_max_response_headers(cfg, 64u << 10, 1000);
  Client &c = client(cfg);
  Call &call = c.get(url(std::string("/?") + GetParam()));
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok);
  EXPECT_EQ(call.code, H2POOL_ERR_RESPONSE_TOO_LARGE) << call.describe();
  Call &next = c.get(url("/?size=10&seed=1"));
  WAIT_DONE(next);
  ASSERT_TRUE(next.ok) << next.describe();
  EXPECT_EQ(next.body, test_body(1, 10));
}

// Over 1000 fields; over 64 KiB (120 KiB, in HEADERS + 7 CONTINUATION).
INSTANTIATE_TEST_SUITE_P(Kind, HugeHeaders,
                         ::testing::Values("hdr_count=2000&hdr_size=1",
                                           "hdr_count=30&hdr_size=4000"),
                         [](const auto &info) {
                           return std::string(info.index == 0 ? "ManyFields"
                                                              : "ManyBytes");
                         });

TEST_F(Faults, BodyOverLimitFailsWithResponseTooLarge) {
  start();
  Config cfg;
  h2pool_config_set_max_response_body_bytes(cfg, 10000);
  Client &c = client(cfg);
  Call &call = c.get(url("/?size=100000"));
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok);
  EXPECT_EQ(call.code, H2POOL_ERR_RESPONSE_TOO_LARGE) << call.describe();
  EXPECT_LE(call.body.size(), 10000u);
  Call &next = c.get(url("/?size=10000&seed=2"));
  WAIT_DONE(next);
  ASSERT_TRUE(next.ok) << next.describe();
  EXPECT_EQ(next.body, test_body(2, 10000));
}

class ContentLengthMismatch
    : public Faults,
      public ::testing::WithParamInterface<const char *> {};

TEST_P(ContentLengthMismatch, FailsWithProtocolNeverSuccess) {
  start();
  Config cfg;
  Client &c = client(cfg);
  Call &call = c.get(url(std::string("/?size=1000&") + GetParam()));
  WAIT_DONE(call);
  EXPECT_FALSE(call.ok) << call.describe();
  EXPECT_EQ(call.code, H2POOL_ERR_PROTOCOL) << call.describe();
}

INSTANTIATE_TEST_SUITE_P(Announced, ContentLengthMismatch,
                         ::testing::Values("cl=500", "cl=2000"),
                         [](const auto &info) {
                           return std::string(info.index == 0 ? "Shorter"
                                                              : "Longer");
                         });

} // namespace
} // namespace faults
