// How a pool reaches its servers, beyond the URL: name overrides (curl's
// --resolve and --connect-to), a Unix socket instead of TCP, the local end
// of the TCP connection, keepalive and Happy Eyeballs pacing. Parsed and
// checked when set, so a bad value fails at its setter; the connector only
// reads them.
//
// Overrides belong to the pool, so every endpoint (keyed by origin) of a
// pool sees the same ones: two origins never share a connection whatever
// their overrides say, and one origin always connects the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "resolver.h"

namespace h2pool_core {

// "host:port:addr[,addr]": requests to host:port connect to these
// addresses, without a lookup.
struct ResolveOverride {
  std::string host; // lower case
  uint16_t port = 0;
  std::vector<Address> addresses; // ports already set to `port`
};

// "host1:port1:host2:port2": requests to host1:port1 connect to
// host2:port2 instead. An empty host1 or port1 (0) matches any; an empty
// host2 or port2 (0) keeps the original.
struct ConnectTo {
  std::string from_host; // lower case
  uint16_t from_port = 0;
  std::string to_host;
  uint16_t to_port = 0;
};

struct NetOptions {
  std::vector<ResolveOverride> resolve;
  std::vector<ConnectTo> connect_to;
  // AF_UNIX address every connection goes to instead of TCP, if set
  // (length 0: none).
  Address unix_socket;
  // Local end of TCP connections: an address to bind (length 0: any),
  // a port range to bind from (0, 0: any) and a device (SO_BINDTODEVICE).
  Address local_address;
  uint16_t local_port_min = 0;
  uint16_t local_port_max = 0;
  std::string interface;
  // TCP keepalive; idle 0: off (the kernel default).
  uint32_t keepalive_idle_s = 0;
  uint32_t keepalive_interval_s = 0;
  uint32_t keepalive_count = 0;
  // RFC 8305 "Connection Attempt Delay"; 0: one address at a time.
  uint32_t happy_eyeballs_delay_ms = 250;
};

// Parsers for the setters; each returns false on bad syntax.
bool parse_resolve_override(const std::string &text, ResolveOverride *out);
bool parse_connect_to(const std::string &text, ConnectTo *out);
// "addr[:port],...", IPv6 in brackets when a port is given; port 53 if
// none.
bool parse_dns_servers(const std::string &text, std::vector<Address> *out);
// A Unix socket address for `path`; `abstract`: Linux abstract namespace
// (no file; `path` is the name without the leading NUL).
bool make_unix_address(const std::string &path, bool abstract, Address *out);

// Where a connection to host:port goes after --connect-to rules (first
// match wins, as in curl).
void apply_connect_to(const NetOptions &net, std::string *host, uint16_t *port);
// The --resolve addresses for host:port, or null.
const std::vector<Address> *find_resolve_override(const NetOptions &net,
                                                  const std::string &host,
                                                  uint16_t port);
// The addresses host:port has without asking a resolver: its --resolve
// override, else the host itself when it is an IP literal. False if
// neither applies (a name to look up).
bool fixed_addresses(const NetOptions &net, const std::string &host,
                     uint16_t port, std::vector<Address> *out);

// Socket setup before connect(): local binding and keepalive. Returns an
// empty string, or why it failed.
std::string prepare_socket(int fd, int family, const NetOptions &net);

} // namespace h2pool_core
