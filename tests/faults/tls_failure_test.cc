// Failure paths over TLS, against the raw frame scripter speaking TLS: a
// server that hangs up right after SETTINGS is paced like any failing
// server, and when a TLS connection ends right after something went wrong,
// the error names what went wrong first, not the close that followed.
#include "fault_util.h"
#include "raw_server.h"
#include "self_signed_cert.h"

namespace faults {
namespace {

using namespace h2pool_testing::h2frame;
using h2pool_testing::RawConnection;
using h2pool_testing::RawServer;
using h2pool_testing::RawTlsOptions;
using h2pool_testing::SelfSignedCert;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

class TlsFailures : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(cert_.ok()); }
  void TearDown() override {
    client_.reset();
    if (server_)
      server_->stop();
  }
  // Starts a TLS raw server running `script` and a pool that trusts it.
  Client &start(RawServer::Script script) {
    RawTlsOptions tls;
    tls.cert_file = cert_.cert_file();
    tls.key_file = cert_.key_file();
    server_ = std::make_unique<RawServer>(std::move(script), tls);
    EXPECT_EQ(server_->start(), 0);
    Config cfg;
    h2pool_config_set_tls_ca_file(cfg, cert_.cert_file().c_str());
    h2pool_config_set_reconnect_backoff(cfg, 20, 200);
    h2pool_config_set_request_timeout_ms(cfg, 10000);
    client_ = std::make_unique<Client>(cfg.get());
    return *client_;
  }
  std::string url() const {
    return "https://127.0.0.1:" + std::to_string(server_->port()) + "/";
  }

  SelfSignedCert cert_;
  std::unique_ptr<RawServer> server_;
  std::unique_ptr<Client> client_;
};

// SETTINGS, close_notify and FIN in one segment: the client reads them
// together, so the requests are still queued when the connection dies. It
// failed before serving anything, and counts. (Were the close to come a
// moment later, the request would already be on the connection, and a
// request sent on a connection that then closes without GOAWAY is lost,
// not retried.)
TEST_F(TlsFailures, SettingsThenFinBacksOffAndFailsAfterFourConnections) {
  Client &c = start([](RawConnection &conn) {
    conn.send_and_close(settings({{0x3, 100}}) + settings_ack());
  });
  Call &call = c.get(url());
  WAIT_DONE(call);
  uint64_t connections = server_->stats().connections;
  std::printf("%s, %llu connections\n", call.describe().c_str(),
              (unsigned long long)connections);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECTION_LOST) << call.describe();
  EXPECT_EQ(connections, 4u);
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_FAILED), 4u);
}

// A protocol violation answered by the server's FIN: PROTOCOL, not LOST.
TEST_F(TlsFailures, ProtocolErrorFollowedByFinIsReportedAsTheProtocolError) {
  Client &c = start([](RawConnection &conn) {
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    if (conn.wait_request() == 0)
      return;
    if (conn.send(frame(kData, 0, 0, "oops"))) // DATA on stream 0
      conn.close_without_notify();
  });
  Call &call = c.get(url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROTOCOL) << call.describe();
}

// A malformed response header followed by FIN: the stream's error is the
// malformed response.
TEST_F(TlsFailures, BadResponseHeaderFollowedByFinIsReportedAsProtocol) {
  Client &c = start([](RawConnection &conn) {
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    uint32_t sid = conn.wait_request();
    if (sid == 0)
      return;
    std::string block = hpack_status(200) + hpack_literal("Bad-Case", "x");
    if (conn.send(headers(sid, block, kEndHeaders)))
      conn.close_without_notify();
  });
  Call &call = c.get(url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROTOCOL) << call.describe();
}

// Not HTTP/2 after a good handshake: a protocol error, not a TLS failure.
TEST_F(TlsFailures, GarbageRightAfterTheHandshakeIsProtocolNotTls) {
  Client &c = start([](RawConnection &conn) {
    if (conn.send("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"))
      conn.close_without_notify();
  });
  Call &call = c.get(url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROTOCOL) << call.describe();
}

} // namespace
} // namespace faults
