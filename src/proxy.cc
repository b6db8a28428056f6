#include "proxy.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "h2pool.h"
#include "url.h"

namespace h2pool_core {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string *out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size())
      return false;
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0)
      return false;
    out->push_back(char(hi * 16 + lo));
    i += 2;
  }
  return true;
}

int invalid(std::string *why, const char *reason) {
  if (why)
    *why = reason;
  return H2POOL_ERR_INVALID_ARGUMENT;
}

// Splits "host[:port]" or "[v6][:port]"; false if malformed.
bool split_host_port(std::string_view hp, std::string_view *host,
                     std::string_view *port, bool *bracketed) {
  *bracketed = false;
  *port = {};
  if (!hp.empty() && hp[0] == '[') {
    size_t close = hp.find(']');
    if (close == std::string_view::npos)
      return false;
    *host = hp.substr(1, close - 1);
    *bracketed = true;
    std::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':')
        return false;
      *port = rest.substr(1);
      if (port->empty())
        return false;
    }
    return true;
  }
  size_t colon = hp.rfind(':');
  if (colon != std::string_view::npos) {
    // Several colons without brackets: a bare IPv6 address, no port.
    if (hp.find(':') != colon) {
      *host = hp;
      return true;
    }
    *host = hp.substr(0, colon);
    *port = hp.substr(colon + 1);
    return !port->empty();
  }
  *host = hp;
  return true;
}

bool parse_address(const std::string &text, int *family, uint8_t *addr) {
  if (text.find('\0') != std::string::npos)
    return false; // inet_pton would read only up to it
  if (inet_pton(AF_INET, text.c_str(), addr) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), addr) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

bool prefix_matches(const uint8_t *a, const uint8_t *b, int bits) {
  int bytes = bits / 8;
  if (std::memcmp(a, b, size_t(bytes)) != 0)
    return false;
  int rest = bits % 8;
  if (rest == 0)
    return true;
  uint8_t mask = uint8_t(0xff << (8 - rest));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

// The first set, non-empty variable of `names`, else "".
std::string first_env(std::initializer_list<const char *> names) {
  for (const char *n : names)
    if (const char *v = std::getenv(n); v && *v)
      return v;
  return {};
}

} // namespace

int parse_proxy_url(std::string_view text, ProxyTarget *out, std::string *why) {
  // Percent-encoding is how a URL carries anything else.
  for (unsigned char c : text)
    if (c <= ' ' || c >= 0x7f)
      return invalid(why, "proxy URL has a space, control or non-ASCII byte");
  ProxyTarget t;
  std::string_view rest = text;
  size_t sep = rest.find("://");
  std::string scheme = "http";
  if (sep != std::string_view::npos) {
    scheme = ascii_lower(rest.substr(0, sep));
    rest = rest.substr(sep + 3);
  }
  if (scheme == "http") {
    t.kind = ProxyTarget::Kind::http;
    t.port = 1080;
  } else if (scheme == "https") {
    t.kind = ProxyTarget::Kind::https;
    t.port = 443;
  } else if (scheme == "socks5") {
    t.kind = ProxyTarget::Kind::socks5;
    t.port = 1080;
  } else if (scheme == "socks5h") {
    t.kind = ProxyTarget::Kind::socks5h;
    t.port = 1080;
  } else {
    return invalid(why, "proxy URL scheme must be http, https, socks5 or "
                        "socks5h");
  }
  if (!rest.empty() && rest.back() == '/')
    rest.remove_suffix(1);
  if (rest.find_first_of("/?#") != std::string_view::npos)
    return invalid(why, "proxy URL must not have a path, query or fragment");
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos
                                ? std::string_view()
                                : userinfo.substr(colon + 1);
    if (!percent_decode(user, &t.user) || !percent_decode(pass, &t.password))
      return invalid(why, "proxy URL has a bad percent-encoding in its "
                          "user name or password");
    t.has_credentials = true;
  }
  std::string_view host, port;
  bool bracketed = false;
  if (!split_host_port(rest, &host, &port, &bracketed))
    return invalid(why, "proxy URL has a malformed host or port");
  if (!port.empty() && !parse_port(port, &t.port))
    return invalid(why, "proxy URL port must be 1..65535");
  t.host = ascii_lower(host);
  int family = 0;
  uint8_t addr[16];
  t.host_is_ip = parse_address(t.host, &family, addr);
  if (bracketed && family != AF_INET6)
    return invalid(why, "proxy URL has a malformed IPv6 address");
  if (!t.host_is_ip && !is_host_name(t.host))
    return invalid(why, "proxy URL has a malformed host name");
  std::string shown = family == AF_INET6 ? "[" + t.host + "]" : t.host;
  t.name = scheme + "://" + shown + ":" + std::to_string(t.port);
  *out = std::move(t);
  return H2POOL_OK;
}

void NoProxy::parse(std::string_view list) {
  all_ = false;
  entries_.clear();
  size_t i = 0;
  while (i < list.size()) {
    size_t end = list.find_first_of(", \t", i);
    if (end == std::string_view::npos)
      end = list.size();
    std::string_view item = list.substr(i, end - i);
    i = end + 1;
    if (item.empty())
      continue;
    if (item == "*") {
      all_ = true;
      continue;
    }
    Entry e;
    std::string_view host = item, port;
    bool bracketed = false;
    // A CIDR's '/' comes before any port; "addr/bits" has no port form.
    size_t slash = item.find('/');
    if (slash == std::string_view::npos) {
      if (!split_host_port(item, &host, &port, &bracketed))
        continue;
      if (!port.empty() && !parse_port(port, &e.port))
        continue;
    }
    std::string name = ascii_lower(
        slash == std::string_view::npos ? host : item.substr(0, slash));
    if (parse_address(name, &e.family, e.addr)) {
      int max_bits = e.family == AF_INET ? 32 : 128;
      e.prefix = max_bits;
      if (slash != std::string_view::npos) {
        std::string_view bits = item.substr(slash + 1);
        int value = -1;
        auto [p, ec] =
            std::from_chars(bits.data(), bits.data() + bits.size(), value);
        if (ec != std::errc() || p != bits.data() + bits.size() || value < 0 ||
            value > max_bits)
          continue;
        e.prefix = value;
      }
      e.is_network = true;
      entries_.push_back(e);
      continue;
    }
    if (slash != std::string_view::npos)
      continue; // a network that is not an address
    while (!name.empty() && name.front() == '.')
      name.erase(0, 1);
    while (!name.empty() && name.back() == '.')
      name.pop_back();
    if (name.empty())
      continue;
    e.name = std::move(name);
    entries_.push_back(std::move(e));
  }
}

bool NoProxy::matches(const std::string &host, uint16_t port) const {
  if (all_)
    return true;
  if (entries_.empty())
    return false;
  std::string name = host;
  while (!name.empty() && name.back() == '.')
    name.pop_back();
  int family = 0;
  uint8_t addr[16];
  bool is_ip = parse_address(name, &family, addr);
  for (const Entry &e : entries_) {
    if (e.port != 0 && e.port != port)
      continue;
    if (e.is_network) {
      if (is_ip && family == e.family && prefix_matches(addr, e.addr, e.prefix))
        return true;
      continue;
    }
    if (is_ip)
      continue;
    if (name == e.name)
      return true;
    if (name.size() > e.name.size() &&
        name.compare(name.size() - e.name.size(), e.name.size(), e.name) == 0 &&
        name[name.size() - e.name.size() - 1] == '.')
      return true;
  }
  return false;
}

void capture_proxy_environment(Config &config) {
  if (!config.proxy_env)
    return;
  // Lower-case first, as libcurl reads them; ALL_PROXY for either scheme.
  std::string all = first_env({"all_proxy", "ALL_PROXY"});
  config.env_https_proxy = first_env({"https_proxy", "HTTPS_PROXY"});
  if (config.env_https_proxy.empty())
    config.env_https_proxy = all;
  config.env_http_proxy = first_env({"http_proxy", "HTTP_PROXY"});
  if (config.env_http_proxy.empty())
    config.env_http_proxy = all;
  config.env_no_proxy = first_env({"no_proxy", "NO_PROXY"});
}

int ProxyRules::init(const Config &config, std::string *why) {
  http_.reset();
  https_.reset();
  auto add = [&](const std::string &url, std::optional<ProxyTarget> *slot,
                 const char *source) {
    if (url.empty())
      return H2POOL_OK;
    ProxyTarget t;
    std::string reason;
    if (parse_proxy_url(url, &t, &reason) != H2POOL_OK) {
      if (why)
        *why = std::string(source) + ": " + reason;
      return H2POOL_ERR_INVALID_ARGUMENT;
    }
    if (config.proxy_credentials) {
      t.has_credentials = true;
      t.user = config.proxy_user;
      t.password = config.proxy_password;
    }
    if (t.socks() && (t.user.size() > 255 || t.password.size() > 255)) {
      if (why)
        *why = std::string(source) +
               ": SOCKS5 user names and passwords are at most 255 bytes "
               "(RFC 1929)";
      return H2POOL_ERR_INVALID_ARGUMENT;
    }
    *slot = std::move(t);
    return H2POOL_OK;
  };
  int rc;
  if (config.proxy_set) {
    if ((rc = add(config.proxy, &http_, "proxy")) != H2POOL_OK)
      return rc;
    https_ = http_;
  } else if (config.proxy_env) {
    if ((rc = add(config.env_http_proxy, &http_,
                  "proxy from http_proxy/ALL_PROXY")) != H2POOL_OK ||
        (rc = add(config.env_https_proxy, &https_,
                  "proxy from https_proxy/ALL_PROXY")) != H2POOL_OK)
      return rc;
  }
  if (config.noproxy_set)
    noproxy_.parse(config.noproxy);
  else if (config.proxy_env)
    noproxy_.parse(config.env_no_proxy);
  else
    noproxy_.parse({});
  return H2POOL_OK;
}

const ProxyTarget *ProxyRules::route(bool https, const std::string &host,
                                     uint16_t port) const {
  const std::optional<ProxyTarget> &p = https ? https_ : http_;
  if (!p || noproxy_.matches(host, port))
    return nullptr;
  return &*p;
}

} // namespace h2pool_core
