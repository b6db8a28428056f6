// Getting a byte stream for a connection: apply the pool's overrides
// (--connect-to, --resolve, a Unix socket), resolve the host name (with a
// deadline), race its addresses as RFC 8305 (Happy Eyeballs v2) says, each
// with a connect timeout, and for https:// run the TLS handshake (with its
// own timeout) and read the protocol ALPN chose. TLS always names the
// URL's host, whatever the overrides connect to. It knows nothing of HTTP/2 or
// of the pool; what it produces is a connected Transport, or an error saying
// which step failed.
//
// Each step is a phase the owner is told about, so that the connection's
// state follows resolving -> connecting -> tls_handshaking without keeping
// flags of its own. Addresses are raced as Happy Eyeballs v2 does. Through
// a proxy it connects to the proxy instead, and once the TCP connection is
// up a ProxyTunnel opens the way to the origin (still in the connecting
// phase) before the origin's TLS handshake.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "handles.h"
#include "log.h"
#include "net_options.h"
#include "proxy_tunnel.h"
#include "resolver.h"
#include "tls.h"
#include "transport.h"

namespace h2pool_core {

// Where a TLS connection goes: the context, the name to send in SNI and to
// match the certificate against, and the endpoint's session cache (which
// also receives the sessions the server issues, for as long as the
// connection lives).
struct TlsTarget {
  const TlsContext *context = nullptr;
  std::string host;
  bool host_is_ip = false;
  TlsSessionCache *sessions = nullptr;
};

// What to connect to. `name` ("http://host:port") is used in messages.
struct ConnectTarget {
  std::string host;
  uint16_t port = 0;
  std::string name;
  const TlsTarget *tls = nullptr; // null: cleartext
  // An h2pool_http_version: what to offer in ALPN, and what to speak over
  // cleartext.
  int http_version = H2POOL_HTTP_VERSION_DEFAULT;
  // The proxy to tunnel through; null: connect to the origin directly.
  const ProxyTarget *proxy = nullptr;
  // For an https:// proxy: the TLS context to reach it with.
  const TlsContext *proxy_tls = nullptr;
};

struct ConnectSettings {
  uint32_t resolve_timeout_ms = 10000;
  uint32_t connect_timeout_ms = 10000; // per address
  uint32_t tls_handshake_timeout_ms = 10000;
  // Overrides, Unix socket, local binding, keepalive, attempt pacing; null:
  // the defaults. Must outlive the connector.
  const NetOptions *net = nullptr;
};

class ConnectorOwner {
public:
  enum class Phase { resolving, connecting, tls_handshaking };

  // The connector moved on to `phase`.
  virtual void on_connect_phase(Phase phase) = 0;
  // The TCP (or Unix socket) connection is up: to the origin, or to the
  // proxy, before the tunnel (which, as curl counts it, belongs to the
  // connect's aftermath, not to the connect).
  virtual void on_transport_connected() {}
  // The byte stream is up (over TLS: handshake done, `alpn` is the protocol
  // the server selected, empty if none). The connector is done; the owner
  // may destroy it inside this call.
  virtual void on_connected(std::unique_ptr<Transport> transport,
                            const std::string &alpn, bool tls_resumed) = 0;
  // No byte stream could be had; `why` names the step and the cause. The
  // owner may destroy the connector inside this call.
  virtual void on_connect_failed(const Error &why) = 0;

protected:
  ~ConnectorOwner() = default;
};

class Connector final : private ProxyTunnelOwner {
public:
  // `target` (and what it points to) and `resolver` must outlive the
  // connector.
  Connector(event_base *base, ConnectorOwner &owner, const Logger &log,
            const ConnectSettings &settings, uint64_t connection_id,
            const ConnectTarget &target, Resolver &resolver);
  ~Connector();
  Connector(const Connector &) = delete;
  Connector &operator=(const Connector &) = delete;

  // Resolves the host (IP literals need no lookup) and connects.
  void start();
  // Starts on an already connected stream socket, which it then owns: the
  // TLS handshake if the target is https://, else done at once. For tests
  // and fuzzers that drive a connection over a socketpair.
  void start_on_socket(evutil_socket_t fd);

  // One connection attempt to one address (several run at once).
  struct Attempt {
    Connector *connector;
    Address address;
    std::string name; // address.to_string()
    evutil_socket_t fd = -1;
    EventPtr event; // writable or timed out
    ~Attempt();
  };

  // Timer and socket entry points (called by the trampolines).
  void on_resolve_timeout();
  void on_attempt_event(Attempt *attempt, short what);
  void on_attempt_delay();
  void on_tls_event();
  void on_tls_timeout();

  // Orders addresses as RFC 8305 section 4 says: families interleaved,
  // IPv6 first, each family's own order kept.
  static std::vector<Address> interleave(std::vector<Address> addresses);

private:
  void on_resolved(const std::string &error, std::vector<Address> addresses);
  void start_connecting(std::vector<Address> addresses);
  // Starts attempts until one is under way (or connected, or none is
  // left); arms the delay timer for the next.
  void start_next_attempt();
  void attempt_failed(Attempt *attempt, const std::string &why, bool timed_out);
  void fail_if_exhausted();
  // The single point where a winning connected socket goes on (to TLS, or
  // to the owner).
  void on_tcp_connected(evutil_socket_t fd);
  // The byte stream to the origin is up (directly or through a proxy's
  // tunnel, `outer` then being the TLS stream to an https:// proxy): TLS
  // to an https:// origin, else done.
  void on_stream_to_origin(evutil_socket_t fd,
                           std::unique_ptr<Transport> outer);
  // ProxyTunnelOwner.
  void on_tunnel_ready(evutil_socket_t fd,
                       std::unique_ptr<Transport> outer) override;
  void on_tunnel_failed(const Error &why) override;
  void continue_handshake();
  // Tells the owner; nothing may touch `this` afterwards.
  void fail(const Error &why);
  void done(const std::string &alpn, bool resumed);

  event_base *base_;
  ConnectorOwner &owner_;
  const Logger &log_;
  ConnectSettings settings_;
  uint64_t id_;
  const ConnectTarget &target_;
  Resolver &resolver_;

  const NetOptions &net() const;

  // The origin's host and port after --connect-to: where TCP goes, or with
  // a proxy what the tunnel asks for.
  std::string connect_host_;
  uint16_t connect_port_ = 0;
  // Where the TCP connection goes: the proxy, if there is one, else
  // connect_host_:connect_port_. Overrides from --resolve apply to it, and
  // a Unix socket replaces it.
  std::string dial_host_;
  uint16_t dial_port_ = 0;
  EventPtr resolve_timer_;
  std::vector<Address> addresses_;
  size_t next_address_ = 0;
  std::vector<std::unique_ptr<Attempt>> attempts_; // under way
  EventPtr attempt_delay_timer_;
  // Why each address failed, for the message when all have (bounded).
  std::vector<std::string> failures_;
  size_t failures_dropped_ = 0;
  bool last_timed_out_ = false;

  std::unique_ptr<ProxyTunnel> tunnel_; // while it is being set up
  bool tunnel_started_ = false;
  std::unique_ptr<TlsTransport> tls_; // during the handshake
  EventPtr tls_read_event_;
  EventPtr tls_write_event_;
  EventPtr tls_timer_;
  // Expires with the connector, so a lookup answering after it has gone
  // (or after its deadline) finds out and drops the answer.
  std::shared_ptr<char> liveness_ = std::make_shared<char>();
};

} // namespace h2pool_core
