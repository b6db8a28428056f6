// The curl-named options that say how to reach servers, shared by the
// commands that fetch (get, bench): --resolve, --connect-to, --unix-socket,
// --abstract-unix-socket, --interface, --local-port, --dns-servers,
// --happy-eyeballs-timeout-ms, --keepalive-time, --no-keepalive.
#pragma once

#include <h2pool.h>

#include <cstdint>
#include <string>
#include <vector>

#include "args.h"

// The options' lines for a command's usage text (a string literal, to
// splice into one).
#define H2POOL_CLI_NETWORK_USAGE                                               \
  "      --resolve HOST:PORT:ADDR[,ADDR]  connect to ADDR for HOST:PORT,\n"    \
  "                              no lookup (repeatable)\n"                     \
  "      --connect-to H1:P1:H2:P2  connect to H2:P2 for H1:P1; empty\n"        \
  "                              parts match any / keep (repeatable)\n"        \
  "      --unix-socket PATH      connect through this Unix socket\n"           \
  "      --abstract-unix-socket NAME  ... or this abstract one (Linux)\n"      \
  "      --interface NAME|ADDR   bind to a device or a local address\n"        \
  "      --local-port N[-M]      bind to a local port in N..M\n"               \
  "      --dns-servers LIST      ADDR[:PORT],... instead of resolv.conf\n"     \
  "      --happy-eyeballs-timeout-ms N  start the next address after N ms\n"   \
  "                              (default 250; 0: one at a time)\n"            \
  "      --keepalive-time N      TCP keepalive probes after N s idle\n"        \
  "                              (default 60)\n"                               \
  "      --no-keepalive          no TCP keepalive\n"

namespace h2pool_cli {

struct NetworkOptions {
  std::vector<std::string> resolve;
  std::vector<std::string> connect_to;
  std::string unix_socket;
  std::string abstract_unix_socket;
  std::string interface; // a device name or a local IP address
  std::string local_port;
  std::string dns_servers;
  int64_t happy_eyeballs_ms = -1; // -1: the library's default
  // As curl: keepalive on, probes after 60 s idle, every 60 s.
  uint32_t keepalive_s = 60;

  // Consumes one network option at the cursor; false if it is not one.
  bool parse(ArgCursor &cur);
  // Sets them on `cfg`; throws UsageError naming the option whose value
  // the library refuses.
  void apply(h2pool_config *cfg) const;
};

} // namespace h2pool_cli
