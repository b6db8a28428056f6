// Parsing and validation of the absolute request URLs h2pool accepts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace h2pool_core {

enum class Scheme : uint8_t { http, https };

struct Url {
  Scheme scheme = Scheme::http;
  bool host_is_ipv6 = false;
  uint16_t port = 0;
  uint16_t host_len = 0; // of host(), which is part of `authority`
  std::string authority; // as sent in :authority (default port omitted);
                         // host lower-cased, IPv6 literals bracketed
  std::string path;      // path and query, never empty, starts with '/'

  // The host, lower-cased; IPv6 literals without brackets. (A view into
  // `authority` rather than a string of its own: every request holds a Url.)
  std::string_view host() const {
    return std::string_view(authority).substr(host_is_ipv6 ? 1 : 0, host_len);
  }

  // "scheme://host:port": the pool's endpoint key and the stats name.
  std::string endpoint_name() const;
};

// Parses an absolute http:// or https:// URL. Returns H2POOL_OK, or
// H2POOL_ERR_INVALID_URL / H2POOL_ERR_UNSUPPORTED_SCHEME with the reason in
// `*why` (if `why` is not null) and `*out` untouched. The fragment, if any, is
// dropped: it is never sent. `text` must not point into `*out`.
//
// Thread-safe. Each thread remembers the last origin ("scheme://authority")
// it parsed, so URLs that share it with the previous call cost only a
// compare and a scan of the path; the result is the same either way.
int parse_url(std::string_view text, Url *out, std::string *why);

// For the other places that read hosts and ports (proxy URLs, NO_PROXY
// lists, curl-style overrides), so that they agree with parse_url().
// ASCII lower case (host names, schemes): never by locale.
std::string ascii_lower(std::string_view s);
// A decimal port: one to five digits, 1..65535.
bool parse_port(std::string_view text, uint16_t *port);
// A non-empty host name of the characters parse_url() accepts in one.
bool is_host_name(std::string_view host);

} // namespace h2pool_core
