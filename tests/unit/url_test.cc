#include "url.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

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
  EXPECT_EQ(u.host(), "example.com");
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
  EXPECT_EQ(u.host(), "::1");
  EXPECT_EQ(u.authority, "[::1]:81");
  EXPECT_EQ(u.endpoint_name(), "http://[::1]:81");
}

TEST(Url, Ipv4Literal) {
  Url u = parse_ok("http://127.0.0.1:9/");
  EXPECT_FALSE(u.host_is_ipv6);
  EXPECT_EQ(u.host(), "127.0.0.1");
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

// parse_url caches the last origin per thread; these check that a warm cache
// never changes a result.

// Valid and invalid URLs, with many sharing an origin or a prefix of one.
std::vector<std::string> url_corpus() {
  std::vector<std::string> c = {
      "http://Example.COM:8080/a/b?x=1#frag",
      "http://example.com:8080/other",
      "http://example.com:80801/",
      "http://example.com:808/",
      "http://example.com/",
      "http://example.com",
      "http://example.com?q",
      "http://example.com#f",
      "http://example.com#f\x01",
      "http://example.com/a b",
      "http://example.com/\x80",
      "http://example.com.x/",
      "http://example.com@x/",
      "http://example.com:/",
      "http://h/",
      "http://h",
      "http://h?q=1",
      "http://h?q=1#x",
      "http://h#",
      "http://h/#",
      "http://h/p?#",
      "http://h//",
      "http://h/?q",
      "http://h??",
      "http://h?/",
      "http://h:80/",
      "http://h:8/",
      "http://h:80a/",
      "http://h:/",
      "http://h/\x01",
      "http://h/\x7f",
      "http://h\x01/",
      "http://h..x/",
      "http://h:0/",
      "http://h:65535/",
      "http://h:65536/",
      "http://h:99999/",
      "http://h:-1/",
      "http://h:8a/",
      "HTTP://H/",
      "HTTPS://h",
      "https://h:443/x",
      "https://h:80/x",
      "http://127.0.0.1:18081/6b",
      "http://127.0.0.1:18081/6b?x=1",
      "http://127.0.0.1:18081",
      "http://127.0.0.1:1808/6b",
      "http://[0:0:0:0:0:0:0:1]:81/x",
      "http://[::1]:81/y",
      "http://[::1]/",
      "http://[::1:2]/",
      "http://[::ffff:1.2.3.4]:80/",
      "http://[::1/",
      "http://[zz]/",
      "http://[]/",
      "http://[::1]x/",
      "http://[::1]:/",
      "http://user@h/",
      "http://ex%41mple/",
      "http:/x",
      "http://",
      "http:///path",
      "http",
      "://x",
      "1http://h/",
      "ht#p://h/",
      "ftp://h/",
      "ws://h/",
      "",
  };
  // Around the cache's 128-byte prefix limit and the 254-byte host limit.
  for (size_t len : {100, 120, 121, 122, 200, 254, 255}) {
    std::string host(len, 'a');
    c.push_back("http://" + host + "/p");
    c.push_back("http://" + host + "/q?x");
  }
  return c;
}

struct Result {
  int rc = 0;
  std::string why;
  Url url;
};

// Starts from non-default fields so a partial write shows up.
Result parse_once(const std::string &text) {
  Result r;
  r.why = "(untouched)";
  r.url.scheme = Scheme::https;
  r.url.host_is_ipv6 = true;
  r.url.port = 1;
  r.url.authority = "[old.host]:1";
  r.url.host_len = 8;
  r.url.path = "/old/path";
  r.rc = parse_url(text, &r.url, &r.why);
  return r;
}

// A thread's cache starts empty, so this is a parse with a cold cache.
Result parse_cold(const std::string &text) {
  Result r;
  std::thread([&] { r = parse_once(text); }).join();
  return r;
}

void expect_same(const Result &got, const Result &want,
                 const std::string &context) {
  EXPECT_EQ(got.rc, want.rc) << context;
  EXPECT_EQ(got.why, want.why) << context;
  EXPECT_EQ(got.url.scheme, want.url.scheme) << context;
  EXPECT_EQ(got.url.host(), want.url.host()) << context;
  EXPECT_EQ(got.url.host_is_ipv6, want.url.host_is_ipv6) << context;
  EXPECT_EQ(got.url.port, want.url.port) << context;
  EXPECT_EQ(got.url.authority, want.url.authority) << context;
  EXPECT_EQ(got.url.path, want.url.path) << context;
}

std::vector<Result> cold_results(const std::vector<std::string> &corpus) {
  std::vector<Result> cold;
  for (const std::string &text : corpus)
    cold.push_back(parse_cold(text));
  return cold;
}

TEST(Url, WarmCacheGivesColdResultAfterEveryOtherUrl) {
  std::vector<std::string> corpus = url_corpus();
  std::vector<Result> cold = cold_results(corpus);
  for (const std::string &first : corpus) {
    // A fresh thread per first URL, so the cache holds exactly its origin
    // (or stays empty if it is invalid); then every URL, twice.
    std::thread([&] {
      for (size_t i = 0; i < corpus.size(); ++i) {
        parse_once(first);
        expect_same(parse_once(corpus[i]), cold[i],
                    "'" + corpus[i] + "' after '" + first + "'");
        expect_same(parse_once(corpus[i]), cold[i],
                    "'" + corpus[i] + "' twice after '" + first + "'");
      }
    }).join();
  }
}

TEST(Url, InterleavedOriginsGiveColdResults) {
  std::vector<std::string> corpus = url_corpus();
  std::vector<Result> cold = cold_results(corpus);
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < corpus.size(); ++i)
      expect_same(parse_once(corpus[i]), cold[i], corpus[i]);
    for (size_t i = corpus.size(); i-- > 0;)
      expect_same(parse_once(corpus[i]), cold[i], corpus[i]);
  }
}

TEST(Url, ColdCorpusMatchesExpectations) {
  // Pins the corpus itself, so the cache tests compare against the right
  // answers: a few spot checks across the kinds of entry.
  std::vector<std::string> corpus = url_corpus();
  std::vector<Result> cold = cold_results(corpus);
  size_t ok = 0;
  for (const Result &r : cold)
    ok += r.rc == H2POOL_OK;
  EXPECT_EQ(ok, 50u);
  Result v6 = parse_cold("http://[::1:2]/");
  EXPECT_EQ(v6.rc, H2POOL_OK);
  EXPECT_EQ(v6.url.host(), "::0.1.0.2");
  Result len254 = parse_cold("http://" + std::string(254, 'a') + "/p");
  EXPECT_EQ(len254.rc, H2POOL_OK);
  EXPECT_EQ(len254.url.authority, std::string(254, 'a'));
  EXPECT_EQ(parse_cold("http://" + std::string(255, 'a') + "/p").rc,
            H2POOL_ERR_INVALID_URL);
}

TEST(Url, CachedOriginStillChecksThePath) {
  parse_ok("http://h/ok");
  EXPECT_EQ(parse_code("http://h/a b"), H2POOL_ERR_INVALID_URL);
  EXPECT_EQ(parse_code("http://h#\x01"), H2POOL_ERR_INVALID_URL);
}

TEST(Url, CachedOriginIsNotMatchedByALongerAuthority) {
  parse_ok("http://h:8/");
  EXPECT_EQ(parse_ok("http://h:80/x").authority, "h");
  EXPECT_EQ(parse_ok("http://h:8/x").authority, "h:8");
  EXPECT_EQ(parse_code("http://h:8a/"), H2POOL_ERR_INVALID_URL);
}

TEST(Url, CachedOriginHandlesQueryOnlyAndEmptyPaths) {
  parse_ok("http://h/");
  EXPECT_EQ(parse_ok("http://h?q=1#f").path, "/?q=1");
  EXPECT_EQ(parse_ok("http://h").path, "/");
  EXPECT_EQ(parse_ok("http://h#f").path, "/");
}

TEST(Url, BadByteOrFragmentIsFoundAtEveryOffset) {
  // The byte check goes eight bytes at a time; try each position in a word.
  const std::string base = "http://h/";
  for (size_t pos = 0; pos < 40; ++pos) {
    for (char c : {'\x01', ' ', '\x7f', '\x80', '\xff'}) {
      std::string path(40, 'a');
      path[pos] = c;
      EXPECT_EQ(parse_code((base + path).c_str()), H2POOL_ERR_INVALID_URL)
          << pos << " " << int(c);
    }
    std::string path(40, 'a');
    path[pos] = '#';
    EXPECT_EQ(parse_ok((base + path + "#x").c_str()).path,
              "/" + path.substr(0, pos))
        << pos;
  }
  EXPECT_EQ(parse_ok("http://h/!~!~!~!~!~!~!~!~!~").path,
            "/!~!~!~!~!~!~!~!~!~");
}

TEST(Url, FailureLeavesOutputUntouched) {
  parse_ok("http://h/");
  for (const char *bad : {"http://h/a b", "http://h:0/", "ftp://h/"}) {
    Result r = parse_once(bad);
    EXPECT_NE(r.rc, H2POOL_OK) << bad;
    EXPECT_EQ(r.url.scheme, Scheme::https) << bad;
    EXPECT_EQ(r.url.host(), "old.host") << bad;
    EXPECT_TRUE(r.url.host_is_ipv6) << bad;
    EXPECT_EQ(r.url.port, 1) << bad;
    EXPECT_EQ(r.url.authority, "[old.host]:1") << bad;
    EXPECT_EQ(r.url.path, "/old/path") << bad;
  }
}

} // namespace
} // namespace h2pool_core
