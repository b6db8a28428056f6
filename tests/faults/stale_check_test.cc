// The stale-connection check (h2pool_config_set_stale_check): a request on
// an HTTP/2 connection silent for a while goes out with a PING; a
// connection from which nothing then arrives within the deadline is closed,
// and what was sent on it since is sent again elsewhere. The raw server
// plays a server that answers once and then goes silent, as one behind an
// expired NAT mapping looks from the client.
#include "fault_util.h"
#include "raw_server.h"

#include <atomic>
#include <mutex>

namespace faults {
namespace {

using namespace h2pool_testing;
using namespace h2pool_testing::h2frame;

void respond(RawConnection &c, uint32_t sid, const std::string &body) {
  c.send(headers(sid,
                 hpack_status(200) + hpack_literal("content-length",
                                                   std::to_string(body.size())),
                 kEndHeaders) +
         data(sid, body, kEndStream));
}

bool is_ping(const ClientFrame &f) {
  return f.type == kPing && !(f.flags & kAck);
}

// What the first connection's script saw after its one answer.
struct Silent {
  std::mutex mu;
  bool second_request = false;
  bool ping = false; // a PING arrived with or after it
};

// The first connection answers one request, then (if `then` is set) runs
// `then` on the next one and stays silent: it answers no PING and sends
// nothing more. Later connections answer `answers` requests each with
// "second".
RawServer::Script silent_after_one(
    Silent &seen, std::atomic<int> &conns, int answers,
    std::function<void(RawConnection &, uint32_t)> then = nullptr) {
  return [&seen, &conns, answers, then](RawConnection &c) {
    int n = ++conns;
    if (!c.send(settings({{0x3 /* MAX_CONCURRENT_STREAMS */, 100}}) +
                settings_ack()))
      return;
    if (n > 1) {
      for (int i = 0; i < answers; ++i) {
        uint32_t sid = c.wait_request();
        if (sid == 0)
          return;
        respond(c, sid, "second");
      }
      return;
    }
    uint32_t sid = c.wait_request();
    if (sid == 0)
      return;
    respond(c, sid, "first");
    size_t answered = c.frames().size();
    uint32_t next = c.wait_request(Ms(10000));
    if (next == 0)
      return;
    if (then)
      then(c, next);
    // The PING goes out with the HEADERS (before it, in nghttp2's order);
    // look for it among what arrived since, reading a little more if need be.
    auto ping_since = [&] {
      for (size_t i = answered; i < c.frames().size(); ++i)
        if (is_ping(c.frames()[i]))
          return true;
      return false;
    };
    auto deadline = Clock::now() + Ms(1000);
    while (!ping_since() && Clock::now() < deadline)
      c.read_frame(Ms(50));
    std::lock_guard<std::mutex> lock(seen.mu);
    seen.second_request = true;
    seen.ping = ping_since();
  };
}

class StaleCheck : public ::testing::Test {
protected:
  void TearDown() override {
    client_.reset();
    if (server_)
      server_->stop();
  }
  void start(RawServer::Script script, uint32_t after_idle_ms,
             uint32_t deadline_ms, uint32_t request_timeout_ms) {
    server_ = std::make_unique<RawServer>(std::move(script));
    ASSERT_EQ(server_->start(), 0);
    Config cfg;
    ASSERT_EQ(h2pool_config_set_stale_check(cfg, after_idle_ms, deadline_ms),
              H2POOL_OK);
    h2pool_config_set_request_timeout_ms(cfg, request_timeout_ms);
    client_ = std::make_unique<Client>(cfg.get());
  }
  // The first request, answered; then the connection stays quiet for
  // longer than `idle_ms`. (The wait is the condition under test, time
  // without reads, not a stand-in for an event.)
  Call &first_then_quiet(uint32_t idle_ms) {
    Call &a = client_->get(server_->base_url() + "/a");
    EXPECT_TRUE(a.wait()) << "no callback";
    EXPECT_TRUE(a.ok) << a.describe();
    EXPECT_EQ(a.body, "first");
    std::this_thread::sleep_for(Ms(idle_ms + 50));
    return a;
  }

  // Ends the pool and the server, whose scripts are then done with seen_.
  Silent &script_results() {
    client_.reset();
    server_->stop();
    return seen_;
  }

  // Before the server, so its scripts never outlive them.
  Silent seen_;
  std::atomic<int> conns_{0};
  std::unique_ptr<RawServer> server_;
  std::unique_ptr<Client> client_;
};

// A GET and a POST on the silent connection: both go again on a new
// connection once the deadline passes, long before the request timeout.
TEST_F(StaleCheck, SilentConnectionIsClosedAndItsRequestsRetried) {
  start(silent_after_one(seen_, conns_, 2), 50, 300, 20000);
  Call &a = first_then_quiet(50);
  Call &b = client_->get(server_->base_url() + "/b");
  Call &c = client_->request(server_->base_url() + "/c", "POST", "payload");
  ASSERT_TRUE(b.wait()) << "no callback for the GET";
  ASSERT_TRUE(c.wait()) << "no callback for the POST";
  std::printf("GET: %s after %lld ms\nPOST: %s after %lld ms\n",
              b.describe().c_str(), (long long)b.elapsed().count(),
              c.describe().c_str(), (long long)c.elapsed().count());
  for (Call *call : {&b, &c}) {
    EXPECT_TRUE(call->ok) << call->describe();
    EXPECT_EQ(call->body, "second");
    EXPECT_NE(call->conn_id, a.conn_id);
    EXPECT_EQ(call->calls, 1);
    // The deadline passed first; the request timeout was far off.
    EXPECT_GE(call->elapsed(), Ms(250));
    EXPECT_LT(call->elapsed(), Ms(10000));
  }
  EXPECT_EQ(conns_.load(), 2);
  Silent &seen = script_results();
  EXPECT_TRUE(seen.second_request);
  EXPECT_TRUE(seen.ping) << "no PING came with the request";
}

// Any frame within the deadline proves the connection alive: here the
// response's HEADERS, after which the server stalls. The connection stays,
// and the request ends by its own timeout, not as a lost connection.
TEST_F(StaleCheck, AnythingArrivingInTimeKeepsTheConnection) {
  start(silent_after_one(seen_, conns_, 1,
                         [](RawConnection &c, uint32_t sid) {
                           c.send(headers(sid, hpack_status(200), kEndHeaders));
                         }),
        50, 300, 1500);
  first_then_quiet(50);
  Call &b = client_->get(server_->base_url() + "/b");
  ASSERT_TRUE(b.wait()) << "no callback";
  std::printf("outcome: %s after %lld ms\n", b.describe().c_str(),
              (long long)b.elapsed().count());
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.code, H2POOL_ERR_TIMEOUT) << b.describe();
  EXPECT_GE(b.elapsed(), Ms(1400));
  EXPECT_EQ(conns_.load(), 1);
  Silent &seen = script_results();
  EXPECT_TRUE(seen.ping) << "no PING came with the request";
}

// after_idle_ms 0: no PING, and the request waits out its own timeout on
// the silent connection.
TEST_F(StaleCheck, OffSendsNoPingAndWaits) {
  start(silent_after_one(seen_, conns_, 1), 0, 300, 1000);
  first_then_quiet(50);
  Call &b = client_->get(server_->base_url() + "/b");
  ASSERT_TRUE(b.wait()) << "no callback";
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.code, H2POOL_ERR_TIMEOUT) << b.describe();
  EXPECT_EQ(conns_.load(), 1);
  Silent &seen = script_results();
  EXPECT_TRUE(seen.second_request);
  EXPECT_FALSE(seen.ping);
}

// A connection read from recently is not checked: no PING goes with the
// request.
TEST_F(StaleCheck, RecentlyReadConnectionSendsNoPing) {
  start(silent_after_one(
            seen_, conns_, 1,
            [](RawConnection &c, uint32_t sid) { respond(c, sid, "again"); }),
        60000, 300, 5000);
  first_then_quiet(0);
  Call &b = client_->get(server_->base_url() + "/b");
  ASSERT_TRUE(b.wait()) << "no callback";
  EXPECT_TRUE(b.ok) << b.describe();
  EXPECT_EQ(b.body, "again");
  Silent &seen = script_results();
  EXPECT_TRUE(seen.second_request);
  EXPECT_FALSE(seen.ping);
}

} // namespace
} // namespace faults
