#include "net_options.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "resolver.h"
#include "url.h"

namespace h2pool_core {
namespace {

// parse_port(), with "" read as 0 when `empty_ok`.
bool port_or_empty(const std::string &s, bool empty_ok, uint16_t *out) {
  if (s.empty()) {
    *out = 0;
    return empty_ok;
  }
  return parse_port(s, out);
}

// Splits "host:rest" where host may be "[v6]"; the brackets are removed.
// Returns false on an unclosed bracket or a missing ':'.
bool take_host(const std::string &s, size_t *pos, std::string *host) {
  size_t p = *pos;
  if (p < s.size() && s[p] == '[') {
    size_t close = s.find(']', p);
    if (close == std::string::npos || close + 1 >= s.size() ||
        s[close + 1] != ':')
      return false;
    *host = s.substr(p + 1, close - p - 1);
    *pos = close + 2;
    return true;
  }
  size_t colon = s.find(':', p);
  if (colon == std::string::npos)
    return false;
  *host = s.substr(p, colon - p);
  *pos = colon + 1;
  return true;
}

bool take_port(const std::string &s, size_t *pos, bool empty_ok,
               uint16_t *port) {
  size_t colon = s.find(':', *pos);
  if (colon == std::string::npos)
    return false;
  if (!port_or_empty(s.substr(*pos, colon - *pos), empty_ok, port))
    return false;
  *pos = colon + 1;
  return true;
}

bool valid_host(const std::string &h) {
  for (char c : h)
    if (c == '/' || c == ',' || c < 0x21)
      return false;
  return true;
}

} // namespace

bool parse_resolve_override(const std::string &text, ResolveOverride *out) {
  size_t pos = 0;
  ResolveOverride r;
  if (!take_host(text, &pos, &r.host) || r.host.empty() ||
      !valid_host(r.host) || !take_port(text, &pos, false, &r.port))
    return false;
  r.host = ascii_lower(r.host);
  std::string list = text.substr(pos);
  if (list.empty())
    return false;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string a = list.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    if (a.size() >= 2 && a.front() == '[' && a.back() == ']')
      a = a.substr(1, a.size() - 2);
    Address addr;
    if (!parse_ip_literal(a, r.port, &addr))
      return false;
    r.addresses.push_back(addr);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  *out = std::move(r);
  return true;
}

bool parse_connect_to(const std::string &text, ConnectTo *out) {
  size_t pos = 0;
  ConnectTo c;
  if (!take_host(text, &pos, &c.from_host) || !valid_host(c.from_host) ||
      !take_port(text, &pos, true, &c.from_port) ||
      !take_host(text, &pos, &c.to_host) || !valid_host(c.to_host))
    return false;
  if (!port_or_empty(text.substr(pos), true, &c.to_port))
    return false;
  c.from_host = ascii_lower(c.from_host);
  *out = std::move(c);
  return true;
}

bool parse_dns_servers(const std::string &text, std::vector<Address> *out) {
  std::vector<Address> servers;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    std::string host = item;
    uint16_t port = 53;
    if (!item.empty() && item[0] == '[') {
      size_t close = item.find(']');
      if (close == std::string::npos)
        return false;
      host = item.substr(1, close - 1);
      std::string rest = item.substr(close + 1);
      if (!rest.empty() &&
          (rest[0] != ':' || !port_or_empty(rest.substr(1), false, &port)))
        return false;
    } else if (std::count(item.begin(), item.end(), ':') == 1) {
      size_t colon = item.find(':');
      host = item.substr(0, colon);
      if (!port_or_empty(item.substr(colon + 1), false, &port))
        return false;
    }
    Address a;
    if (!parse_ip_literal(host, port, &a))
      return false;
    servers.push_back(a);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  *out = std::move(servers);
  return true;
}

bool make_unix_address(const std::string &path, bool abstract, Address *out) {
  Address a;
  auto sun = reinterpret_cast<sockaddr_un *>(&a.storage);
  size_t room = sizeof sun->sun_path - (abstract ? 1 : 1);
  if (path.empty() || path.size() > room ||
      path.find('\0') != std::string::npos)
    return false;
  sun->sun_family = AF_UNIX;
  if (abstract) {
    // The name is the bytes after a leading NUL, exactly as long as given.
    memcpy(sun->sun_path + 1, path.data(), path.size());
    a.length = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + path.size());
  } else {
    memcpy(sun->sun_path, path.data(), path.size());
    a.length = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  *out = a;
  return true;
}

void apply_connect_to(const NetOptions &net, std::string *host,
                      uint16_t *port) {
  std::string h = ascii_lower(*host);
  for (const ConnectTo &c : net.connect_to) {
    if ((!c.from_host.empty() && c.from_host != h) ||
        (c.from_port != 0 && c.from_port != *port))
      continue;
    if (!c.to_host.empty())
      *host = c.to_host;
    if (c.to_port != 0)
      *port = c.to_port;
    return;
  }
}

const std::vector<Address> *find_resolve_override(const NetOptions &net,
                                                  const std::string &host,
                                                  uint16_t port) {
  std::string h = ascii_lower(host);
  for (const ResolveOverride &r : net.resolve)
    if (r.host == h && r.port == port)
      return &r.addresses;
  return nullptr;
}

bool fixed_addresses(const NetOptions &net, const std::string &host,
                     uint16_t port, std::vector<Address> *out) {
  if (const std::vector<Address> *fixed =
          find_resolve_override(net, host, port)) {
    *out = *fixed;
    return true;
  }
  Address literal;
  if (!parse_ip_literal(host, port, &literal))
    return false;
  *out = {literal};
  return true;
}

std::string prepare_socket(int fd, int family, const NetOptions &net) {
  if (family == AF_UNIX)
    return std::string();
  if (!net.interface.empty() &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, net.interface.c_str(),
                 socklen_t(net.interface.size())) != 0)
    return "cannot bind to interface '" + net.interface +
           "': " + strerror(errno);
  if (net.keepalive_idle_s > 0) {
    int one = 1;
    int idle = int(net.keepalive_idle_s);
    int interval = int(net.keepalive_interval_s);
    int count = int(net.keepalive_count);
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        (interval > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval,
                                    sizeof interval) != 0) ||
        (count > 0 &&
         setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0))
      return std::string("cannot enable TCP keepalive: ") + strerror(errno);
  }
  bool want_address = net.local_address.length != 0;
  if (!want_address && net.local_port_min == 0)
    return std::string();
  if (want_address && net.local_address.storage.ss_family != family)
    return "local address " + net.local_address.to_string() +
           " is of another address family";
  Address local = net.local_address;
  if (!want_address) {
    local.storage.ss_family = sa_family_t(family);
    local.length =
        family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  }
  auto set_port = [&local](uint16_t p) {
    if (local.storage.ss_family == AF_INET6)
      reinterpret_cast<sockaddr_in6 *>(&local.storage)->sin6_port = htons(p);
    else
      reinterpret_cast<sockaddr_in *>(&local.storage)->sin_port = htons(p);
  };
  if (net.local_port_min == 0) {
    set_port(0);
    if (bind(fd, local.sa(), local.length) != 0)
      return "cannot bind to " + local.to_string() + ": " + strerror(errno);
    return std::string();
  }
  // As curl's --local-port: the first free port of the range.
  int last_errno = 0;
  for (uint32_t p = net.local_port_min; p <= net.local_port_max; ++p) {
    set_port(uint16_t(p));
    if (bind(fd, local.sa(), local.length) == 0)
      return std::string();
    last_errno = errno;
    if (last_errno != EADDRINUSE && last_errno != EACCES)
      break;
  }
  set_port(net.local_port_min);
  return "cannot bind to a local port in " +
         std::to_string(net.local_port_min) + "-" +
         std::to_string(net.local_port_max) + " (" + local.to_string() +
         "): " + strerror(last_errno);
}

} // namespace h2pool_core
