// Connection coalescing (RFC 9113 section 9.1.1, RFC 8336 ORIGIN frames,
// RFC 9110 421 Misdirected Request) against the scriptable server over
// TLS. Every origin is https://NAME (port 443) sent by --connect-to to a
// loopback server on an ephemeral port, so that ORIGIN frames can name the
// origins before the port is known; DNS goes to a silent local socket.
#include "dns_responder.h"
#include "fault_util.h"
#include "self_signed_cert.h"
#include "test_server.h"

namespace faults {
namespace {

using h2pool_testing::DnsSilence;
using h2pool_testing::SelfSignedCert;
using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

struct LogLines {
  std::mutex mu;
  std::vector<std::string> lines;
  static void cb(int, const char *msg, void *user) {
    auto self = static_cast<LogLines *>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    self->lines.push_back(msg);
  }
  bool has(const std::string &text) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto &l : lines)
      if (l.find(text) != std::string::npos)
        return true;
    return false;
  }
};

// A Call plus the peer address the response reports.
struct Peer {
  Call call;
  std::string remote_ip;
  int remote_port = 0;
  static void cb(const h2pool_response *resp, const h2pool_error *err,
                 void *user) {
    auto p = static_cast<Peer *>(user);
    if (resp) {
      p->remote_ip = h2pool_response_remote_ip(resp);
      p->remote_port = h2pool_response_remote_port(resp);
    }
    Call::callback(resp, err, &p->call); // last: it wakes the test
  }
};

class Coalesce : public ::testing::Test {
protected:
  // A TLS server on `ip` with a certificate for `names` (SAN syntax).
  std::unique_ptr<TestServer>
  serve(ServerOptions opts, const char *ip = nullptr, uint16_t port = 0) {
    opts.tls_cert_file = cert_->cert_file();
    opts.tls_key_file = cert_->key_file();
    if (ip)
      opts.host = ip;
    opts.port = port;
    auto s = std::make_unique<TestServer>(std::move(opts));
    return s->start() == 0 ? std::move(s) : nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(silent_.ok());
    ASSERT_EQ(h2pool_config_set_dns_servers(cfg_, silent_.server().c_str()),
              H2POOL_OK);
    h2pool_config_set_log(cfg_, LogLines::cb, H2POOL_LOG_DEBUG, &log_);
  }
  void certify(const char *names) {
    cert_ = std::make_unique<SelfSignedCert>(names);
    ASSERT_TRUE(cert_->ok());
    ASSERT_EQ(h2pool_config_set_tls_ca_file(cfg_, cert_->cert_file().c_str()),
              H2POOL_OK);
  }
  // https://NAME goes to ip:port.
  void route(const std::string &name, const std::string &ip, uint16_t port) {
    std::string rule = name + ":443:" + ip + ":" + std::to_string(port);
    ASSERT_EQ(h2pool_config_add_connect_to(cfg_, rule.c_str()), H2POOL_OK);
  }
  Peer &get(Client &c, const std::string &url, const char *method = "GET",
            const std::string &body = "") {
    peers_.push_back(std::make_unique<Peer>());
    Peer &p = *peers_.back();
    uint64_t id = 0;
    int rc = h2pool_request(c.pool(), method, url.c_str(), nullptr, 0,
                            reinterpret_cast<const uint8_t *>(body.data()),
                            body.size(), nullptr, &Peer::cb, &p, &id);
    EXPECT_EQ(rc, H2POOL_OK);
    return p;
  }

  DnsSilence silent_;
  LogLines log_;
  Config cfg_;
  std::unique_ptr<SelfSignedCert> cert_;
  std::deque<std::unique_ptr<Peer>> peers_; // outlive the pools below
};

TEST_F(Coalesce, TwoNamesOneCertificateShareOneConnection) {
  certify("DNS:a.test,DNS:b.test");
  auto server = serve({});
  ASSERT_TRUE(server);
  route("a.test", "127.0.0.1", server->port());
  route("b.test", "127.0.0.1", server->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/");
  WAIT_DONE(b.call);
  ASSERT_TRUE(b.call.ok) << b.call.describe();
  EXPECT_EQ(b.call.status, 200);
  EXPECT_EQ(b.call.conn_id, a.call.conn_id);
  // The accessors describe the connection the request really used.
  EXPECT_EQ(b.remote_ip, "127.0.0.1");
  EXPECT_EQ(b.remote_port, server->port());
  EXPECT_EQ(server->stats().connections_accepted, 1u);
  auto reqs = server->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].authority, "b.test");
  EXPECT_EQ(reqs[1].connection_id, reqs[0].connection_id);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_COALESCED), 1u);
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_CREATED), 1u);
  EXPECT_TRUE(log_.has("coalesced https://b.test:443 onto connection " +
                       std::to_string(a.call.conn_id) +
                       " of https://a.test:443"));
}

// RFC 9110 section 15.5.20: the server will not serve b.test on a.test's
// connection; the POST goes again on a connection of its own, and b.test
// stays off the shared one afterwards.
TEST_F(Coalesce, MisdirectedRequestGoesAgainOnAConnectionOfItsOwn) {
  certify("DNS:a.test,DNS:b.test");
  ServerOptions opts;
  opts.misdirect_host = "b.test";
  auto server = serve(opts);
  ASSERT_TRUE(server);
  route("a.test", "127.0.0.1", server->port());
  route("b.test", "127.0.0.1", server->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/echo", "POST", "payload");
  WAIT_DONE(b.call);
  ASSERT_TRUE(b.call.ok) << b.call.describe();
  EXPECT_EQ(b.call.status, 200);
  EXPECT_EQ(b.call.body, "payload");
  EXPECT_NE(b.call.conn_id, a.call.conn_id);
  EXPECT_EQ(server->stats().connections_accepted, 2u);
  auto reqs = server->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].connection_id, reqs[0].connection_id); // the 421
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[2].body, "payload");
  EXPECT_NE(reqs[2].connection_id, reqs[0].connection_id);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), 1u);

  Peer &again = get(c, "https://b.test/");
  WAIT_DONE(again.call);
  ASSERT_TRUE(again.call.ok) << again.call.describe();
  EXPECT_EQ(again.call.status, 200);
  EXPECT_EQ(again.call.conn_id, b.call.conn_id);
  EXPECT_EQ(server->requests().size(), 4u);
  EXPECT_EQ(server->stats().connections_accepted, 2u);
}

TEST_F(Coalesce, CertificateNotCoveringTheNameKeepsConnectionsApart) {
  certify("DNS:a.test");
  auto server = serve({});
  ASSERT_TRUE(server);
  route("a.test", "127.0.0.1", server->port());
  route("b.test", "127.0.0.1", server->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/");
  WAIT_DONE(b.call);
  // Its own connection, whose handshake finds the name missing.
  EXPECT_EQ(b.call.code, H2POOL_ERR_TLS_VERIFY) << b.call.describe();
  EXPECT_EQ(server->stats().connections_accepted, 2u);
  EXPECT_EQ(server->requests().size(), 1u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_COALESCED), 0u);
}

TEST_F(Coalesce, NamesResolvingToOtherAddressesKeepConnectionsApart) {
  certify("DNS:a.test,DNS:b.test");
  auto one = serve({}, "127.0.0.1");
  ASSERT_TRUE(one);
  auto two = serve({}, "127.0.0.2", one->port());
  if (!two)
    GTEST_SKIP() << "cannot listen on 127.0.0.2:" << one->port();
  route("a.test", "127.0.0.1", one->port());
  route("b.test", "127.0.0.2", one->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/");
  WAIT_DONE(b.call);
  ASSERT_TRUE(b.call.ok) << b.call.describe();
  EXPECT_NE(b.call.conn_id, a.call.conn_id);
  EXPECT_EQ(b.remote_ip, "127.0.0.2");
  EXPECT_EQ(one->requests().size(), 1u);
  EXPECT_EQ(two->requests().size(), 1u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_COALESCED), 0u);
}

// RFC 8336: the origin set (a.test and c.test) leaves b.test out, although
// the certificate and the address would allow it.
TEST_F(Coalesce, OriginFrameWithoutTheNameNarrows) {
  certify("DNS:a.test,DNS:b.test,DNS:c.test");
  ServerOptions opts;
  opts.origin_frame = std::vector<std::string>{"https://c.test"};
  auto server = serve(opts);
  ASSERT_TRUE(server);
  for (const char *n : {"a.test", "b.test", "c.test"})
    route(n, "127.0.0.1", server->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/");
  WAIT_DONE(b.call);
  ASSERT_TRUE(b.call.ok) << b.call.describe();
  EXPECT_NE(b.call.conn_id, a.call.conn_id);
  // c.test is in the set: it shares a.test's connection (the first one
  // made, which comes before b.test's own in the pool's list).
  Peer &cc = get(c, "https://c.test/");
  WAIT_DONE(cc.call);
  ASSERT_TRUE(cc.call.ok) << cc.call.describe();
  EXPECT_EQ(cc.call.conn_id, a.call.conn_id);
  EXPECT_EQ(server->stats().connections_accepted, 2u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_COALESCED), 1u);
}

// An origin listed in an ORIGIN frame shares the connection even though
// its name leads elsewhere (where nothing listens).
TEST_F(Coalesce, OriginFrameListingTheNameWidens) {
  certify("DNS:a.test,DNS:b.test");
  ServerOptions opts;
  opts.origin_frame = std::vector<std::string>{"https://b.test"};
  auto server = serve(opts);
  ASSERT_TRUE(server);
  route("a.test", "127.0.0.1", server->port());
  route("b.test", "127.0.0.3", server->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/");
  WAIT_DONE(b.call);
  ASSERT_TRUE(b.call.ok) << b.call.describe();
  EXPECT_EQ(b.call.conn_id, a.call.conn_id);
  EXPECT_EQ(b.remote_ip, "127.0.0.1");
  EXPECT_EQ(server->stats().connections_accepted, 1u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_COALESCED), 1u);
}

TEST_F(Coalesce, SwitchedOffEveryOriginGetsItsOwnConnection) {
  certify("DNS:a.test,DNS:b.test");
  ASSERT_EQ(h2pool_config_set_coalescing(cfg_, 0), H2POOL_OK);
  auto server = serve({});
  ASSERT_TRUE(server);
  route("a.test", "127.0.0.1", server->port());
  route("b.test", "127.0.0.1", server->port());
  Client c(cfg_);
  Peer &a = get(c, "https://a.test/");
  WAIT_DONE(a.call);
  ASSERT_TRUE(a.call.ok) << a.call.describe();
  Peer &b = get(c, "https://b.test/");
  WAIT_DONE(b.call);
  ASSERT_TRUE(b.call.ok) << b.call.describe();
  EXPECT_NE(b.call.conn_id, a.call.conn_id);
  EXPECT_EQ(server->stats().connections_accepted, 2u);
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_COALESCED), 0u);
}

TEST(CoalesceConfig, SetterRejectsANullConfig) {
  EXPECT_EQ(h2pool_config_set_coalescing(nullptr, 1),
            H2POOL_ERR_INVALID_ARGUMENT);
}

} // namespace
} // namespace faults
