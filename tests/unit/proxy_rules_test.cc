#include "proxy.h"

#include <gtest/gtest.h>

#include <string>

#include "h2pool.h"

namespace h2pool_core {
namespace {

ProxyTarget parse_ok(const char *text) {
  ProxyTarget t;
  std::string why;
  EXPECT_EQ(parse_proxy_url(text, &t, &why), H2POOL_OK) << text << ": " << why;
  return t;
}

TEST(ProxyUrl, SchemesAndDefaultPorts) {
  EXPECT_EQ(parse_ok("http://p").port, 1080);
  EXPECT_EQ(parse_ok("https://p").port, 443);
  EXPECT_EQ(parse_ok("socks5://p").port, 1080);
  EXPECT_EQ(parse_ok("socks5h://p").kind, ProxyTarget::Kind::socks5h);
  EXPECT_EQ(parse_ok("HTTPS://P.Example:8443").name, "https://p.example:8443");
  ProxyTarget bare = parse_ok("proxy.example:3128");
  EXPECT_EQ(bare.kind, ProxyTarget::Kind::http);
  EXPECT_EQ(bare.port, 3128);
}

TEST(ProxyUrl, CredentialsAreDecodedAndNeverInTheName) {
  ProxyTarget t = parse_ok("http://us%65r:p%40ss:word@10.0.0.1:8080/");
  EXPECT_TRUE(t.has_credentials);
  EXPECT_EQ(t.user, "user");
  EXPECT_EQ(t.password, "p@ss:word");
  EXPECT_EQ(t.name, "http://10.0.0.1:8080");
  EXPECT_TRUE(t.host_is_ip);
}

TEST(ProxyUrl, Ipv6Literal) {
  ProxyTarget t = parse_ok("socks5h://[::1]:1080");
  EXPECT_EQ(t.host, "::1");
  EXPECT_TRUE(t.host_is_ip);
  EXPECT_EQ(t.name, "socks5h://[::1]:1080");
}

TEST(ProxyUrl, ErrorsNeverQuoteTheUrl) {
  ProxyTarget t;
  std::string why;
  EXPECT_EQ(parse_proxy_url("ftp://user:hunter2@p:21", &t, &why),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
  EXPECT_EQ(parse_proxy_url("http://user:hunter2@p:99999", &t, &why),
            H2POOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
}

bool no_proxy(const char *list, const char *host, uint16_t port = 80) {
  NoProxy n;
  n.parse(list);
  return n.matches(host, port);
}

TEST(NoProxy, HostNamesMatchThemselvesAndTheirSubdomains) {
  EXPECT_TRUE(no_proxy("example.com", "example.com"));
  EXPECT_TRUE(no_proxy("example.com", "api.example.com"));
  EXPECT_TRUE(no_proxy(".example.com", "example.com"));
  EXPECT_TRUE(no_proxy(".example.com", "a.b.example.com"));
  EXPECT_TRUE(no_proxy("EXAMPLE.com.", "example.com."));
  EXPECT_FALSE(no_proxy("example.com", "notexample.com"));
  EXPECT_FALSE(no_proxy("example.com", "example.org"));
  EXPECT_FALSE(no_proxy("", "example.com"));
}

TEST(NoProxy, StarMatchesEverything) {
  EXPECT_TRUE(no_proxy("*", "anything.example"));
  EXPECT_TRUE(no_proxy("a.example, *", "10.1.2.3"));
}

TEST(NoProxy, AddressesAndNetworks) {
  EXPECT_TRUE(no_proxy("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(no_proxy("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(no_proxy("10.0.0.0/8", "10.200.3.4"));
  EXPECT_FALSE(no_proxy("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(no_proxy("192.168.1.0/25", "192.168.1.127"));
  EXPECT_FALSE(no_proxy("192.168.1.0/25", "192.168.1.128"));
  EXPECT_TRUE(no_proxy("::1", "::1"));
  EXPECT_TRUE(no_proxy("fd00::/8", "fd12::1"));
  EXPECT_FALSE(no_proxy("fd00::/8", "fe80::1"));
  // An address entry is not a name suffix.
  EXPECT_FALSE(no_proxy("0.0.1", "10.0.0.1"));
}

TEST(NoProxy, PortsRestrictAnEntry) {
  EXPECT_TRUE(no_proxy("example.com:8080", "example.com", 8080));
  EXPECT_FALSE(no_proxy("example.com:8080", "example.com", 443));
  EXPECT_TRUE(no_proxy("[::1]:443", "::1", 443));
  EXPECT_FALSE(no_proxy("[::1]:443", "::1", 80));
}

TEST(NoProxy, SeparatorsAndJunk) {
  EXPECT_TRUE(no_proxy(" a.example ,, b.example\tc.example", "c.example"));
  EXPECT_FALSE(no_proxy("a.example:notaport,10.0.0.0/99", "a.example"));
}

TEST(ProxyRules, ExplicitProxyAppliesToBothSchemesAndNoProxySplits) {
  Config c;
  c.proxy_set = true;
  c.proxy = "http://p:3128";
  c.noproxy_set = true;
  c.noproxy = "direct.example";
  ProxyRules r;
  ASSERT_EQ(r.init(c, nullptr), H2POOL_OK);
  ASSERT_NE(r.route(false, "a.example", 80), nullptr);
  ASSERT_NE(r.route(true, "a.example", 443), nullptr);
  EXPECT_EQ(r.route(true, "direct.example", 443), nullptr);
}

TEST(ProxyRules, EmptyExplicitProxyMeansNoneWhateverTheEnvironment) {
  Config c;
  c.proxy_set = true;
  c.proxy_env = true;
  c.env_http_proxy = "http://p:1";
  ProxyRules r;
  ASSERT_EQ(r.init(c, nullptr), H2POOL_OK);
  EXPECT_FALSE(r.any());
}

TEST(ProxyRules, ExplicitCredentialsReplaceTheUrls) {
  Config c;
  c.proxy_set = true;
  c.proxy = "http://a:b@p:1";
  c.proxy_credentials = true;
  c.proxy_user = "x";
  c.proxy_password = "y";
  ProxyRules r;
  ASSERT_EQ(r.init(c, nullptr), H2POOL_OK);
  const ProxyTarget *t = r.route(false, "o", 80);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->user, "x");
  EXPECT_EQ(t->password, "y");
}

} // namespace
} // namespace h2pool_core
