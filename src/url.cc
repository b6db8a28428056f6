#include "url.h"

#include <arpa/inet.h>

#include <strings.h>

#include <charconv>

#include "h2pool.h"

namespace h2pool_core {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Host names as DNS and the registered-name rule of RFC 3986 allow in
// practice; percent-encoded and non-ASCII (IDNA) names are out of scope.
bool is_host_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

int fail(std::string *why, int code, const char *reason) {
  if (why)
    *why = reason;
  return code;
}

} // namespace

std::string Url::endpoint_name() const {
  std::string s = scheme == Scheme::https ? "https://" : "http://";
  if (host_is_ipv6)
    s += '[' + host + ']';
  else
    s += host;
  s += ':';
  s += std::to_string(port);
  return s;
}

int parse_url(std::string_view text, Url *out, std::string *why) {
  for (unsigned char c : text) {
    // Spaces, controls and raw non-ASCII bytes must be percent-encoded; a URL
    // carrying them is a caller bug we report rather than send.
    if (c <= 0x20 || c >= 0x7f)
      return fail(why, H2POOL_ERR_INVALID_URL,
                  "URL contains a space, control or non-ASCII character");
  }
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0)
    return fail(why, H2POOL_ERR_INVALID_URL,
                "URL is not absolute (expected scheme://host/...)");
  Url url;
  std::string_view scheme = text.substr(0, sep);
  for (size_t i = 0; i < scheme.size(); ++i) {
    char c = scheme[i];
    bool ok = is_alpha(c) ||
              (i > 0 && (is_digit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok)
      return fail(why, H2POOL_ERR_INVALID_URL, "URL scheme is malformed");
  }
  if (scheme.size() == 4 && strncasecmp(scheme.data(), "http", 4) == 0) {
    url.scheme = Scheme::http;
    url.port = 80;
  } else if (scheme.size() == 5 &&
             strncasecmp(scheme.data(), "https", 5) == 0) {
    url.scheme = Scheme::https;
    url.port = 443;
  } else {
    return fail(why, H2POOL_ERR_UNSUPPORTED_SCHEME,
                "only http:// and https:// URLs are supported");
  }
  uint16_t default_port = url.port;

  std::string_view rest = text.substr(sep + 3);
  size_t auth_end = 0; // a plain loop: find_first_of is slow for this
  while (auth_end < rest.size() && rest[auth_end] != '/' &&
         rest[auth_end] != '?' && rest[auth_end] != '#')
    ++auth_end;
  if (auth_end == rest.size())
    auth_end = std::string_view::npos;
  std::string_view auth = rest.substr(0, auth_end);
  std::string_view tail = auth_end == std::string_view::npos
                              ? std::string_view{}
                              : rest.substr(auth_end);

  if (auth.find('@') != std::string_view::npos)
    return fail(why, H2POOL_ERR_INVALID_URL,
                "credentials in the URL are not supported");
  if (auth.empty())
    return fail(why, H2POOL_ERR_INVALID_URL, "URL has no host");

  std::string_view port_text;
  bool has_port = false;
  if (auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos)
      return fail(why, H2POOL_ERR_INVALID_URL, "unterminated IPv6 literal");
    std::string literal(auth.substr(1, close - 1));
    in6_addr a6;
    if (literal.empty() || inet_pton(AF_INET6, literal.c_str(), &a6) != 1)
      return fail(why, H2POOL_ERR_INVALID_URL, "invalid IPv6 literal");
    char canon[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, canon, sizeof canon);
    url.host = canon;
    url.host_is_ipv6 = true;
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return fail(why, H2POOL_ERR_INVALID_URL,
                    "unexpected characters after IPv6 literal");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = auth.find(':');
    std::string_view host = auth.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = auth.substr(colon + 1);
    }
    if (host.empty())
      return fail(why, H2POOL_ERR_INVALID_URL, "URL has no host");
    if (host.size() > 253 + 1)
      return fail(why, H2POOL_ERR_INVALID_URL, "host name too long");
    url.host.assign(host);
    for (char &c : url.host) {
      if (!is_host_char(c))
        return fail(why, H2POOL_ERR_INVALID_URL,
                    "host contains an invalid character");
      c = lower(c);
    }
    if (url.host == "." || url.host.find("..") != std::string::npos)
      return fail(why, H2POOL_ERR_INVALID_URL, "host has an empty label");
  }
  if (has_port && !port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(
        port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() ||
        value == 0 || value > 65535 || !is_digit(port_text.front()))
      return fail(why, H2POOL_ERR_INVALID_URL,
                  "port must be a number from 1 to 65535");
    url.port = uint16_t(value);
  }

  url.authority.reserve(url.host.size() + 8);
  if (url.host_is_ipv6)
    url.authority.append(1, '[').append(url.host).append(1, ']');
  else
    url.authority.append(url.host);
  if (url.port != default_port) {
    char digits[8];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, url.port);
    url.authority.append(1, ':').append(digits, end);
  }

  size_t hash = tail.find('#');
  if (hash != std::string_view::npos)
    tail = tail.substr(0, hash);
  if (tail.empty())
    url.path = "/";
  else if (tail.front() == '?')
    url.path = "/" + std::string(tail);
  else
    url.path = std::string(tail);

  *out = std::move(url);
  return H2POOL_OK;
}

} // namespace h2pool_core
