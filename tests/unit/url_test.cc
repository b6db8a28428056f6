#include "url.h"

#include <gtest/gtest.h>

#include "h2pool.h"

namespace h2pool_core {
namespace {

Url parse_ok(const char *text) {
  Url url;
  std::string why;
  EXPECT_EQ(parse_url(text, &url, &why), H2POOL_OK) << text << ": " << why;
  return url;
}

int parse_code(const char *text) {
  Url url;
  std::string why;
  int rc = parse_url(text, &url, &why);
  if (rc != H2POOL_OK)
    EXPECT_FALSE(why.empty()) << "no reason given for " << text;
  return rc;
}

TEST(Url, HostPortAndPath) {
  Url u = parse_ok("http://Example.COM:8080/a/b?x=1#frag");
  EXPECT_EQ(u.scheme, Scheme::http);
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.authority, "example.com:8080");
  EXPECT_EQ(u.path, "/a/b?x=1");
  EXPECT_EQ(u.endpoint_name(), "http://example.com:8080");
}

TEST(Url, DefaultPortsAreOmittedFromAuthority) {
  Url u = parse_ok("http://h/");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.authority, "h");
  Url s = parse_ok("HTTPS://h");
  EXPECT_EQ(s.scheme, Scheme::https);
  EXPECT_EQ(s.port, 443);
  EXPECT_EQ(s.path, "/");
}

TEST(Url, QueryWithoutPathGetsSlash) {
  EXPECT_EQ(parse_ok("http://h?q=1").path, "/?q=1");
}

TEST(Url, BracketedIpv6IsCanonicalised) {
  Url u = parse_ok("http://[0:0:0:0:0:0:0:1]:81/x");
  EXPECT_TRUE(u.host_is_ipv6);
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.authority, "[::1]:81");
  EXPECT_EQ(u.endpoint_name(), "http://[::1]:81");
}

TEST(Url, Ipv4Literal) {
  Url u = parse_ok("http://127.0.0.1:9/");
  EXPECT_FALSE(u.host_is_ipv6);
  EXPECT_EQ(u.host, "127.0.0.1");
}

TEST(Url, RejectsMalformed) {
  for (const char *bad : {"",
                          "http",
                          "http:/x",
                          "://x",
                          "http://",
                          "http:///path",
                          "http://h:0/",
                          "http://h:65536/",
                          "http://h:99999/",
                          "http://h:-1/",
                          "http://h:8a/",
                          "http://[::1/",
                          "http://[zz]/",
                          "http://[::1]x/",
                          "http://a b/",
                          "http://h/\x01",
                          "http://h/\x7f",
                          "http://user@h/",
                          "http://h..x/",
                          "http://ex%41mple/",
                          "1http://h/"}) {
    EXPECT_EQ(parse_code(bad), H2POOL_ERR_INVALID_URL) << bad;
  }
}

TEST(Url, RejectsOtherSchemes) {
  EXPECT_EQ(parse_code("ftp://h/"), H2POOL_ERR_UNSUPPORTED_SCHEME);
  EXPECT_EQ(parse_code("ws://h/"), H2POOL_ERR_UNSUPPORTED_SCHEME);
}

TEST(Url, EmptyPortMeansDefault) { EXPECT_EQ(parse_ok("http://h:/").port, 80); }

} // namespace
} // namespace h2pool_core
