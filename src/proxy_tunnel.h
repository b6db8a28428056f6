// A tunnel to an origin through a proxy, set up on a socket already
// connected to the proxy: TLS to an https:// proxy (its certificate checked
// against its own name, ALPN http/1.1), then HTTP CONNECT (RFC 9110 section
// 9.3.6), or the SOCKS5 exchange (RFC 1928, with RFC 1929 username and
// password). Event-driven on the connection's loop; bounded by one timeout.
//
// It reads exactly the proxy's own reply and nothing of what follows: an
// origin speaking first (an h2c server's SETTINGS) may send bytes right
// behind the proxy's reply, and those stay queued for the session.
//
// Through a proxy every connection is a tunnel, http:// included: an HTTP/2
// connection cannot pass a forwarding HTTP/1.1 proxy any other way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "handles.h"
#include "log.h"
#include "proxy.h"
#include "resolver.h"
#include "tls.h"
#include "transport.h"

namespace h2pool_core {

class ProxyTunnelOwner {
public:
  // The tunnel is up. Over an https:// proxy `outer` is the TLS stream to
  // the proxy, which now carries the origin's bytes; otherwise `outer` is
  // null and the socket `fd` carries them. The owner takes both. The tunnel
  // is done; the owner may destroy it inside this call.
  virtual void on_tunnel_ready(evutil_socket_t fd,
                               std::unique_ptr<Transport> outer) = 0;
  // No tunnel; `why` says what the proxy did. The owner may destroy the
  // tunnel inside this call.
  virtual void on_tunnel_failed(const Error &why) = 0;

protected:
  ~ProxyTunnelOwner() = default;
};

class ProxyTunnel {
public:
  // `proxy`, `resolver` and `tls` (needed for an https:// proxy) must
  // outlive the tunnel.
  ProxyTunnel(event_base *base, ProxyTunnelOwner &owner, const Logger &log,
              uint64_t connection_id, const ProxyTarget &proxy,
              std::string origin_host, uint16_t origin_port, Resolver &resolver,
              const TlsContext *tls, uint32_t timeout_ms);
  ~ProxyTunnel();
  ProxyTunnel(const ProxyTunnel &) = delete;
  ProxyTunnel &operator=(const ProxyTunnel &) = delete;

  // Takes the connected socket and starts.
  void start(evutil_socket_t fd);

  // Event entry points (called by the trampolines).
  void on_io();
  void on_timeout();

private:
  enum class Step {
    proxy_tls,        // TLS handshake with an https:// proxy
    resolving,        // socks5://: looking up the origin ourselves
    sending,          // writing `out_`, then reading the next reply
    http_reply,       // the CONNECT response's head
    socks_method,     // the server's choice of authentication method
    socks_auth,       // the RFC 1929 verdict
    socks_reply_head, // VER REP RSV ATYP (+ the name length for a name)
    socks_reply_rest, // the bound address and port
  };

  void advance();
  // Steps that read: ok to go on, false to wait (or after fail()).
  bool read_http_reply();
  bool read_exact(size_t n);
  void send_connect_request();
  void send_socks_greeting();
  void send_socks_request(const Address *resolved);
  // Authentication is over: sends the CONNECT request (true), or first
  // resolves the origin for a socks5:// proxy (false: wait).
  bool socks_authenticated();
  void on_origin_resolved(const std::string &error,
                          std::vector<Address> addresses);
  void send(Step next);
  void wait(Transport::Status st);
  // I/O could not go on with `st`: waits for the socket, or fails (the
  // proxy closed, or `doing` "reading from"/"writing to" it failed).
  void stopped(Transport::Status st, const char *doing);
  // Parses the CONNECT response head (complete in `in_`).
  void finish_http_reply();
  // Tells the owner; nothing may touch `this` afterwards.
  void fail(int code, const std::string &message);
  void done();
  // "host:port" of the origin ("[v6]:port"), as CONNECT names it.
  std::string origin() const;
  // "tunnel to host:port through proxy http://...", for messages.
  std::string what() const;

  event_base *base_;
  ProxyTunnelOwner &owner_;
  const Logger &log_;
  uint64_t id_;
  const ProxyTarget &proxy_;
  std::string origin_host_;
  uint16_t origin_port_;
  Resolver &resolver_;
  const TlsContext *tls_;
  uint32_t timeout_ms_;

  Step step_ = Step::sending;
  Step after_send_ = Step::http_reply;
  std::unique_ptr<Transport> io_; // plain socket, or TLS to the proxy
  EventPtr read_event_;
  EventPtr write_event_;
  EventPtr timer_;
  OutputBuffer out_;
  std::string in_;
  size_t need_ = 0; // bytes socks_reply_rest waits for
  std::shared_ptr<char> liveness_ = std::make_shared<char>();
};

} // namespace h2pool_core
