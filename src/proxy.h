// Which proxy, if any, carries the connections to an origin: proxy URLs
// (http://, https://, socks5://, socks5h://), NO_PROXY lists, and the
// environment variables libcurl and Go read (HTTPS_PROXY, HTTP_PROXY,
// ALL_PROXY, NO_PROXY), which a pool reads only when its caller opts in.
//
// The answer is fixed for the life of a pool: one proxy per scheme, and a
// NO_PROXY list that sends some origins direct. The pool asks once per
// endpoint, and the endpoint's name says which way its connections go.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace h2pool_core {

// One proxy: where it listens and how to speak to it.
struct ProxyTarget {
  enum class Kind { http, https, socks5, socks5h };
  Kind kind = Kind::http;
  std::string host; // lower-cased; IPv6 literals without brackets
  bool host_is_ip = false;
  uint16_t port = 0;
  bool has_credentials = false;
  std::string user;
  std::string password;
  // "http://host:port": for messages and endpoint names. Never carries the
  // credentials.
  std::string name;

  bool socks() const { return kind == Kind::socks5 || kind == Kind::socks5h; }
};

// Parses a proxy URL: "scheme://[user[:password]@]host[:port][/]", the
// scheme one of http, https, socks5, socks5h (case-insensitive), or no
// scheme at all, which means http:// as libcurl and Go take it. The user
// and password are percent-decoded. Default ports as libcurl's: 443 for
// https://, 1080 for the others. Returns H2POOL_OK, or
// H2POOL_ERR_INVALID_ARGUMENT with the reason in `*why` (which never
// quotes the URL: it may hold a password).
int parse_proxy_url(std::string_view text, ProxyTarget *out, std::string *why);

// A NO_PROXY list, with libcurl's rules (plus Go's CIDR and port forms):
// comma- or space-separated entries; "*" matches every origin; an IP
// address matches that address, "addr/bits" a network; a host name matches
// itself and every name under it ("example.com" and ".example.com" both
// match "example.com" and "www.example.com"); "entry:port" (IPv6 in
// brackets) matches only that port. Case-insensitive; a trailing dot is
// ignored. Loopback origins are not exempted on their own (libcurl does
// not; Go does): name them to bypass the proxy.
class NoProxy {
public:
  void parse(std::string_view list);
  // `host` is lower-cased, IPv6 literals without brackets.
  bool matches(const std::string &host, uint16_t port) const;
  bool empty() const { return !all_ && entries_.empty(); }

private:
  struct Entry {
    std::string name; // host name (no leading or trailing dot)
    bool is_network = false;
    int family = 0;        // AF_INET / AF_INET6 for networks
    uint8_t addr[16] = {}; // the network's address
    int prefix = 0;        // its prefix length in bits
    uint16_t port = 0;     // 0: any port
  };
  bool all_ = false;
  std::vector<Entry> entries_;
};

// Copies the proxy environment variables into `config` if the caller opted
// in (h2pool_config_use_proxy_env()); h2pool_create() calls it once.
void capture_proxy_environment(Config &config);

// The pool's routing: the proxy for http:// origins, the one for https://
// origins, and the origins that go direct.
class ProxyRules {
public:
  // From the config's explicit settings, and the environment values
  // capture_proxy_environment() put there (explicit settings win). Returns
  // H2POOL_OK or H2POOL_ERR_INVALID_ARGUMENT with the reason in `*why`.
  int init(const Config &config, std::string *why);

  bool any() const { return http_ || https_; }
  // The proxy for an origin, null for a direct connection.
  const ProxyTarget *route(bool https, const std::string &host,
                           uint16_t port) const;

private:
  std::optional<ProxyTarget> http_;
  std::optional<ProxyTarget> https_;
  NoProxy noproxy_;
};

} // namespace h2pool_core
