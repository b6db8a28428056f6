#include "headers.h"

#include <gtest/gtest.h>

#include <cstring>

namespace h2pool_core {
namespace {

h2pool_header hdr(const char *n, const char *v) {
  return {n, strlen(n), v, strlen(v)};
}

int normalize(std::initializer_list<h2pool_header> list, RequestHeaders *out) {
  std::vector<h2pool_header> v(list);
  std::string why;
  int rc = normalize_request_headers(v.data(), v.size(), out, &why);
  if (rc != H2POOL_OK)
    EXPECT_FALSE(why.empty());
  return rc;
}

TEST(Headers, NamesAreLowerCased) {
  RequestHeaders out;
  ASSERT_EQ(normalize({hdr("X-Trace-ID", "abc")}, &out), H2POOL_OK);
  ASSERT_EQ(out.fields.size(), 1u);
  EXPECT_EQ(out.fields[0].name, "x-trace-id");
  EXPECT_EQ(out.fields[0].value, "abc");
}

TEST(Headers, HostBecomesAuthority) {
  RequestHeaders out;
  ASSERT_EQ(normalize({hdr("Host", "example.org:81")}, &out), H2POOL_OK);
  EXPECT_TRUE(out.fields.empty());
  EXPECT_EQ(out.authority, "example.org:81");
}

TEST(Headers, ContentLengthIsNoticed) {
  RequestHeaders out;
  ASSERT_EQ(normalize({hdr("content-length", "3")}, &out), H2POOL_OK);
  EXPECT_TRUE(out.has_content_length);
}

TEST(Headers, TeTrailersIsAllowed) {
  RequestHeaders out;
  EXPECT_EQ(normalize({hdr("te", "trailers")}, &out), H2POOL_OK);
}

// RFC 9110 section 10.1.4: te is a list of case-insensitive tokens, and
// RFC 9113 section 8.2.2 allows only "trailers" in it; the field's
// surrounding whitespace is not part of the value (RFC 9110 section 5.5).
TEST(Headers, TeTrailersInAnyCaseIsSentLowerCase) {
  for (const char *v : {"trailers", "Trailers", "TRAILERS", "tRaIlErS",
                        " trailers", "trailers\t", "\t TRAILERS  "}) {
    RequestHeaders out;
    ASSERT_EQ(normalize({hdr("TE", v)}, &out), H2POOL_OK) << '"' << v << '"';
    ASSERT_EQ(out.fields.size(), 1u) << v;
    EXPECT_EQ(out.fields[0].name, "te") << v;
    EXPECT_EQ(out.fields[0].value, "trailers") << '"' << v << '"';
  }
}

TEST(Headers, TeOtherThanTrailersIsRefused) {
  for (const char *v : {"", " ", "trailer", "trailersx", "trailers, gzip",
                        "gzip, trailers", "trailers;q=1", "trailers;q=0.5",
                        "deflate", "tra ilers", "trailers\r", "\ntrailers"}) {
    RequestHeaders out;
    std::string why;
    h2pool_header h = hdr("te", v);
    EXPECT_EQ(normalize_request_headers(&h, 1, &out, &why),
              H2POOL_ERR_INVALID_HEADER)
        << '"' << v << '"';
    EXPECT_FALSE(why.empty()) << v;
  }
}

TEST(Headers, RejectsInvalidFields) {
  const h2pool_header bad[] = {hdr("", "v"),
                               hdr("bad name", "v"),
                               hdr(":path", "/"),
                               hdr("connection", "x"),
                               hdr("Keep-Alive", "1"),
                               hdr("transfer-encoding", "chunked"),
                               hdr("upgrade", "h2c"),
                               hdr("proxy-connection", "x"),
                               hdr("te", "gzip"),
                               hdr("x", "a\r\nb"),
                               hdr("x", " lead"),
                               hdr("x", "trail "),
                               hdr("host", ""),
                               hdr("x(y)", "v"),
                               hdr("host", "bad host/x"),
                               hdr("host", "user@example.org")};
  for (const auto &h : bad) {
    RequestHeaders out;
    std::string why;
    EXPECT_EQ(normalize_request_headers(&h, 1, &out, &why),
              H2POOL_ERR_INVALID_HEADER)
        << std::string(h.name, h.name_len) << ": "
        << std::string(h.value, h.value_len);
  }
}

TEST(Headers, RejectsNulInValue) {
  h2pool_header h = {"x", 1, "a\0b", 3};
  RequestHeaders out;
  std::string why;
  EXPECT_EQ(normalize_request_headers(&h, 1, &out, &why),
            H2POOL_ERR_INVALID_HEADER);
}

TEST(Headers, RejectsNullPointerWithLength) {
  h2pool_header h = {nullptr, 3, "v", 1};
  RequestHeaders out;
  std::string why;
  EXPECT_EQ(normalize_request_headers(&h, 1, &out, &why),
            H2POOL_ERR_INVALID_HEADER);
}

TEST(Method, Tokens) {
  EXPECT_TRUE(valid_method("GET"));
  EXPECT_TRUE(valid_method("M-SEARCH"));
  EXPECT_FALSE(valid_method(""));
  EXPECT_FALSE(valid_method("GE T"));
  EXPECT_FALSE(valid_method("GET\n"));
}

} // namespace
} // namespace h2pool_core
