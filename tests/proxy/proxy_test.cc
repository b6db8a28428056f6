// Requests through proxies, against real ones from Debian where they exist
// (tinyproxy for HTTP CONNECT, dante for SOCKS5), started here on
// ephemeral loopback ports with generated configuration, and against our
// own test proxy (tests/proxy/test_proxy.h) for an https:// proxy, SOCKS5
// authentication, replies no real proxy sends on request, and a proxy that
// dies mid-tunnel. Origins: the scriptable h2c server and the raw frame
// scripter over TLS. A missing tinyproxy or danted skips its tests.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <fstream>

#include "fault_util.h"
#include "raw_server.h"
#include "self_signed_cert.h"
#include "test_proxy.h"
#include "test_server.h"

namespace faults {
namespace {

using namespace h2pool_testing::h2frame;
using h2pool_testing::RawConnection;
using h2pool_testing::RawServer;
using h2pool_testing::RawTlsOptions;
using h2pool_testing::SelfSignedCert;
using h2pool_testing::ServerOptions;
using h2pool_testing::TestProxy;
using h2pool_testing::TestProxyOptions;
using h2pool_testing::TestServer;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

// A port nothing listens on (bound, then released).
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  ::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin);
  getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len);
  ::close(fd);
  return ntohs(sin.sin_port);
}

bool can_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin) == 0;
  ::close(fd);
  return ok;
}

// A proxy daemon from Debian in the foreground, with a config file in a
// temporary directory; killed by the destructor.
class Daemon {
public:
  // `argv_before_conf` then the config path (as `conf_flag PATH`).
  Daemon(const std::string &binary, const std::string &conf_flag,
         const std::string &config, std::vector<std::string> extra = {}) {
    char tmpl[] = "/tmp/h2pool-proxy.XXXXXX";
    if (!mkdtemp(tmpl))
      return;
    dir_ = tmpl;
    std::string conf = dir_ + "/proxy.conf";
    std::ofstream(conf) << config;
    std::string log = dir_ + "/proxy.log";
    pid_ = fork();
    if (pid_ == 0) {
      FILE *f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::vector<std::string> args = {binary, conf_flag, conf};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char *> argv;
      for (auto &a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (!dir_.empty())
      std::filesystem::remove_all(dir_);
  }
  // Waits until the daemon accepts connections on `port`.
  bool wait_listening(uint16_t port) {
    return pid_ > 0 && wait_until([&] { return can_connect(port); }, 10s);
  }
  std::string log() const {
    std::ifstream in(dir_ + "/proxy.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

private:
  pid_t pid_ = -1;
  std::string dir_;
};

bool executable(const char *path) { return ::access(path, X_OK) == 0; }

constexpr const char *kTinyproxy = "/usr/bin/tinyproxy";
constexpr const char *kDanted = "/usr/sbin/danted";

std::unique_ptr<Daemon> start_tinyproxy(uint16_t port,
                                        const std::string &directives) {
  std::string conf = "Port " + std::to_string(port) +
                     "\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
                     "MaxClients 50\nLogLevel Info\n" +
                     directives;
  auto d = std::make_unique<Daemon>(kTinyproxy, "-c", conf,
                                    std::vector<std::string>{"-d"});
  if (!d->wait_listening(port))
    return nullptr;
  return d;
}

std::unique_ptr<Daemon> start_danted(uint16_t port) {
  std::string conf =
      "logoutput: stderr\ninternal: 127.0.0.1 port = " + std::to_string(port) +
      "\nexternal: 127.0.0.1\nsocksmethod: none\n"
      "clientmethod: none\nuser.privileged: root\n"
      "user.unprivileged: nobody\n"
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
      "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n";
  auto d = std::make_unique<Daemon>(kDanted, "-f", conf,
                                    std::vector<std::string>{"-N", "1"});
  if (!d->wait_listening(port))
    return nullptr;
  return d;
}

// A TLS origin speaking HTTP/2: answers every request with 200 and the body
// "tls origin".
RawServer::Script tls_origin_script() {
  return [](RawConnection &conn) {
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    for (;;) {
      uint32_t sid = conn.wait_request();
      if (sid == 0)
        return;
      if (!conn.send(headers(sid, hpack_status(200), kEndHeaders) +
                     data(sid, "tls origin", kEndStream)))
        return;
    }
  };
}

class Proxies : public ::testing::Test {
protected:
  void SetUp() override {
    // Only what a test sets itself counts (each test is its own process).
    for (const char *name :
         {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
          "ALL_PROXY", "no_proxy", "NO_PROXY"})
      unsetenv(name);
    ASSERT_EQ(origin_.start(), 0);
    ASSERT_TRUE(cert_.ok());
  }
  void TearDown() override {
    client_.reset();
    if (tls_origin_)
      tls_origin_->stop();
    if (proxy_)
      proxy_->stop();
  }
  std::string h2c_url(const std::string &path = "/") const {
    return "http://127.0.0.1:" + std::to_string(origin_.port()) + path;
  }
  std::string tls_url() {
    if (!tls_origin_) {
      RawTlsOptions tls;
      tls.cert_file = cert_.cert_file();
      tls.key_file = cert_.key_file();
      tls_origin_ = std::make_unique<RawServer>(tls_origin_script(), tls);
      EXPECT_EQ(tls_origin_->start(), 0);
    }
    return "https://127.0.0.1:" + std::to_string(tls_origin_->port()) + "/";
  }
  TestProxy &start_proxy(TestProxyOptions options) {
    proxy_ = std::make_unique<TestProxy>(std::move(options));
    EXPECT_TRUE(proxy_->start());
    return *proxy_;
  }
  TestProxyOptions tls_proxy_options() const {
    TestProxyOptions o;
    o.cert_file = cert_.cert_file();
    o.key_file = cert_.key_file();
    return o;
  }
  // A pool through `proxy_url` that trusts the test certificate.
  Client &client(const std::string &proxy_url,
                 const std::function<void(h2pool_config *)> &more = {}) {
    Config cfg;
    EXPECT_EQ(h2pool_config_set_tls_ca_file(cfg, cert_.cert_file().c_str()),
              H2POOL_OK);
    EXPECT_EQ(h2pool_config_set_reconnect_backoff(cfg, 10, 50), H2POOL_OK);
    EXPECT_EQ(h2pool_config_set_request_timeout_ms(cfg, 10000), H2POOL_OK);
    if (!proxy_url.empty()) {
      EXPECT_EQ(h2pool_config_set_proxy(cfg, proxy_url.c_str()), H2POOL_OK);
    }
    if (more)
      more(cfg);
    client_ = std::make_unique<Client>(cfg.get());
    return *client_;
  }
  // Starts our proxy with `options`, then fetches `url` (the h2c origin by
  // default) through it, as `scheme`, and waits for the answer.
  Call &fetch_via(TestProxyOptions options, const char *scheme,
                  std::string url = {}) {
    start_proxy(std::move(options));
    Call &call = client(proxy_url(scheme)).get(url.empty() ? h2c_url() : url);
    call.wait();
    return call;
  }
  static TestProxyOptions socks() {
    TestProxyOptions o;
    o.kind = TestProxyOptions::Kind::socks5;
    return o;
  }
  std::string proxy_url(const char *scheme) const {
    return std::string(scheme) +
           "://127.0.0.1:" + std::to_string(proxy_->port());
  }
  std::vector<std::string> endpoint_names() const {
    std::vector<std::string> names;
    h2pool_stats *s = nullptr;
    if (h2pool_stats_get(client_->pool(), &s) != H2POOL_OK)
      return names;
    for (size_t i = 0; i < h2pool_stats_endpoint_count(s); ++i)
      names.push_back(h2pool_stats_endpoint_name(s, i));
    h2pool_stats_free(s);
    return names;
  }

  TestServer origin_;
  SelfSignedCert cert_;
  std::unique_ptr<RawServer> tls_origin_;
  std::unique_ptr<TestProxy> proxy_;
  std::unique_ptr<Client> client_;
};

// --- tinyproxy: HTTP CONNECT ---------------------------------------------

class Tinyproxy : public Proxies {
protected:
  void SetUp() override {
    Proxies::SetUp();
    if (!executable(kTinyproxy))
      GTEST_SKIP() << "tinyproxy is not installed";
  }
  std::unique_ptr<Daemon> daemon_;
  uint16_t port_ = closed_port();
  std::string url(const std::string &userinfo = "") const {
    return "http://" + userinfo + "127.0.0.1:" + std::to_string(port_);
  }
};

TEST_F(Tinyproxy, H2cOriginGoesThroughTheConnectTunnel) {
  daemon_ = start_tinyproxy(port_, "ConnectPort " +
                                       std::to_string(origin_.port()) + "\n");
  ASSERT_TRUE(daemon_);
  Client &c = client(url());
  Call &call = c.get(h2c_url("/?size=1000&seed=3"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.status, 200);
  EXPECT_EQ(call.body, h2pool_testing::test_body(3, 1000));
  EXPECT_EQ(call.protocol, H2POOL_PROTOCOL_HTTP_2);
  std::vector<std::string> names = endpoint_names();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_NE(names[0].find("via " + url()), std::string::npos) << names[0];
  EXPECT_NE(daemon_->log().find("CONNECT"), std::string::npos);
}

TEST_F(Tinyproxy, TlsOriginHandshakesInsideTheTunnel) {
  std::string target = tls_url();
  daemon_ = start_tinyproxy(
      port_, "ConnectPort " + std::to_string(tls_origin_->port()) + "\n");
  ASSERT_TRUE(daemon_);
  Client &c = client(url());
  Call &call = c.get(target);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, "tls origin");
}

TEST_F(Tinyproxy, BasicAuthWithTheRightCredentialsSucceeds) {
  daemon_ = start_tinyproxy(port_, "BasicAuth alice s3cret\nConnectPort " +
                                       std::to_string(origin_.port()) + "\n");
  ASSERT_TRUE(daemon_);
  Client &c = client(url("alice:s3cret@"));
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
}

TEST_F(Tinyproxy, CredentialsSetApartFromTheUrlAreSent) {
  daemon_ = start_tinyproxy(port_, "BasicAuth alice s3cret\nConnectPort " +
                                       std::to_string(origin_.port()) + "\n");
  ASSERT_TRUE(daemon_);
  Client &c = client(url("bob:wrong@"), [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_set_proxy_credentials(cfg, "alice", "s3cret"),
              H2POOL_OK);
  });
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
}

// tinyproxy 1.11 answers with 401 and WWW-Authenticate rather than 407.
TEST_F(Tinyproxy, WrongCredentialsFailWithProxyAuthAndTheStatus) {
  daemon_ = start_tinyproxy(port_, "BasicAuth alice s3cret\nConnectPort " +
                                       std::to_string(origin_.port()) + "\n");
  ASSERT_TRUE(daemon_);
  Client &c = client(url("alice:not-the-password@"));
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_AUTH) << call.describe();
  EXPECT_NE(call.message.find("401"), std::string::npos) << call.message;
  EXPECT_NE(call.message.find("Basic"), std::string::npos) << call.message;
  EXPECT_EQ(call.message.find("not-the-password"), std::string::npos);
}

TEST_F(Tinyproxy, ConnectToAPortItDoesNotAllowIsRefusedWithItsStatus) {
  daemon_ = start_tinyproxy(port_, "ConnectPort 9\n");
  ASSERT_TRUE(daemon_);
  Client &c = client(url());
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_REFUSED) << call.describe();
  EXPECT_NE(call.message.find("403"), std::string::npos) << call.message;
}

// --- dante: SOCKS5 ---------------------------------------------------------

class Dante : public Proxies {
protected:
  void SetUp() override {
    Proxies::SetUp();
    if (!executable(kDanted))
      GTEST_SKIP() << "danted is not installed";
    daemon_ = start_danted(port_);
    ASSERT_TRUE(daemon_) << "danted did not start";
  }
  std::string url(const char *scheme) const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_);
  }
  uint16_t port_ = closed_port();
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Dante, H2cOriginThroughSocks5) {
  Client &c = client(url("socks5"));
  Call &call = c.get(h2c_url("/?size=5000&seed=9"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, h2pool_testing::test_body(9, 5000));
}

TEST_F(Dante, TlsOriginThroughSocks5h) {
  std::string target = tls_url();
  Client &c = client(url("socks5h"));
  Call &call = c.get(target);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, "tls origin");
}

TEST_F(Dante, ClosedOriginPortIsReportedAsTheSocksReply) {
  Client &c = client(url("socks5"));
  Call &call = c.get("http://127.0.0.1:" + std::to_string(closed_port()) + "/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_REFUSED) << call.describe();
  EXPECT_NE(call.message.find("connection refused by destination"),
            std::string::npos)
      << call.message;
}

// --- our test proxy: https://, SOCKS5 authentication, odd replies --------

TEST_F(Proxies, ProxyPortClosedFailsWithProxyConnect) {
  Client &c = client("http://127.0.0.1:" + std::to_string(closed_port()));
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_CONNECT) << call.describe();
  EXPECT_EQ(origin_.stats().requests, 0u);
}

TEST_F(Proxies, ConnectRequestNamesTheOriginAndCarriesBasicCredentials) {
  start_proxy({});
  Client &c =
      client("http://u%40x:p%3Aw@127.0.0.1:" + std::to_string(proxy_->port()));
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  auto recs = proxy_->records();
  ASSERT_EQ(recs.size(), 1u);
  std::string authority = "127.0.0.1:" + std::to_string(origin_.port());
  EXPECT_EQ(
      recs[0].request_head.rfind("CONNECT " + authority + " HTTP/1.1\r\n", 0),
      0u)
      << recs[0].request_head;
  EXPECT_NE(recs[0].request_head.find("Host: " + authority + "\r\n"),
            std::string::npos);
  EXPECT_NE(recs[0].request_head.find("User-Agent: h2pool/"),
            std::string::npos);
  // base64("u@x:p:w")
  EXPECT_EQ(recs[0].proxy_authorization, "Basic dUB4OnA6dw==");
}

TEST_F(Proxies, Status407IsProxyAuthNamingTheStatusAndScheme) {
  TestProxyOptions o;
  o.user = "erin";
  o.password = "pw";
  Call &call = fetch_via(o, "http");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_AUTH) << call.describe();
  EXPECT_NE(call.message.find("407 Proxy Authentication Required"),
            std::string::npos)
      << call.message;
  EXPECT_NE(call.message.find("asks for Basic"), std::string::npos)
      << call.message;
  EXPECT_NE(call.message.find("no proxy credentials"), std::string::npos)
      << call.message;
}

TEST_F(Proxies, OriginBytesRightBehindTheReplyAreKept) {
  TestProxyOptions o;
  o.coalesce_origin_first_bytes = true;
  Call &call = fetch_via(o, "http");
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
}

TEST_F(Proxies, GarbageInsteadOfAResponseIsAProxyProtocolError) {
  TestProxyOptions o;
  o.http_reply = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
  Call &call = fetch_via(o, "http");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_PROTOCOL) << call.describe();
}

TEST_F(Proxies, ProxyClosingBeforeItAnswersIsProxyClosed) {
  TestProxyOptions o;
  o.close_before_reply = true;
  Call &call = fetch_via(o, "http");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_CLOSED) << call.describe();
}

TEST_F(Proxies, NonSuccessStatusIsRefusedWithStatusAndReason) {
  TestProxyOptions o;
  o.http_reply = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
  Call &call = fetch_via(o, "http");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_REFUSED) << call.describe();
  EXPECT_NE(call.message.find("502 Bad Gateway"), std::string::npos)
      << call.message;
  // A failed connection, paced like any other.
  EXPECT_EQ(client_->stat(H2POOL_STAT_CONNECTIONS_FAILED), 1u);
}

TEST_F(Proxies, OversizedResponseHeadIsAProxyProtocolError) {
  TestProxyOptions o;
  o.http_reply =
      "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n";
  Call &call = fetch_via(o, "http");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_PROTOCOL) << call.describe();
  EXPECT_NE(call.message.find("longer than"), std::string::npos)
      << call.message;
}

// HTTP/1.1 over cleartext through the tunnel, to the raw scripter.
TEST_F(Proxies, Http11OriginThroughTheTunnel) {
  RawServer h1([](RawConnection &conn) {
    while (conn.read_until("\r\n\r\n"))
      if (!conn.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
        return;
  });
  ASSERT_EQ(h1.start(), 0);
  start_proxy({});
  Client &c = client(proxy_url("http"), [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_set_http_version(cfg, H2POOL_HTTP_VERSION_1_1),
              H2POOL_OK);
  });
  for (int i = 0; i < 2; ++i) {
    Call &call = c.get("http://127.0.0.1:" + std::to_string(h1.port()) + "/x");
    WAIT_DONE(call);
    ASSERT_TRUE(call.ok) << call.describe();
    EXPECT_EQ(call.body, "hello");
    EXPECT_EQ(call.protocol, H2POOL_PROTOCOL_HTTP_1_1);
  }
  EXPECT_EQ(proxy_->connections(), 1u); // kept alive through the tunnel
  client_.reset();
  h1.stop();
}

TEST_F(Proxies, ProxyThatNeverAnswersTimesOutWithProxyConnect) {
  TestProxyOptions o;
  o.stall_before_reply = true;
  start_proxy(o);
  Client &c = client(proxy_url("http"), [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_set_connect_timeout_ms(cfg, 300), H2POOL_OK);
  });
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_CONNECT) << call.describe();
  EXPECT_NE(call.message.find("was not set up within 300 ms"),
            std::string::npos)
      << call.message;
}

// IPv6 origins: CONNECT names them in brackets, SOCKS5 sends ATYP 4.
TEST_F(Proxies, Ipv6OriginThroughConnectAndSocks5) {
  ServerOptions v6;
  v6.host = "::1";
  TestServer origin6(v6);
  if (origin6.start() != 0)
    GTEST_SKIP() << "no IPv6 loopback";
  std::string url = "http://[::1]:" + std::to_string(origin6.port()) + "/";
  start_proxy({});
  {
    Client &c = client(proxy_url("http"));
    Call &call = c.get(url);
    WAIT_DONE(call);
    EXPECT_TRUE(call.ok) << call.describe();
    auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    std::string authority = "[::1]:" + std::to_string(origin6.port());
    EXPECT_EQ(recs[0].request_head.rfind("CONNECT " + authority + " ", 0), 0u)
        << recs[0].request_head;
    EXPECT_NE(recs[0].request_head.find("Host: " + authority + "\r\n"),
              std::string::npos);
  }
  client_.reset();
  proxy_->stop();
  Call &call = fetch_via(socks(), "socks5h", url);
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
  auto recs = proxy_->records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].socks_atyp, 4);
  EXPECT_EQ(recs[0].target_host, "::1");
  client_.reset();
}

// The proxy dies with a request in flight: that request fails once with
// CONNECTION_LOST; the next goes through a new tunnel.
TEST_F(Proxies, ProxyDyingMidTunnelFailsTheRequestInFlightOnce) {
  start_proxy({});
  Client &c = client(proxy_url("http"));
  Call &slow = c.get(h2c_url("/?delay_ms=5000"));
  ASSERT_TRUE(origin_.wait_for_stats(
      [](const h2pool_testing::ServerStats &s) { return s.requests >= 1; },
      kWait));
  proxy_->drop_tunnels();
  WAIT_DONE(slow);
  EXPECT_EQ(slow.code, H2POOL_ERR_CONNECTION_LOST) << slow.describe();
  Call &next = c.get(h2c_url());
  WAIT_DONE(next);
  EXPECT_TRUE(next.ok) << next.describe();
  EXPECT_EQ(proxy_->connections(), 2u);
  EXPECT_EQ(slow.calls, 1);
}

TEST_F(Proxies, HttpsProxyCarriesAnH2cOrigin) {
  Call &call =
      fetch_via(tls_proxy_options(), "https", h2c_url("/?size=70000&seed=5"));
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, h2pool_testing::test_body(5, 70000));
  ASSERT_EQ(proxy_->records().size(), 1u);
}

// An h2c origin that hangs up at once, through an https:// proxy: the
// origin closed the connection; no TLS handshake failed.
TEST_F(Proxies, H2cOriginClosingThroughHttpsProxyIsConnectionLost) {
  RawServer closer([](RawConnection &conn) { conn.close(); });
  ASSERT_EQ(closer.start(), 0);
  Call &call =
      fetch_via(tls_proxy_options(), "https",
                "http://127.0.0.1:" + std::to_string(closer.port()) + "/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECTION_LOST) << call.describe();
  client_.reset();
  closer.stop();
}

TEST_F(Proxies, HttpsProxyCarriesTlsInsideTls) {
  std::string target = tls_url();
  start_proxy(tls_proxy_options());
  Client &c = client(proxy_url("https"));
  for (int i = 0; i < 3; ++i) {
    Call &call = c.get(target);
    WAIT_DONE(call);
    ASSERT_TRUE(call.ok) << call.describe();
    EXPECT_EQ(call.body, "tls origin");
  }
  EXPECT_EQ(proxy_->connections(), 1u);
}

// As curl counts it, CONNECT ends when TCP to the proxy is up; the tunnel
// and the origin's TLS handshake come before APPCONNECT.
TEST_F(Proxies, TunnelSetupCountsAfterConnectAndBeforeAppconnect) {
  std::string target = tls_url();
  TestProxyOptions o;
  o.reply_delay_ms = 300;
  start_proxy(o);
  Call &call = client(proxy_url("http")).get(target);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_GE(call.connect_us, 0);
  EXPECT_LT(call.connect_us, 300000);
  EXPECT_GE(call.appconnect_us, 300000);
}

TEST_F(Proxies, HttpsProxyCertificateIsVerifiedAgainstItsName) {
  start_proxy(tls_proxy_options());
  Config cfg;
  ASSERT_EQ(h2pool_config_set_proxy(cfg, proxy_url("https").c_str()),
            H2POOL_OK);
  Client c(cfg.get()); // the system trust store does not know our CA
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_TLS_VERIFY) << call.describe();
  EXPECT_NE(call.message.find("proxy https://"), std::string::npos)
      << call.message;
}

TEST_F(Proxies, Socks5hSendsTheNameForTheProxyToResolve) {
  TestProxyOptions o = socks();
  start_proxy(o);
  Client &c = client(proxy_url("socks5h"));
  Call &call =
      c.get("http://localhost:" + std::to_string(origin_.port()) + "/");
  WAIT_DONE(call);
  auto recs = proxy_->records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].socks_atyp, 3);
  EXPECT_EQ(recs[0].target_host, "localhost");
  EXPECT_EQ(recs[0].target_port, origin_.port());
}

TEST_F(Proxies, Socks5ResolvesTheNameItselfAndSendsAnAddress) {
  TestProxyOptions o = socks();
  start_proxy(o);
  Client &c = client(proxy_url("socks5"));
  Call &call =
      c.get("http://localhost:" + std::to_string(origin_.port()) + "/");
  WAIT_DONE(call);
  auto recs = proxy_->records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(recs[0].socks_atyp == 1 || recs[0].socks_atyp == 4)
      << int(recs[0].socks_atyp);
  EXPECT_TRUE(recs[0].target_host == "127.0.0.1" ||
              recs[0].target_host == "::1")
      << recs[0].target_host;
}

TEST_F(Proxies, Socks5UsernamePasswordAccepted) {
  TestProxyOptions o = socks();
  o.user = "carol";
  o.password = "pw";
  start_proxy(o);
  Client &c =
      client("socks5h://carol:pw@127.0.0.1:" + std::to_string(proxy_->port()));
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
  ASSERT_EQ(proxy_->records().size(), 1u);
  EXPECT_EQ(proxy_->records()[0].socks_user, "carol");
}

TEST_F(Proxies, Socks5WrongPasswordIsProxyAuth) {
  TestProxyOptions o = socks();
  o.user = "carol";
  o.password = "pw";
  start_proxy(o);
  Client &c =
      client("socks5://carol:nope@127.0.0.1:" + std::to_string(proxy_->port()));
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_AUTH) << call.describe();
  EXPECT_EQ(call.message.find("nope"), std::string::npos);
}

TEST_F(Proxies, Socks5WithoutCredentialsWhenRequiredIsProxyAuth) {
  TestProxyOptions o = socks();
  o.user = "carol";
  o.password = "pw";
  Call &call = fetch_via(o, "socks5");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_AUTH) << call.describe();
}

TEST_F(Proxies, Socks5FailureReplyIsNamed) {
  TestProxyOptions o = socks();
  o.socks_reply = 4;
  Call &call = fetch_via(o, "socks5");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_REFUSED) << call.describe();
  EXPECT_NE(call.message.find("host unreachable"), std::string::npos)
      << call.message;
}

TEST_F(Proxies, Socks5WrongVersionIsAProtocolError) {
  TestProxyOptions o = socks();
  o.socks_bad_version = true;
  Call &call = fetch_via(o, "socks5");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_PROTOCOL) << call.describe();
}

TEST_F(Proxies, TlsOriginThroughOurSocks5) {
  std::string target = tls_url();
  TestProxyOptions o = socks();
  Call &call = fetch_via(o, "socks5", target);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, "tls origin");
}

// --- routing: NO_PROXY, the environment, pooling -------------------------

TEST_F(Proxies, NoProxyListedOriginsGoDirectAndHaveTheirOwnEndpoint) {
  start_proxy({});
  Client &c = client(proxy_url("http"), [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_set_noproxy(cfg, "example.com, 127.0.0.1"),
              H2POOL_OK);
  });
  Call &direct = c.get(h2c_url());
  WAIT_DONE(direct);
  ASSERT_TRUE(direct.ok) << direct.describe();
  EXPECT_EQ(proxy_->connections(), 0u);
  // The same server by another name is not exempted.
  Call &proxied =
      c.get("http://localhost:" + std::to_string(origin_.port()) + "/");
  WAIT_DONE(proxied);
  EXPECT_EQ(proxy_->connections(), 1u);
  std::vector<std::string> names = endpoint_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].find(" via "), std::string::npos) << names[0];
  EXPECT_NE(names[1].find(" via " + proxy_url("http")), std::string::npos)
      << names[1];
}

// Environment variables are read at h2pool_create(); each test is its own
// process under ctest.
class EnvVar {
public:
  EnvVar(const char *name, const std::string &value) : name_(name) {
    setenv(name, value.c_str(), 1);
  }
  ~EnvVar() { unsetenv(name_); }

private:
  const char *name_;
};

TEST_F(Proxies, EnvironmentIsIgnoredWithoutOptIn) {
  start_proxy({});
  EnvVar http("http_proxy", proxy_url("http"));
  Client &c = client("");
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(proxy_->connections(), 0u);
}

TEST_F(Proxies, EnvironmentIsHonouredWithOptIn) {
  start_proxy({});
  EnvVar http("HTTP_PROXY", proxy_url("http"));
  Client &c = client("", [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_use_proxy_env(cfg, 1), H2POOL_OK);
  });
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(proxy_->connections(), 1u);
}

TEST_F(Proxies, EnvironmentNoProxyExemptsAndHttpsProxyIsForHttpsOnly) {
  start_proxy({});
  EnvVar https("https_proxy",
               "http://127.0.0.1:" + std::to_string(closed_port()));
  EnvVar all("ALL_PROXY", proxy_url("http"));
  EnvVar no("no_proxy", "localhost");
  Client &c = client("", [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_use_proxy_env(cfg, 1), H2POOL_OK);
  });
  Call &exempt =
      c.get("http://localhost:" + std::to_string(origin_.port()) + "/");
  WAIT_DONE(exempt);
  EXPECT_TRUE(exempt.ok) << exempt.describe();
  EXPECT_EQ(proxy_->connections(), 0u);
  Call &via_all = c.get(h2c_url()); // http://: ALL_PROXY
  WAIT_DONE(via_all);
  EXPECT_TRUE(via_all.ok) << via_all.describe();
  EXPECT_EQ(proxy_->connections(), 1u);
  Call &tls = c.get(tls_url()); // https://: https_proxy, which is closed
  WAIT_DONE(tls);
  EXPECT_EQ(tls.code, H2POOL_ERR_PROXY_CONNECT) << tls.describe();
}

TEST_F(Proxies, ExplicitProxyWinsOverTheEnvironment) {
  start_proxy({});
  EnvVar http("http_proxy",
              "http://127.0.0.1:" + std::to_string(closed_port()));
  Client &c = client(proxy_url("http"), [](h2pool_config *cfg) {
    EXPECT_EQ(h2pool_config_use_proxy_env(cfg, 1), H2POOL_OK);
  });
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(proxy_->connections(), 1u);
}

TEST_F(Proxies, MalformedProxyEnvironmentFailsCreate) {
  EnvVar http("http_proxy", "ftp://user:hunter2@proxy.example:21");
  Config cfg;
  ASSERT_EQ(h2pool_config_use_proxy_env(cfg, 1), H2POOL_OK);
  h2pool *pool = nullptr;
  EXPECT_EQ(h2pool_create(cfg, &pool), H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(pool, nullptr);
}

// Every log line and error message of a failing authenticated tunnel, at
// the most verbose level: the password is in none of them.
std::mutex log_mu;
std::string log_text;
void capture_log(int, const char *msg, void *) {
  std::lock_guard<std::mutex> lock(log_mu);
  log_text += msg;
  log_text += '\n';
}

TEST_F(Proxies, PasswordsAppearInNoLogLineOrMessage) {
  TestProxyOptions o;
  o.user = "dave";
  o.password = "right";
  start_proxy(o);
  Client &c = client(
      "http://dave:Pa55w0rd-xyzzy@127.0.0.1:" + std::to_string(proxy_->port()),
      [](h2pool_config *cfg) {
        EXPECT_EQ(
            h2pool_config_set_log(cfg, capture_log, H2POOL_LOG_DEBUG, nullptr),
            H2POOL_OK);
      });
  Call &call = c.get(h2c_url());
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_PROXY_AUTH) << call.describe();
  c.destroy();
  std::lock_guard<std::mutex> lock(log_mu);
  EXPECT_NE(log_text.find("proxy"), std::string::npos) << log_text;
  EXPECT_EQ(log_text.find("Pa55w0rd-xyzzy"), std::string::npos) << log_text;
  EXPECT_EQ(call.message.find("Pa55w0rd-xyzzy"), std::string::npos);
}

} // namespace
} // namespace faults
