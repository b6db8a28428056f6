// How a pool reaches its servers: Happy Eyeballs racing (RFC 8305), curl's
// --resolve and --connect-to overrides (TLS still checks the URL's name),
// Unix domain sockets (h2c, TLS, abstract), and the local end of TCP
// connections. All on loopback; DNS, where a test could reach it, goes to
// a silent local socket so that nothing leaves the machine.
#include "dns_responder.h"
#include "fault_util.h"
#include "raw_server.h"
#include "self_signed_cert.h"
#include "test_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace faults {
namespace {

using namespace h2pool_testing::h2frame;
using h2pool_testing::DnsSilence;
using h2pool_testing::RawConnection;
using h2pool_testing::RawServer;
using h2pool_testing::RawTlsOptions;
using h2pool_testing::SelfSignedCert;
using h2pool_testing::test_body;
using h2pool_testing::TestServer;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

// The pool's log lines, to see the order of its connection attempts.
struct LogCapture {
  std::mutex mu;
  std::vector<std::string> lines;
  static void cb(int, const char *msg, void *user) {
    auto self = static_cast<LogCapture *>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    self->lines.push_back(msg);
  }
  // Index of the first line containing `text`, or -1.
  int find(const std::string &text) {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < lines.size(); ++i)
      if (lines[i].find(text) != std::string::npos)
        return int(i);
    return -1;
  }
};

// [::1]:port where SYNs go unanswered: a listener with backlog 0 whose
// one accept-queue slot is taken by a connection never accepted, so the
// kernel drops further SYNs (tcp_abort_on_overflow 0).
class Blackhole6 {
public:
  explicit Blackhole6(uint16_t port) {
    listener_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    sin6.sin6_port = htons(port);
    if (listener_ < 0 ||
        bind(listener_, reinterpret_cast<sockaddr *>(&sin6), sizeof sin6) ||
        listen(listener_, 0) != 0)
      return;
    filler_ = connect_nonblocking(sin6);
    if (filler_ < 0 || !writable(filler_, 2000))
      return;
    // Proof that the trick works on this kernel: a further connect hangs.
    int probe = connect_nonblocking(sin6);
    ok_ = probe >= 0 && !writable(probe, 200);
    if (probe >= 0)
      close(probe);
  }
  ~Blackhole6() {
    for (int fd : {filler_, listener_})
      if (fd >= 0)
        close(fd);
  }
  bool ok() const { return ok_; }

private:
  static int connect_nonblocking(const sockaddr_in6 &to) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 &&
        connect(fd, reinterpret_cast<const sockaddr *>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS) {
      close(fd);
      return -1;
    }
    return fd;
  }
  static bool writable(int fd, int ms) {
    pollfd p{fd, POLLOUT, 0};
    return poll(&p, 1, ms) == 1;
  }
  int listener_ = -1;
  int filler_ = -1;
  bool ok_ = false;
};

// A port on which nothing listens (bound, then closed).
uint16_t closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin = h2pool_testing::loopback4();
  socklen_t len = sizeof sin;
  bind(fd, reinterpret_cast<sockaddr *>(&sin), len);
  getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len);
  close(fd);
  return ntohs(sin.sin_port);
}

class Reach : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(silent_.ok());
    ASSERT_EQ(h2pool_config_set_dns_servers(cfg_, silent_.server().c_str()),
              H2POOL_OK);
    h2pool_config_set_log(cfg_, LogCapture::cb, H2POOL_LOG_DEBUG, &log_);
  }
  // Adds "NAME:PORT:ADDRS" as a --resolve entry; returns PORT as text.
  std::string resolve(const std::string &name, uint16_t port,
                      const std::string &addrs) {
    std::string p = std::to_string(port);
    EXPECT_EQ(
        h2pool_config_add_resolve(cfg_, (name + ":" + p + ":" + addrs).c_str()),
        H2POOL_OK);
    return p;
  }
  DnsSilence silent_;
  LogCapture log_;
  Config cfg_;
};

TEST_F(Reach, HappyEyeballsIpv4WinsOverABlackholedIpv6) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  uint16_t port = server.port();
  Blackhole6 hole(port);
  if (!hole.ok())
    GTEST_SKIP() << "cannot make a never-answering [::1] on this kernel";
  std::string p = resolve("he.test", port, "127.0.0.1,[::1]");
  h2pool_config_set_connect_timeout_ms(cfg_, 10000);
  Client c(cfg_.get());
  Call &call = c.get("http://he.test:" + p + "/?size=4&seed=2");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, test_body(2, 4));
  // The IPv4 attempt starts after the 250 ms delay, long before the IPv6
  // one could time out.
  EXPECT_GE(call.elapsed(), Ms(200));
  EXPECT_LT(call.elapsed(), Ms(2000));
  int v6 = log_.find("connecting to [::1]:" + p);
  int v4 = log_.find("connecting to 127.0.0.1:" + p);
  ASSERT_GE(v6, 0);
  ASSERT_GE(v4, 0);
  EXPECT_LT(v6, v4) << "IPv6 is tried first, then IPv4 while it hangs";
  EXPECT_GE(log_.find("connected to 127.0.0.1:" + p), 0);
}

// Delay 0: one address at a time, so IPv4 waits for IPv6's timeout.
TEST_F(Reach, HappyEyeballsDelayZeroTriesOneAddressAtATime) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  uint16_t port = server.port();
  Blackhole6 hole(port);
  if (!hole.ok())
    GTEST_SKIP() << "cannot make a never-answering [::1] on this kernel";
  std::string p = resolve("he.test", port, "127.0.0.1,[::1]");
  ASSERT_EQ(h2pool_config_set_happy_eyeballs_delay_ms(cfg_, 0), H2POOL_OK);
  h2pool_config_set_connect_timeout_ms(cfg_, 600);
  Client c(cfg_.get());
  Call &call = c.get("http://he.test:" + p + "/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_GE(call.elapsed(), Ms(550));
}

// A refused attempt starts the next one at once, not after the delay.
TEST_F(Reach, HappyEyeballsFailedAttemptStartsTheNextAtOnce) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string p = resolve("he.test", server.port(), "[::1],127.0.0.1");
  h2pool_config_set_happy_eyeballs_delay_ms(cfg_, 5000);
  Client c(cfg_.get());
  Call &call = c.get("http://he.test:" + p + "/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_LT(call.elapsed(), Ms(2500));
}

TEST_F(Reach, WhenEveryAddressFailsTheErrorNamesThemAll) {
  std::string p = resolve("dead.test", closed_port(), "127.0.0.1,[::1]");
  Client c(cfg_.get());
  Call &call = c.get("http://dead.test:" + p + "/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECT) << call.describe();
  EXPECT_NE(call.message.find("127.0.0.1:" + p), std::string::npos)
      << call.message;
  EXPECT_NE(call.message.find("[::1]:" + p), std::string::npos) << call.message;
}

// --connect-to sends the connection elsewhere; the request still names
// the original host in :authority.
TEST_F(Reach, ConnectToKeepsTheOriginalAuthority) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string p = std::to_string(server.port());
  ASSERT_EQ(h2pool_config_add_connect_to(
                cfg_, ("orig.test:443:127.0.0.1:" + p).c_str()),
            H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get("http://orig.test:443/?size=3&seed=4");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, test_body(4, 3));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].authority, "orig.test:443");
  EXPECT_EQ(silent_.received(), 0) << "no DNS lookup for an IP target";
}

// A server that answers every request with 200 and no body.
RawServer::Script ok_script() {
  return [](RawConnection &conn) {
    if (!conn.read_preface())
      return;
    conn.send(settings() + settings_ack());
    for (;;) {
      uint32_t sid = conn.wait_request();
      if (sid == 0)
        return;
      conn.send(headers(sid, hpack_status(200), kEndHeaders | kEndStream));
    }
  };
}

// TLS for a name DNS does not know: --resolve supplies the address, and
// the certificate is checked against the URL's name.
class ReachTls : public Reach {
protected:
  void SetUp() override {
    Reach::SetUp();
    ASSERT_TRUE(cert_.ok());
    RawTlsOptions tls;
    tls.cert_file = cert_.cert_file();
    tls.key_file = cert_.key_file();
    server_ = std::make_unique<RawServer>(ok_script(), tls);
    ASSERT_EQ(server_->start(), 0);
    port_ = std::to_string(server_->port());
    h2pool_config_set_tls_ca_file(cfg_, cert_.cert_file().c_str());
  }
  void TearDown() override { server_->stop(); }
  SelfSignedCert cert_{"DNS:a.example.test"};
  std::unique_ptr<RawServer> server_;
  std::string port_;
};

TEST_F(ReachTls, ResolveOverrideVerifiesTheUrlsName) {
  ASSERT_EQ(h2pool_config_add_resolve(
                cfg_, ("a.example.test:" + port_ + ":127.0.0.1").c_str()),
            H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get("https://a.example.test:" + port_ + "/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.status, 200);
  EXPECT_EQ(silent_.received(), 0);
}

TEST_F(ReachTls, ConnectToVerifiesAgainstTheOriginalName) {
  ASSERT_EQ(h2pool_config_add_connect_to(
                cfg_, ("a.example.test:" + port_ + ":127.0.0.1:").c_str()),
            H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get("https://a.example.test:" + port_ + "/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
}

// Redirected to a host the certificate covers, from one it does not: the
// original name is what is checked, so verification fails.
TEST_F(ReachTls, ConnectToFromANameTheCertificateDoesNotCoverFails) {
  h2pool_config_add_connect_to(
      cfg_, ("b.example.test:" + port_ + ":a.example.test:" + port_).c_str());
  h2pool_config_add_resolve(cfg_,
                            ("a.example.test:" + port_ + ":127.0.0.1").c_str());
  Client c(cfg_.get());
  Call &call = c.get("https://b.example.test:" + port_ + "/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_TLS_VERIFY) << call.describe();
  EXPECT_EQ(server_->stats().connections, 1u)
      << "the connection was made to a.example.test's address";
}

// A temporary directory for socket files, removed with its contents.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/h2pool-uds.XXXXXX";
    if (mkdtemp(tmpl))
      path = tmpl;
  }
  ~TempDir() {
    if (!path.empty())
      std::system(("rm -rf '" + path + "'").c_str());
  }
  std::string path;
};

TEST_F(Reach, UnixSocketCarriesH2c) {
  TempDir dir;
  std::string sock = dir.path + "/h2c.sock";
  RawServer server(ok_script());
  ASSERT_EQ(server.start_unix(sock), 0);
  ASSERT_EQ(h2pool_config_set_unix_socket(cfg_, sock.c_str()), H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get("http://sidecar.test/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.status, 200);
  EXPECT_EQ(silent_.received(), 0) << "no lookup for a Unix socket";
  EXPECT_GE(log_.find("connecting to " + sock), 0);
}

TEST_F(Reach, UnixSocketCarriesTlsCheckedAgainstTheUrlsHost) {
  TempDir dir;
  std::string sock = dir.path + "/tls.sock";
  SelfSignedCert cert("DNS:sidecar.test");
  ASSERT_TRUE(cert.ok());
  RawTlsOptions tls;
  tls.cert_file = cert.cert_file();
  tls.key_file = cert.key_file();
  RawServer server(ok_script(), tls);
  ASSERT_EQ(server.start_unix(sock), 0);
  h2pool_config_set_unix_socket(cfg_, sock.c_str());
  h2pool_config_set_tls_ca_file(cfg_, cert.cert_file().c_str());
  Client c(cfg_.get());
  Call &good = c.get("https://sidecar.test/");
  WAIT_DONE(good);
  ASSERT_TRUE(good.ok) << good.describe();
  Call &wrong = c.get("https://other.test/");
  WAIT_DONE(wrong);
  EXPECT_EQ(wrong.code, H2POOL_ERR_TLS_VERIFY) << wrong.describe();
}

TEST_F(Reach, AbstractUnixSocket) {
  std::string name = "h2pool-test-" + std::to_string(getpid()) + "-" +
                     std::to_string(closed_port());
  RawServer server(ok_script());
  ASSERT_EQ(server.start_unix(name, true), 0);
  ASSERT_EQ(h2pool_config_set_abstract_unix_socket(cfg_, name.c_str()),
            H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get("http://abstract.test/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_GE(log_.find("connecting to @" + name), 0);
}

TEST_F(Reach, MissingUnixSocketFailsWithConnectNamingThePath) {
  TempDir dir;
  std::string sock = dir.path + "/nobody-home.sock";
  h2pool_config_set_unix_socket(cfg_, sock.c_str());
  Client c(cfg_.get());
  Call &call = c.get("http://sidecar.test/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECT) << call.describe();
  EXPECT_NE(call.message.find(sock), std::string::npos) << call.message;
}

// The server sees connections come from the bound address and port range.
TEST_F(Reach, LocalAddressAndPortRangeAreWhatTheServerSees) {
  std::mutex mu;
  std::vector<std::string> peers;
  RawServer server([&](RawConnection &conn) {
    {
      std::lock_guard<std::mutex> lock(mu);
      peers.push_back(conn.peer_address());
    }
    ok_script()(conn);
  });
  ASSERT_EQ(server.start(), 0);
  // 127.0.0.2 is loopback too on Linux; fall back to 127.0.0.1 without it.
  std::string local = "127.0.0.2";
  {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, local.c_str(), &sin.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin) != 0)
      local = "127.0.0.1";
    close(fd);
  }
  uint16_t low = closed_port();
  if (low > 65000)
    low = 40000;
  ASSERT_EQ(h2pool_config_set_local_address(cfg_, local.c_str()), H2POOL_OK);
  ASSERT_EQ(h2pool_config_set_local_port_range(cfg_, low, low + 20), H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(peers.size(), 1u);
  std::string peer = peers[0];
  ASSERT_EQ(peer.rfind(local + ":", 0), 0u) << peer;
  int peer_port = std::atoi(peer.c_str() + local.size() + 1);
  EXPECT_GE(peer_port, low);
  EXPECT_LE(peer_port, low + 20);
}

TEST_F(Reach, LocalAddressOfTheOtherFamilyFailsThatAttempt) {
  h2pool_config_set_local_address(cfg_, "::1");
  Client c(cfg_.get());
  Call &call = c.get("http://127.0.0.1:" + std::to_string(closed_port()) + "/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_CONNECT) << call.describe();
  EXPECT_NE(call.message.find("another address family"), std::string::npos)
      << call.message;
}

TEST_F(Reach, InterfaceBinding) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  {
    Config cfg;
    ASSERT_EQ(h2pool_config_set_interface(cfg, "h2poolnoif0"), H2POOL_OK);
    Client c(cfg.get());
    Call &call = c.get(url);
    WAIT_DONE(call);
    EXPECT_EQ(call.code, H2POOL_ERR_CONNECT) << call.describe();
    EXPECT_NE(call.message.find("h2poolnoif0"), std::string::npos)
        << call.message;
  }
  if (geteuid() != 0)
    GTEST_SKIP() << "SO_BINDTODEVICE needs CAP_NET_RAW";
  ASSERT_EQ(h2pool_config_set_interface(cfg_, "lo"), H2POOL_OK);
  Client c(cfg_.get());
  Call &call = c.get(url);
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
}

} // namespace
} // namespace faults
