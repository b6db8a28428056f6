// Extended CONNECT (RFC 8441) through the public C API, against the test
// server's echo tunnels (ServerOptions::extended_connect): bytes both ways
// under flow control, the server that does not allow it, HTTP/1.1, tunnels
// and ordinary requests sharing a connection, a non-2xx answer, retries of
// refused tunnels, and which timeouts apply to an open tunnel.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../faults/fault_util.h"
#include "h2pool.h"
#include "test_server.h"

namespace {

using faults::Call;
using faults::Client;
using faults::Config;
using faults::kWait;
using faults::Ms;
using faults::Opts;
using h2pool_testing::ServerOptions;
using h2pool_testing::ServerStats;
using h2pool_testing::TestServer;
using namespace std::chrono_literals;

// One tunnel: what the caller uploads (a body reader fed by send()), what
// came back (on_data), the 2xx that opened it (on_headers) and its
// completion. The loop thread never reads `id`; only the test thread does.
class Tunnel {
public:
  explicit Tunnel(h2pool *pool) : pool_(pool) {
    EXPECT_EQ(h2pool_request_opts_set_protocol(opts_, "websocket"), H2POOL_OK);
    EXPECT_EQ(h2pool_request_opts_set_body_reader(opts_, &Tunnel::read, -1),
              H2POOL_OK);
    EXPECT_EQ(h2pool_request_opts_set_on_headers(opts_, &Tunnel::on_headers),
              H2POOL_OK);
    EXPECT_EQ(h2pool_request_opts_set_on_data(opts_, &Tunnel::on_data),
              H2POOL_OK);
  }
  h2pool_request_opts *opts() { return opts_; }

  int open(const std::string &url) {
    return h2pool_request(pool_, "CONNECT", url.c_str(), nullptr, 0, nullptr, 0,
                          opts_, &Tunnel::on_complete, this, &id_);
  }
  void send(const std::string &bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      out_ += bytes;
    }
    EXPECT_EQ(h2pool_request_resume_upload(pool_, id_), H2POOL_OK);
  }
  // Ends the caller's side (END_STREAM once what was sent is out).
  void finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      end_ = true;
    }
    EXPECT_EQ(h2pool_request_resume_upload(pool_, id_), H2POOL_OK);
  }
  // Opens the tunnel and waits for its response headers.
  bool open_and_wait(const std::string &url) {
    return open(url) == H2POOL_OK && wait_open();
  }
  // Ends the caller's side and expects the tunnel to complete successfully.
  ::testing::AssertionResult close_cleanly() {
    finish();
    if (done.wait() && done.ok)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << done.describe();
  }
  bool wait_open(Ms timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return status_ != 0; });
  }
  // Waits until `n` bytes have come back in all.
  bool wait_received(size_t n, Ms timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return in_.size() >= n; });
  }
  int status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  uint64_t connection_id() {
    std::lock_guard<std::mutex> lock(mu_);
    return connection_id_;
  }
  std::string received() {
    std::lock_guard<std::mutex> lock(mu_);
    return in_;
  }
  Call done;

private:
  static int64_t read(uint8_t *buf, size_t len, int *eof, void *user_data) {
    auto t = static_cast<Tunnel *>(user_data);
    std::lock_guard<std::mutex> lock(t->mu_);
    size_t n = std::min(len, t->out_.size() - t->out_pos_);
    std::memcpy(buf, t->out_.data() + t->out_pos_, n);
    t->out_pos_ += n;
    if (t->out_pos_ == t->out_.size() && t->end_)
      *eof = 1;
    return (n == 0 && !*eof) ? H2POOL_BODY_WAIT : int64_t(n);
  }
  static int on_headers(const h2pool_response *resp, void *user_data) {
    auto t = static_cast<Tunnel *>(user_data);
    {
      std::lock_guard<std::mutex> lock(t->mu_);
      t->status_ = h2pool_response_status(resp);
      t->connection_id_ = h2pool_response_connection_id(resp);
    }
    t->cv_.notify_all();
    return 0;
  }
  static int on_data(const uint8_t *data, size_t len, void *user_data) {
    auto t = static_cast<Tunnel *>(user_data);
    {
      std::lock_guard<std::mutex> lock(t->mu_);
      t->in_.append(reinterpret_cast<const char *>(data), len);
    }
    t->cv_.notify_all();
    return 0;
  }
  static void on_complete(const h2pool_response *resp, const h2pool_error *err,
                          void *user_data) {
    Call::callback(resp, err, &static_cast<Tunnel *>(user_data)->done);
  }

  h2pool *pool_;
  Opts opts_;
  uint64_t id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string out_;
  size_t out_pos_ = 0;
  bool end_ = false;
  std::string in_;
  int status_ = 0;
  uint64_t connection_id_ = 0;
};

// A pool whose tunnels it outlives: the pool goes first, so no callback
// reaches a freed Tunnel.
class TunnelPool : public Client {
public:
  using Client::Client;
  ~TunnelPool() { destroy(); }
  Tunnel &tunnel() {
    tunnels_.push_back(std::make_unique<Tunnel>(pool()));
    return *tunnels_.back();
  }

private:
  std::vector<std::unique_ptr<Tunnel>> tunnels_;
};

int calls(Call &c) {
  std::lock_guard<std::mutex> lock(c.mu);
  return c.calls;
}

ServerOptions tunnel_server() {
  ServerOptions o;
  o.extended_connect = true;
  return o;
}

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = char(seed + (i * 31 + i / 7) % 91);
  return s;
}

TEST(Tunnel, EchoesBothWaysBeyondTheFlowControlWindows) {
  TestServer server(tunnel_server()); // 65535-byte windows (nghttp2's)
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  // The stream window h2pool grants the server: the echo of the large
  // message has to wait for window updates as the test takes it.
  ASSERT_EQ(h2pool_config_set_flow_control_windows(cfg, 65535, 65535),
            H2POOL_OK);
  TunnelPool client(cfg);
  Tunnel &t = client.tunnel();
  ASSERT_TRUE(t.open_and_wait(server.base_url() + "/chat?room=1"));
  EXPECT_EQ(t.status(), 200);

  const std::vector<std::string> messages = {"hello", pattern(1 << 20, 'a'),
                                             "after the large one"};
  std::string expected;
  for (const auto &m : messages) {
    t.send(m);
    expected += m;
    ASSERT_TRUE(t.wait_received(expected.size()))
        << t.received().size() << " of " << expected.size();
  }
  EXPECT_TRUE(t.received() == expected) << "echo differs";
  EXPECT_TRUE(t.close_cleanly());
  EXPECT_EQ(t.done.status, 200);
  EXPECT_EQ(t.done.body, ""); // streamed, not buffered

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "CONNECT");
  EXPECT_EQ(reqs[0].protocol, "websocket");
  EXPECT_EQ(reqs[0].scheme, "http");
  EXPECT_EQ(reqs[0].path, "/chat?room=1");
  EXPECT_EQ(reqs[0].authority, "127.0.0.1:" + std::to_string(server.port()));
  for (const auto &[name, value] : reqs[0].headers) {
    EXPECT_NE(name, "content-length");
    EXPECT_NE(name, "accept-encoding");
  }
  EXPECT_EQ(server.stats().tunnel_bytes_echoed, expected.size());
}

TEST(Tunnel, ServerWithoutTheSettingFailsWithItsOwnCode) {
  TestServer server; // no SETTINGS_ENABLE_CONNECT_PROTOCOL
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  TunnelPool client(cfg);
  Tunnel &t = client.tunnel();
  ASSERT_EQ(t.open(server.base_url() + "/chat"), H2POOL_OK);
  ASSERT_TRUE(t.done.wait()) << t.done.describe();
  EXPECT_FALSE(t.done.ok);
  EXPECT_EQ(t.done.code, H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED)
      << t.done.describe();
  EXPECT_NE(t.done.message.find("SETTINGS_ENABLE_CONNECT_PROTOCOL"),
            std::string::npos)
      << t.done.message;
  EXPECT_EQ(t.status(), 0); // never opened
  // Nothing was sent, and the connection still serves.
  Call &get = client.get(server.base_url() + "/");
  ASSERT_TRUE(get.wait()) << get.describe();
  EXPECT_TRUE(get.ok) << get.describe();
  EXPECT_EQ(server.stats().requests, 1u);
  EXPECT_EQ(server.stats().connections_accepted, 1u);
  EXPECT_EQ(server.stats().client_resets, 0u);
}

TEST(Tunnel, NeverOverHttp11) {
  // The HTTP/1.1 session refuses before writing anything, so the server's
  // protocol does not matter: it only has to accept the connection.
  TestServer server(tunnel_server());
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_http_version(cfg, H2POOL_HTTP_VERSION_1_1),
            H2POOL_OK);
  TunnelPool client(cfg);
  Tunnel &t = client.tunnel();
  ASSERT_EQ(t.open(server.base_url() + "/chat"), H2POOL_OK);
  ASSERT_TRUE(t.done.wait()) << t.done.describe();
  EXPECT_EQ(t.done.code, H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED)
      << t.done.describe();
  EXPECT_NE(t.done.message.find("HTTP/1.1"), std::string::npos)
      << t.done.message;
}

TEST(Tunnel, TunnelsAndRequestsShareOneConnection) {
  TestServer server(tunnel_server());
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_max_connections_per_endpoint(cfg, 1), H2POOL_OK);
  TunnelPool client(cfg);
  constexpr int kTunnels = 3, kGets = 5;
  std::vector<Tunnel *> tunnels;
  for (int i = 0; i < kTunnels; ++i) {
    tunnels.push_back(&client.tunnel());
    ASSERT_EQ(
        tunnels.back()->open(server.base_url() + "/t" + std::to_string(i)),
        H2POOL_OK);
  }
  for (auto &t : tunnels)
    ASSERT_TRUE(t->wait_open());
  // Ordinary requests while every tunnel is open.
  std::vector<Call *> gets;
  for (int i = 0; i < kGets; ++i)
    gets.push_back(&client.get(server.base_url() +
                               "/?size=1000&seed=" + std::to_string(i)));
  for (int i = 0; i < kTunnels; ++i)
    tunnels[i]->send("message " + std::to_string(i));
  for (int i = 0; i < kTunnels; ++i) {
    std::string want = "message " + std::to_string(i);
    ASSERT_TRUE(tunnels[i]->wait_received(want.size()));
    EXPECT_EQ(tunnels[i]->received(), want);
  }
  uint64_t conn = tunnels[0]->connection_id();
  EXPECT_NE(conn, 0u);
  for (Call *g : gets) {
    ASSERT_TRUE(g->wait()) << g->describe();
    EXPECT_TRUE(g->ok) << g->describe();
    EXPECT_EQ(g->body.size(), 1000u);
    EXPECT_EQ(g->conn_id, conn);
  }
  for (auto &t : tunnels) {
    EXPECT_EQ(t->connection_id(), conn);
    EXPECT_TRUE(t->close_cleanly());
  }
  ServerStats st = server.stats();
  EXPECT_EQ(st.connections_accepted, 1u);
  EXPECT_EQ(st.tunnels_opened, uint64_t(kTunnels));
  EXPECT_GE(st.peak_concurrent_streams, uint32_t(kTunnels + 1));
}

TEST(Tunnel, CountsAgainstMaxConcurrentStreams) {
  ServerOptions o = tunnel_server();
  o.max_concurrent_streams = 2;
  TestServer server(o);
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_max_connections_per_endpoint(cfg, 1), H2POOL_OK);
  TunnelPool client(cfg);
  Tunnel &a = client.tunnel();
  Tunnel &b = client.tunnel();
  ASSERT_EQ(a.open(server.base_url() + "/a"), H2POOL_OK);
  ASSERT_EQ(b.open(server.base_url() + "/b"), H2POOL_OK);
  ASSERT_TRUE(a.wait_open());
  ASSERT_TRUE(b.wait_open());
  // Both slots are held by open tunnels: the request waits for one.
  Call &get = client.get(server.base_url() + "/");
  ASSERT_TRUE(client.wait_stat(H2POOL_STAT_REQUESTS_QUEUED,
                               [](uint64_t n) { return n == 1; }));
  EXPECT_EQ(client.stat(H2POOL_STAT_STREAMS_ACTIVE), 2u);
  EXPECT_EQ(calls(get), 0) << get.describe();
  EXPECT_TRUE(a.close_cleanly());
  ASSERT_TRUE(get.wait()) << get.describe();
  EXPECT_TRUE(get.ok) << get.describe();
  EXPECT_LE(server.stats().peak_concurrent_streams, 2u);
  EXPECT_TRUE(b.close_cleanly());
}

TEST(Tunnel, NonSuccessStatusIsAnOrdinaryResponse) {
  TestServer server(tunnel_server());
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  TunnelPool client(cfg);
  Tunnel &t = client.tunnel();
  // The caller's side stays open (the reader waits): the pool stops it.
  ASSERT_EQ(t.open(server.base_url() + "/chat?status=403"), H2POOL_OK);
  ASSERT_TRUE(t.done.wait()) << t.done.describe();
  EXPECT_TRUE(t.done.ok) << t.done.describe();
  EXPECT_EQ(t.done.status, 403);
  EXPECT_EQ(t.status(), 403); // on_headers saw it too
  EXPECT_EQ(t.received(), "hello from h2pool test server\n");
  ASSERT_TRUE(server.wait_for_stats(
      [](const ServerStats &s) { return s.client_resets == 1; }, kWait));
  EXPECT_EQ(server.client_resets()[0].error_code, 8u); // CANCEL
  EXPECT_EQ(server.stats().tunnels_opened, 0u);
}

TEST(Tunnel, RefusedTunnelIsRetried) {
  ServerOptions o = tunnel_server();
  o.refuse_every = 2; // the tunnel's first stream (the second) is refused
  TestServer server(o);
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  TunnelPool client(cfg);
  Call &get = client.get(server.base_url() + "/");
  ASSERT_TRUE(get.wait()) << get.describe();
  Tunnel &t = client.tunnel();
  ASSERT_TRUE(t.open_and_wait(server.base_url() + "/chat"));
  t.send("once more");
  ASSERT_TRUE(t.wait_received(9));
  EXPECT_TRUE(t.close_cleanly());
  EXPECT_EQ(server.stats().streams_refused, 1u);
  EXPECT_EQ(server.stats().tunnels_opened, 1u);
}

TEST(Tunnel, PoolDefaultTimeoutDoesNotCutAnOpenTunnel) {
  TestServer server(tunnel_server());
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_request_timeout_ms(cfg, 300), H2POOL_OK);
  TunnelPool client(cfg);
  Tunnel &t = client.tunnel();
  ASSERT_TRUE(t.open_and_wait(server.base_url() + "/chat"));
  // A request that outlives the tunnel's 300 ms: once it is answered, the
  // tunnel's timer has long fired.
  Opts slow;
  ASSERT_EQ(h2pool_request_opts_set_timeout_ms(slow, 10000), H2POOL_OK);
  Call &clock =
      client.request(server.base_url() + "/?delay_ms=900", "GET", "", slow);
  ASSERT_TRUE(clock.wait()) << clock.describe();
  ASSERT_TRUE(clock.ok) << clock.describe();
  EXPECT_EQ(calls(t.done), 0) << t.done.describe();
  t.send("still open");
  ASSERT_TRUE(t.wait_received(10));
  EXPECT_TRUE(t.close_cleanly());
}

TEST(Tunnel, RequestTimeoutBoundsTheWholeTunnel) {
  TestServer server(tunnel_server());
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  TunnelPool client(cfg);
  Tunnel &t = client.tunnel();
  ASSERT_EQ(h2pool_request_opts_set_timeout_ms(t.opts(), 500), H2POOL_OK);
  ASSERT_TRUE(t.open_and_wait(server.base_url() + "/chat"));
  ASSERT_TRUE(t.done.wait()) << t.done.describe();
  EXPECT_EQ(t.done.code, H2POOL_ERR_TIMEOUT) << t.done.describe();
  ASSERT_TRUE(server.wait_for_stats(
      [](const ServerStats &s) { return s.client_resets == 1; }, kWait));
}

TEST(TunnelApi, ProtocolSetterValidates) {
  Opts o;
  EXPECT_EQ(h2pool_request_opts_set_protocol(nullptr, "websocket"),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, "web socket"),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, "ws\r\nx: y"),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, std::string(65, 'a').c_str()),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, std::string(64, 'a').c_str()),
            H2POOL_OK);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, "connect-udp"), H2POOL_OK);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, ""), H2POOL_OK);
  EXPECT_EQ(h2pool_request_opts_set_protocol(o, nullptr), H2POOL_OK);
  EXPECT_STREQ(h2pool_strerror(H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED),
               "server does not support extended CONNECT");
}

TEST(TunnelApi, RefusesWhatATunnelCannotCarry) {
  Config cfg;
  TunnelPool client(cfg);
  Opts o;
  ASSERT_EQ(h2pool_request_opts_set_protocol(o, "websocket"), H2POOL_OK);
  auto cb = [](const h2pool_response *, const h2pool_error *, void *) {
    ADD_FAILURE() << "a refused request got a callback";
  };
  uint64_t id = 1;
  EXPECT_EQ(h2pool_request(client.pool(), "GET", "http://127.0.0.1:1/", nullptr,
                           0, nullptr, 0, o, cb, nullptr, &id),
            H2POOL_ERR_INVALID_METHOD);
  EXPECT_EQ(id, 0u);
  const h2pool_header cl = {"content-length", 14, "5", 1};
  EXPECT_EQ(h2pool_request(client.pool(), "CONNECT", "http://127.0.0.1:1/", &cl,
                           1, nullptr, 0, o, cb, nullptr, nullptr),
            H2POOL_ERR_INVALID_HEADER);
}

} // namespace
