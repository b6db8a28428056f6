#include "net_args.h"

#include "common.h"

#include <arpa/inet.h>

namespace h2pool_cli {

namespace {

bool is_ip(const std::string &s) {
  unsigned char buf[16];
  std::string a = s;
  if (a.size() >= 2 && a.front() == '[' && a.back() == ']')
    a = a.substr(1, a.size() - 2);
  return inet_pton(AF_INET, a.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

void must(int rc, const char *option, const std::string &value,
          const char *expected) {
  if (rc == H2POOL_ERR_INVALID_ARGUMENT)
    throw UsageError(std::string(option) + ": cannot use '" + value + "'" +
                     (expected ? std::string(" (expected ") + expected + ")"
                               : std::string()));
  check(rc, option);
}

} // namespace

bool NetworkOptions::parse(ArgCursor &cur) {
  std::string v;
  if (cur.value_option("--resolve", "", v)) {
    resolve.push_back(v);
  } else if (cur.value_option("--connect-to", "", v)) {
    connect_to.push_back(v);
  } else if (cur.value_option("--unix-socket", "", v)) {
    unix_socket = v;
  } else if (cur.value_option("--abstract-unix-socket", "", v)) {
    abstract_unix_socket = v;
  } else if (cur.value_option("--interface", "", v)) {
    interface = v;
  } else if (cur.value_option("--local-port", "", v)) {
    local_port = v;
  } else if (cur.value_option("--dns-servers", "", v)) {
    dns_servers = v;
  } else if (cur.value_option("--happy-eyeballs-timeout-ms", "", v)) {
    happy_eyeballs_ms =
        int64_t(parse_uint(v, 0, 60000, "--happy-eyeballs-timeout-ms"));
  } else if (cur.value_option("--keepalive-time", "", v)) {
    keepalive_s = uint32_t(parse_uint(v, 1, 32767, "--keepalive-time"));
  } else if (cur.flag("--no-keepalive")) {
    keepalive_s = 0;
  } else {
    return false;
  }
  return true;
}

void NetworkOptions::apply(h2pool_config *cfg) const {
  for (const std::string &r : resolve)
    must(h2pool_config_add_resolve(cfg, r.c_str()), "--resolve", r,
         "HOST:PORT:ADDR[,ADDR]...");
  for (const std::string &c : connect_to)
    must(h2pool_config_add_connect_to(cfg, c.c_str()), "--connect-to", c,
         "HOST1:PORT1:HOST2:PORT2");
  if (!unix_socket.empty())
    must(h2pool_config_set_unix_socket(cfg, unix_socket.c_str()),
         "--unix-socket", unix_socket, "a path of at most 107 bytes");
  if (!abstract_unix_socket.empty())
    must(h2pool_config_set_abstract_unix_socket(cfg,
                                                abstract_unix_socket.c_str()),
         "--abstract-unix-socket", abstract_unix_socket,
         "a name of at most 107 bytes");
  if (!interface.empty()) {
    if (is_ip(interface))
      must(h2pool_config_set_local_address(cfg, interface.c_str()),
           "--interface", interface, nullptr);
    else
      must(h2pool_config_set_interface(cfg, interface.c_str()), "--interface",
           interface, "a device name shorter than 16 bytes");
  }
  if (!local_port.empty()) {
    size_t dash = local_port.find('-');
    uint64_t lo =
        parse_uint(local_port.substr(0, dash), 1, 65535, "--local-port");
    uint64_t hi = dash == std::string::npos
                      ? lo
                      : parse_uint(local_port.substr(dash + 1), lo, 65535,
                                   "--local-port (end of range)");
    must(h2pool_config_set_local_port_range(cfg, uint32_t(lo), uint32_t(hi)),
         "--local-port", local_port, "N or N-M");
  }
  if (!dns_servers.empty())
    must(h2pool_config_set_dns_servers(cfg, dns_servers.c_str()),
         "--dns-servers", dns_servers, "ADDR[:PORT],...");
  if (happy_eyeballs_ms >= 0)
    check(h2pool_config_set_happy_eyeballs_delay_ms(
              cfg, uint32_t(happy_eyeballs_ms)),
          "h2pool_config_set_happy_eyeballs_delay_ms");
  check(h2pool_config_set_tcp_keepalive(cfg, keepalive_s, keepalive_s, 0),
        "h2pool_config_set_tcp_keepalive");
}

} // namespace h2pool_cli
