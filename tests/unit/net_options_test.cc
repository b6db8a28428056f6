// The parsers behind the --resolve, --connect-to and --dns-servers style
// setters, the socket options applied before connect(), and the address
// order Happy Eyeballs tries.
#include "connector.h"
#include "net_options.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace h2pool_core {
namespace {

std::vector<std::string> names(const std::vector<Address> &v) {
  std::vector<std::string> out;
  for (const Address &a : v)
    out.push_back(a.to_string());
  return out;
}

TEST(NetOptions, ParsesResolveEntries) {
  ResolveOverride r;
  ASSERT_TRUE(
      parse_resolve_override("Example.COM:443:127.0.0.1,[::1],::2", &r));
  EXPECT_EQ(r.host, "example.com");
  EXPECT_EQ(r.port, 443);
  EXPECT_EQ(
      names(r.addresses),
      (std::vector<std::string>{"127.0.0.1:443", "[::1]:443", "[::2]:443"}));
  for (const char *bad :
       {"", "host", "host:443", "host:443:", ":443:127.0.0.1",
        "host:0:127.0.0.1", "host:70000:127.0.0.1", "host:x:127.0.0.1",
        "host:443:not-an-ip", "host:443:127.0.0.1,", "[::1:443:127.0.0.1"})
    EXPECT_FALSE(parse_resolve_override(bad, &r)) << bad;
}

TEST(NetOptions, ParsesConnectToEntriesWithEmptyMeaningAny) {
  ConnectTo c;
  ASSERT_TRUE(parse_connect_to("a.test:443:b.test:8443", &c));
  EXPECT_EQ(c.from_host, "a.test");
  EXPECT_EQ(c.from_port, 443);
  EXPECT_EQ(c.to_host, "b.test");
  EXPECT_EQ(c.to_port, 8443);
  ASSERT_TRUE(parse_connect_to("::[::1]:", &c));
  EXPECT_EQ(c.from_host, "");
  EXPECT_EQ(c.from_port, 0);
  EXPECT_EQ(c.to_host, "::1");
  EXPECT_EQ(c.to_port, 0);
  for (const char *bad : {"", "a:1", "a:1:b", "a:x:b:2", "a:1:b:99999",
                          "a:1:b:2:extra", "a:1:[::1:2"})
    EXPECT_FALSE(parse_connect_to(bad, &c)) << bad;
}

TEST(NetOptions, ConnectToAppliesTheFirstMatchingEntry) {
  NetOptions net;
  ConnectTo c;
  ASSERT_TRUE(parse_connect_to("a.test:443:b.test:", &c));
  net.connect_to.push_back(c);
  ASSERT_TRUE(parse_connect_to(":80::8080", &c));
  net.connect_to.push_back(c);
  std::string host = "A.test";
  uint16_t port = 443;
  apply_connect_to(net, &host, &port);
  EXPECT_EQ(host, "b.test");
  EXPECT_EQ(port, 443);
  host = "x.test";
  port = 80;
  apply_connect_to(net, &host, &port);
  EXPECT_EQ(host, "x.test");
  EXPECT_EQ(port, 8080);
  port = 81;
  apply_connect_to(net, &host, &port);
  EXPECT_EQ(port, 81);
}

TEST(NetOptions, ParsesDnsServerLists) {
  std::vector<Address> servers;
  ASSERT_TRUE(
      parse_dns_servers("127.0.0.1:5353,[::1]:5353,10.0.0.1,::2", &servers));
  EXPECT_EQ(names(servers),
            (std::vector<std::string>{"127.0.0.1:5353", "[::1]:5353",
                                      "10.0.0.1:53", "[::2]:53"}));
  for (const char *bad :
       {"x", "127.0.0.1:", "127.0.0.1:0", "[::1]5353", "127.0.0.1,", "[::1"})
    EXPECT_FALSE(parse_dns_servers(bad, &servers)) << bad;
}

TEST(NetOptions, UnixAddressesNameThePathOrTheAbstractName) {
  Address a;
  ASSERT_TRUE(make_unix_address("/run/x.sock", false, &a));
  EXPECT_EQ(a.to_string(), "/run/x.sock");
  ASSERT_TRUE(make_unix_address("envoy", true, &a));
  EXPECT_EQ(a.to_string(), "@envoy");
  EXPECT_FALSE(make_unix_address(std::string(200, 'x'), false, &a));
  EXPECT_FALSE(make_unix_address("", false, &a));
}

// White-box: the keepalive options are on the socket before connect().
TEST(NetOptions, KeepaliveOptionsAreSetOnTheSocket) {
  NetOptions net;
  net.keepalive_idle_s = 42;
  net.keepalive_interval_s = 7;
  net.keepalive_count = 3;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(prepare_socket(fd, AF_INET, net), "");
  int v = 0;
  socklen_t len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len);
  EXPECT_EQ(v, 1);
  getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len);
  EXPECT_EQ(v, 42);
  getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len);
  EXPECT_EQ(v, 7);
  getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len);
  EXPECT_EQ(v, 3);
  close(fd);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(prepare_socket(fd, AF_INET, NetOptions()), "");
  getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len);
  EXPECT_EQ(v, 0) << "off unless asked for";
  close(fd);
}

TEST(NetOptions, HappyEyeballsInterleavesFamiliesIpv6First) {
  std::vector<Address> in;
  for (const char *a : {"10.0.0.1", "10.0.0.2", "10.0.0.3", "::1", "::2"}) {
    Address x;
    ASSERT_TRUE(parse_ip_literal(a, 1, &x));
    in.push_back(x);
  }
  EXPECT_EQ(names(Connector::interleave(in)),
            (std::vector<std::string>{"[::1]:1", "10.0.0.1:1", "[::2]:1",
                                      "10.0.0.2:1", "10.0.0.3:1"}));
}

} // namespace
} // namespace h2pool_core
