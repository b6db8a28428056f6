// Name resolution through c-ares on the loop thread, against DNS servers
// of the test's own (dns_responder.h): NXDOMAIN and timeouts, /etc/hosts,
// many lookups at once, identical lookups shared, the TTL cache. No lookup
// leaves the machine: every pool here is pointed at a loopback server.
#include "dns_responder.h"
#include "fault_util.h"
#include "loop.h"
#include "net_options.h"
#include "resolver.h"
#include "test_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>

namespace faults {
namespace {

using h2pool_testing::DnsResponder;
using h2pool_testing::DnsSilence;
using h2pool_testing::test_body;
using h2pool_testing::TestServer;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

DnsResponder::Record at(std::vector<std::string> v4, uint32_t ttl = 60,
                        std::vector<std::string> v6 = {}) {
  DnsResponder::Record r;
  r.v4 = std::move(v4);
  r.v6 = std::move(v6);
  r.ttl = ttl;
  return r;
}

TEST(Resolve, NxdomainFailsWithResolveNamingTheHost) {
  DnsResponder dns;
  ASSERT_TRUE(dns.ok());
  Config cfg;
  ASSERT_EQ(h2pool_config_set_dns_servers(cfg, dns.server().c_str()),
            H2POOL_OK);
  Client c(cfg.get());
  Call &call = c.get("http://nosuch.test:1/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_RESOLVE) << call.describe();
  EXPECT_NE(call.message.find("nosuch.test"), std::string::npos)
      << call.message;
  EXPECT_GE(dns.questions("nosuch.test"), 1);
}

TEST(Resolve, SilentDnsServerFailsWithResolveTimeout) {
  DnsSilence silent;
  ASSERT_TRUE(silent.ok());
  Config cfg;
  ASSERT_EQ(h2pool_config_set_dns_servers(cfg, silent.server().c_str()),
            H2POOL_OK);
  h2pool_config_set_resolve_timeout_ms(cfg, 300);
  Client c(cfg.get());
  Call &call = c.get("http://quiet.test:1/");
  WAIT_DONE(call);
  EXPECT_EQ(call.code, H2POOL_ERR_RESOLVE_TIMEOUT) << call.describe();
  EXPECT_NE(call.message.find("quiet.test"), std::string::npos);
  EXPECT_GE(call.elapsed(), Ms(250));
  EXPECT_LT(call.elapsed(), Ms(5000));
  EXPECT_GE(silent.received(), 1) << "the lookup went to the silent server";
}

// 'localhost' comes from /etc/hosts: the DNS server (silent) is never asked.
TEST(Resolve, LocalhostResolvesFromTheHostsFileWithoutDns) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  DnsSilence silent;
  ASSERT_TRUE(silent.ok());
  Config cfg;
  ASSERT_EQ(h2pool_config_set_dns_servers(cfg, silent.server().c_str()),
            H2POOL_OK);
  h2pool_config_set_resolve_timeout_ms(cfg, 2000);
  Client c(cfg.get());
  Call &call =
      c.get("http://localhost:" + std::to_string(server.port()) + "/?size=5");
  WAIT_DONE(call);
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body.size(), 5u);
  EXPECT_EQ(silent.received(), 0);
}

TEST(Resolve, SlowLookupDelaysOnlyItsOwnEndpointAndTimesOut) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string port = std::to_string(server.port());
  DnsResponder dns;
  ASSERT_TRUE(dns.ok());
  dns.set("fast.test", at({"127.0.0.1"}));
  DnsResponder::Record slow;
  slow.silent = true;
  dns.set("slow.test", slow);
  Config cfg;
  h2pool_config_set_dns_servers(cfg, dns.server().c_str());
  h2pool_config_set_resolve_timeout_ms(cfg, 400);
  Client c(cfg.get());
  Call &s = c.get("http://slow.test:" + port + "/");
  Call &fast = c.get("http://fast.test:" + port + "/?size=10&seed=1");
  WAIT_DONE(fast);
  ASSERT_TRUE(fast.ok) << fast.describe();
  EXPECT_EQ(fast.body, test_body(1, 10));
  EXPECT_FALSE(s.wait(Ms(0))) << "the slow lookup is still under way";
  WAIT_DONE(s);
  EXPECT_EQ(s.code, H2POOL_ERR_RESOLVE_TIMEOUT) << s.describe();
  EXPECT_NE(s.message.find("slow.test"), std::string::npos);
}

// Destroying a pool never waits for a lookup that does not answer.
TEST(Resolve, DestroyDoesNotWaitForAHangingLookup) {
  DnsSilence silent;
  ASSERT_TRUE(silent.ok());
  Config cfg;
  h2pool_config_set_dns_servers(cfg, silent.server().c_str());
  Client c(cfg.get());
  Call &call = c.get("http://hang.test:1/");
  ASSERT_TRUE(wait_until([&] { return silent.received() >= 1; }));
  auto start = Clock::now();
  c.destroy();
  EXPECT_LT(Clock::now() - start, Ms(2000));
  EXPECT_EQ(call.code, H2POOL_ERR_POOL_CLOSED) << call.describe();
}

// The first lookup's deadline passes; its answer, arriving later, is
// dropped by the connection that gave up and serves the next one.
TEST(Resolve, AnswerArrivingAfterTheDeadlineIsIgnored) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  std::string port = std::to_string(server.port());
  DnsResponder dns;
  ASSERT_TRUE(dns.ok());
  DnsResponder::Record r = at({"127.0.0.1"});
  r.silent = true;
  dns.set("late.test", r);
  Config cfg;
  h2pool_config_set_dns_servers(cfg, dns.server().c_str());
  h2pool_config_set_resolve_timeout_ms(cfg, 150);
  h2pool_config_set_reconnect_backoff(cfg, 1, 2);
  Client c(cfg.get());
  Call &first = c.get("http://late.test:" + port + "/");
  WAIT_DONE(first);
  EXPECT_EQ(first.code, H2POOL_ERR_RESOLVE_TIMEOUT) << first.describe();
  r.silent = false;
  dns.set("late.test", r);
  Call &second = c.get("http://late.test:" + port + "/?size=3&seed=3");
  WAIT_DONE(second);
  ASSERT_TRUE(second.ok) << second.describe();
  EXPECT_EQ(second.body, test_body(3, 3));
}

// Debian's dnsmasq on a loopback port, answering only for its own
// --host-record names (no upstream, no /etc/hosts), logging every query to
// a file the test reads.
class Dnsmasq {
public:
  Dnsmasq() {
    char tmpl[] = "/tmp/h2pool-dnsmasq.XXXXXX";
    if (mkdtemp(tmpl))
      dir_ = tmpl;
  }
  ~Dnsmasq() {
    stop();
    if (!dir_.empty())
      std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  // Starts dnsmasq and waits until it logs that it started; false if it
  // cannot run. The port is free when picked but may be taken before
  // dnsmasq binds it (UDP and TCP both), so a few ports are tried.
  bool start() {
    for (int attempt = 0; attempt < 5 && !dir_.empty(); ++attempt) {
      port_ = free_port();
      std::string log = dir_ + "/log" + std::to_string(attempt);
      log_ = log;
      pid_ = fork();
      if (pid_ == 0) {
        std::string port = "--port=" + std::to_string(port_);
        std::string logf = "--log-facility=" + log;
        execlp("dnsmasq", "dnsmasq", "-k", port.c_str(), "--no-resolv",
               "--no-hosts", "--listen-address=127.0.0.1", "--bind-interfaces",
               "--user=root", "--pid-file=", "--log-queries", logf.c_str(),
               "--host-record=real.test,127.0.0.1,::1",
               "--address=/missing.test/", "--local-ttl=300",
               static_cast<char *>(nullptr));
        _exit(127);
      }
      bool exited = false;
      bool started = wait_until(
          [&] {
            exited = waitpid(pid_, nullptr, WNOHANG) == pid_;
            return exited || this->log().find("started") != std::string::npos;
          },
          Ms(5000));
      if (started && !exited)
        return true;
      if (exited)
        pid_ = -1;
      stop();
    }
    return false;
  }
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Queries of `type` ("A", "AAAA") for `name` that dnsmasq logged.
  int queries(const std::string &type, const std::string &name) const {
    std::string text = log(), needle = "query[" + type + "] " + name + " ";
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + 1))
      ++n;
    return n;
  }

private:
  // A port free for both UDP and TCP on 127.0.0.1 when asked (0 if none
  // was found).
  static uint16_t free_port() {
    for (int i = 0; i < 100; ++i) {
      int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sin = h2pool_testing::loopback4();
      socklen_t len = sizeof sin;
      bind(udp, reinterpret_cast<sockaddr *>(&sin), len);
      getsockname(udp, reinterpret_cast<sockaddr *>(&sin), &len);
      bool ok = bind(tcp, reinterpret_cast<sockaddr *>(&sin), len) == 0;
      close(udp);
      close(tcp);
      if (ok)
        return ntohs(sin.sin_port);
    }
    return 0;
  }

  std::string dir_;
  std::string log_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// Against a real DNS server: a name resolves, NXDOMAIN names the host, and
// a second endpoint of the same name (another port) is served from the
// cache without a query.
TEST(Resolve, AgainstDnsmasqAnswersFailsAndCaches) {
  if (system("command -v dnsmasq >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "dnsmasq is not installed";
  Dnsmasq dns;
  ASSERT_TRUE(dns.start()) << dns.log();
  TestServer a, b;
  ASSERT_EQ(a.start(), 0);
  ASSERT_EQ(b.start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_dns_servers(cfg, dns.server().c_str()),
            H2POOL_OK);
  Client c(cfg.get());
  Call &first =
      c.get("http://real.test:" + std::to_string(a.port()) + "/?size=4&seed=5");
  WAIT_DONE(first);
  ASSERT_TRUE(first.ok) << first.describe();
  EXPECT_EQ(first.body, test_body(5, 4));
  Call &second =
      c.get("http://real.test:" + std::to_string(b.port()) + "/?size=4&seed=6");
  WAIT_DONE(second);
  ASSERT_TRUE(second.ok) << second.describe();
  Call &missing = c.get("http://missing.test:1/");
  WAIT_DONE(missing);
  EXPECT_EQ(missing.code, H2POOL_ERR_RESOLVE) << missing.describe();
  EXPECT_NE(missing.message.find("missing.test"), std::string::npos);
  ASSERT_TRUE(wait_until([&] { return dns.queries("A", "missing.test") >= 1; },
                         Ms(2000)))
      << dns.log();
  EXPECT_EQ(dns.queries("A", "real.test"), 1) << dns.log();
  EXPECT_EQ(dns.queries("AAAA", "real.test"), 1) << dns.log();
}

// The resolver itself, driven on a loop of its own as the pool drives it.
class AresResolverTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(dns_.ok());
    ASSERT_EQ(loop_.init([](h2pool_core::Loop::Batch &b) {
      for (auto &task : b.tasks)
        task();
    }),
              H2POOL_OK);
    h2pool_core::ResolverSettings rs;
    ASSERT_TRUE(h2pool_core::parse_dns_servers(dns_.server(), &rs.servers));
    rs.query_timeout_ms = 2000;
    std::string why;
    ASSERT_EQ(h2pool_core::AresResolver::create(loop_, rs, &resolver_, &why),
              H2POOL_OK)
        << why;
    ASSERT_EQ(loop_.start(), H2POOL_OK);
  }
  void TearDown() override {
    loop_.close([this] { loop_.stop(); });
    loop_.join();
    if (resolver_)
      resolver_->shutdown();
  }

  struct Answer {
    std::string error;
    std::vector<std::string> addresses;
  };
  // Resolves each name (on the loop thread, all in one go) and waits for
  // every answer.
  std::vector<Answer> resolve(const std::vector<std::string> &names,
                              uint16_t port = 80) {
    auto answers = std::make_shared<std::vector<Answer>>(names.size());
    auto left = std::make_shared<std::atomic<size_t>>(names.size());
    auto done = std::make_shared<std::promise<void>>();
    EXPECT_EQ(loop_.post([&, answers, left, done] {
      for (size_t i = 0; i < names.size(); ++i)
        resolver_->resolve(
            names[i], port,
            [i, answers, left, done](std::string error,
                                     std::vector<h2pool_core::Address> a) {
              (*answers)[i].error = error;
              for (const auto &addr : a)
                (*answers)[i].addresses.push_back(addr.to_string());
              if (--*left == 0)
                done->set_value();
            });
    }),
              H2POOL_OK);
    EXPECT_EQ(done->get_future().wait_for(kWait), std::future_status::ready);
    return *answers;
  }
  uint64_t lookups_started() {
    std::promise<uint64_t> p;
    loop_.post([&] { p.set_value(resolver_->lookups_started()); });
    return p.get_future().get();
  }

  DnsResponder dns_;
  h2pool_core::Loop loop_;
  std::unique_ptr<h2pool_core::AresResolver> resolver_;
};

TEST_F(AresResolverTest, AsksForAAndAaaaAndReturnsBoth) {
  dns_.set("dual.test", at({"127.0.0.1"}, 60, {"::1"}));
  auto a = resolve({"dual.test"}, 8443);
  ASSERT_TRUE(a[0].error.empty()) << a[0].error;
  EXPECT_EQ(dns_.questions("dual.test", 1), 1);
  EXPECT_EQ(dns_.questions("dual.test", 28), 1);
  std::sort(a[0].addresses.begin(), a[0].addresses.end());
  EXPECT_EQ(a[0].addresses,
            (std::vector<std::string>{"127.0.0.1:8443", "[::1]:8443"}));
}

// The responder answers none of them until all 100 have been asked: with
// lookups one after another (or a few at a time) this would never finish.
TEST_F(AresResolverTest, RunsManyLookupsInParallel) {
  DnsResponder::Record r = at({"127.0.0.2"});
  r.held = true;
  dns_.set_suffix(".many.test", r);
  constexpr size_t kNames = 100;
  dns_.hold_until(kNames);
  std::vector<std::string> names;
  for (size_t i = 0; i < kNames; ++i)
    names.push_back("n" + std::to_string(i) + ".many.test");
  auto answers = resolve(names);
  size_t ok = 0;
  for (const Answer &a : answers) {
    bool good = a.error.empty() && a.addresses.size() == 1 &&
                a.addresses[0] == "127.0.0.2:80";
    EXPECT_TRUE(good) << a.error;
    ok += good;
  }
  EXPECT_EQ(ok, kNames);
  EXPECT_EQ(dns_.peak_held(), kNames);
}

TEST_F(AresResolverTest, SharesIdenticalLookupsInFlight) {
  DnsResponder::Record r = at({"127.0.0.3"});
  r.held = true;
  dns_.set("same.test", r);
  dns_.set("other.test", r);
  dns_.hold_until(2); // nothing is answered before both names were asked
  auto answers =
      resolve({"same.test", "same.test", "other.test", "same.test"}, 81);
  for (const Answer &a : answers)
    ASSERT_TRUE(a.error.empty()) << a.error;
  EXPECT_EQ(answers[1].addresses, std::vector<std::string>{"127.0.0.3:81"});
  EXPECT_EQ(lookups_started(), 2u);
  EXPECT_EQ(dns_.questions("same.test", 1), 1);
}

// A cached answer is served without a query until its TTL (1 s) passes;
// then the name is asked again.
TEST_F(AresResolverTest, CachesAnswersForTheirTtl) {
  dns_.set("ttl.test", at({"127.0.0.4"}, 1));
  ASSERT_TRUE(resolve({"ttl.test"})[0].error.empty());
  EXPECT_EQ(dns_.questions("ttl.test", 1), 1);
  auto again = resolve({"ttl.test"}, 90);
  ASSERT_TRUE(again[0].error.empty());
  EXPECT_EQ(again[0].addresses, std::vector<std::string>{"127.0.0.4:90"});
  EXPECT_EQ(dns_.questions("ttl.test", 1), 1) << "served from the cache";
  EXPECT_EQ(lookups_started(), 1u);
  // Polled: how long the TTL takes is the point of the test.
  EXPECT_TRUE(wait_until(
      [&] {
        resolve({"ttl.test"});
        return dns_.questions("ttl.test", 1) == 2;
      },
      Ms(5000)))
      << "the expired entry is looked up again";
}

// RFC 6761: .invalid is answered locally, without a query.
TEST_F(AresResolverTest, InvalidNamesFailWithoutAQuery) {
  auto a = resolve({"no-such-host.invalid", "INVALID"});
  EXPECT_NE(a[0].error.find("no-such-host.invalid"), std::string::npos);
  EXPECT_FALSE(a[1].error.empty());
  EXPECT_EQ(lookups_started(), 0u);
  EXPECT_EQ(dns_.total_questions(), 0u);
}

// NXDOMAIN is remembered only briefly: a name that appears is found soon.
TEST_F(AresResolverTest, NegativeAnswersExpireSoon) {
  auto first = resolve({"later.test"});
  EXPECT_NE(first[0].error.find("later.test"), std::string::npos);
  dns_.set("later.test", at({"127.0.0.5"}, 60));
  auto start = Clock::now();
  EXPECT_TRUE(wait_until(
      [&] { return resolve({"later.test"})[0].error.empty(); }, Ms(5000)));
  EXPECT_LT(Clock::now() - start, Ms(3000));
}

} // namespace
} // namespace faults
