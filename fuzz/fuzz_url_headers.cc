// parse_url, valid_method and normalize_request_headers on arbitrary text
// (and the URL string as a proxy URL and a NO_PROXY list),
// with the invariants the rest of the library relies on checked after every
// accepted input (trap on violation).
//
// Input layout (FuzzedDataProvider strings: a string ends at a backslash
// followed by anything but a backslash, "\\" is one backslash):
//   url \ method \ then name \ value \ pairs until the input runs out.
// A pair whose name is empty is passed with a NULL name pointer half the
// time (decided by the byte after it), to cover the NULL checks.
#include <fuzzer/FuzzedDataProvider.h>
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "h2pool.h"
#include "headers.h"
#include "proxy.h"
#include "url.h"

using namespace h2pool_core;

namespace {

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      __builtin_trap();                                                        \
  } while (0)

const uint8_t *bytes(const std::string &s) {
  return reinterpret_cast<const uint8_t *>(s.data());
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

void check_url(const std::string &text) {
  Url url;
  std::string why;
  int rc = parse_url(text, &url, &why);
  // The reason is optional for callers; leaving it out must not change the
  // verdict.
  Url url2;
  FUZZ_CHECK(parse_url(text, &url2, nullptr) == rc);
  if (rc != H2POOL_OK) {
    FUZZ_CHECK(rc == H2POOL_ERR_INVALID_URL ||
               rc == H2POOL_ERR_UNSUPPORTED_SCHEME);
    FUZZ_CHECK(!why.empty());
    return;
  }
  // What Connection::submit sends as :path and :authority must be valid
  // HTTP/2 fields, or the server rejects the stream for our mistake.
  FUZZ_CHECK(!url.path.empty() && url.path[0] == '/');
  FUZZ_CHECK(url.path.find('#') == std::string::npos);
  FUZZ_CHECK(nghttp2_check_path(bytes(url.path), url.path.size()));
  FUZZ_CHECK(!url.host().empty());
  FUZZ_CHECK(!url.authority.empty());
  FUZZ_CHECK(
      nghttp2_check_authority(bytes(url.authority), url.authority.size()));
  FUZZ_CHECK(url.port != 0);
  if (!url.host_is_ipv6) {
    for (char c : url.host())
      FUZZ_CHECK(is_host_char(c)); // lower-cased, no ':' or '@'
  }
  uint16_t default_port = url.scheme == Scheme::https ? 443 : 80;
  std::string host(url.host());
  if (url.host_is_ipv6)
    host = "[" + host + "]";
  FUZZ_CHECK(url.authority == (url.port == default_port
                                   ? host
                                   : host + ":" + std::to_string(url.port)));
  std::string endpoint = url.endpoint_name();
  FUZZ_CHECK(endpoint ==
             (url.scheme == Scheme::https ? "https://" : "http://") + host +
                 ":" + std::to_string(url.port));

  // The parsed form is a fixed point: printing and parsing it again gives
  // the same request target (the pool keys endpoints on it).
  std::string again = endpoint + url.path;
  Url url3;
  FUZZ_CHECK(parse_url(again, &url3, nullptr) == H2POOL_OK);
  FUZZ_CHECK(url3.scheme == url.scheme && url3.host() == url.host() &&
             url3.host_is_ipv6 == url.host_is_ipv6 && url3.port == url.port &&
             url3.authority == url.authority && url3.path == url.path);
}

void check_method(const std::string &method) {
  bool ok = valid_method(method);
  if (ok)
    FUZZ_CHECK(nghttp2_check_method(bytes(method), method.size()));
  if (method.empty())
    FUZZ_CHECK(!ok);
}

bool is_connection_specific(const std::string &n) {
  return n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
         n == "transfer-encoding" || n == "upgrade";
}

std::string lower(std::string s) {
  for (char &c : s)
    if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
  return s;
}

void check_headers(const std::vector<h2pool_header> &in) {
  RequestHeaders out;
  std::string why;
  int rc = normalize_request_headers(in.data(), in.size(), &out, &why);
  if (rc != H2POOL_OK) {
    FUZZ_CHECK(rc == H2POOL_ERR_INVALID_HEADER);
    FUZZ_CHECK(!why.empty());
    return;
  }
  // Every field is passed through, lower-cased, except "host", which becomes
  // the authority (the last one wins).
  std::string want_authority;
  bool want_content_length = false;
  size_t j = 0;
  for (const h2pool_header &h : in) {
    std::string name = lower(std::string(h.name ? h.name : "", h.name_len));
    std::string value(h.value ? h.value : "", h.value_len);
    if (name == "host") {
      want_authority = value;
      continue;
    }
    FUZZ_CHECK(j < out.fields.size());
    const HeaderField &f = out.fields[j++];
    // te is accepted in any case (and with surrounding whitespace) and sent
    // in its one lower-case form; every other value goes as given.
    FUZZ_CHECK(f.name == name &&
               f.value == (name == "te" ? std::string("trailers") : value));
    if (name == "content-length")
      want_content_length = true;
  }
  FUZZ_CHECK(j == out.fields.size());
  FUZZ_CHECK(out.authority == want_authority);
  // A "host" header replaces the URL's authority in :authority, so it must
  // be one: a server that validates it (nghttp2 does) resets the stream, and
  // the caller gets a stream error for what should have been refused with
  // H2POOL_ERR_INVALID_HEADER.
  if (!out.authority.empty())
    FUZZ_CHECK(
        nghttp2_check_authority(bytes(out.authority), out.authority.size()));
  FUZZ_CHECK(out.has_content_length == want_content_length);
  for (const HeaderField &f : out.fields) {
    // Accepted names are lower-case tokens that nghttp2 would also accept,
    // and never pseudo-headers or HTTP/1 connection fields.
    FUZZ_CHECK(!f.name.empty() && f.name[0] != ':');
    FUZZ_CHECK(nghttp2_check_header_name(bytes(f.name), f.name.size()));
    FUZZ_CHECK(
        nghttp2_check_header_value_rfc9113(bytes(f.value), f.value.size()));
    FUZZ_CHECK(!is_connection_specific(f.name) && f.name != "host");
    if (f.name == "te")
      FUZZ_CHECK(f.value == "trailers");
  }
}

} // namespace

void check_proxy(const std::string &text) {
  ProxyTarget t;
  std::string why;
  int rc = parse_proxy_url(text, &t, &why);
  if (rc != H2POOL_OK) {
    FUZZ_CHECK(rc == H2POOL_ERR_INVALID_ARGUMENT);
    FUZZ_CHECK(!why.empty());
  } else {
    FUZZ_CHECK(t.port != 0 && !t.host.empty());
    // The name (used in messages and endpoint keys) names the same proxy
    // and never carries credentials.
    ProxyTarget again;
    FUZZ_CHECK(parse_proxy_url(t.name, &again, nullptr) == H2POOL_OK);
    FUZZ_CHECK(again.kind == t.kind && again.host == t.host &&
               again.port == t.port && !again.has_credentials &&
               again.name == t.name);
  }
  NoProxy list;
  list.parse(text);
  for (const char *host : {"example.com", "a.example.com", "10.1.2.3", "::1"})
    (void)list.matches(host, 443);
  if (rc == H2POOL_OK)
    (void)list.matches(t.host, t.port);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  std::string url = fdp.ConsumeRandomLengthString();
  check_url(url);
  check_proxy(url);
  check_method(fdp.ConsumeRandomLengthString());

  std::vector<std::string> strings;
  std::vector<bool> null_name;
  while (fdp.remaining_bytes() > 0 && strings.size() < 2 * 64) {
    strings.push_back(fdp.ConsumeRandomLengthString());
    strings.push_back(fdp.ConsumeRandomLengthString());
    null_name.push_back(fdp.ConsumeBool());
  }
  std::vector<h2pool_header> headers;
  for (size_t i = 0; i + 1 < strings.size(); i += 2) {
    const std::string &n = strings[i], &v = strings[i + 1];
    bool null_ptr = n.empty() && null_name[i / 2];
    headers.push_back({null_ptr ? nullptr : n.data(), n.size(),
                       v.empty() && null_name[i / 2] ? nullptr : v.data(),
                       v.size()});
  }
  check_headers(headers);
  return 0;
}
