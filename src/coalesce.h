// Connection coalescing (RFC 9113 section 9.1.1, RFC 8336): what one
// HTTP/2 connection over TLS offers requests for other origins.
//
// A request for https://b:port may go on a connection opened for
// https://a:port when the server proved, in the handshake, that it holds a
// certificate valid for b, and either
//  - the server sent no ORIGIN frame, and b resolves (through the pool's
//    resolver and overrides) to the address the connection is connected
//    to, as browsers and OkHttp decide; or
//  - the server sent ORIGIN frames and b is in the origin set they built
//    (RFC 8336 section 2.3: the connection's own origin plus those
//    listed); DNS then need not agree.
// A server that answers 421 (Misdirected Request) for b takes it off the
// connection for good (excluded()).
//
// The pool decides everything else (same port, same TLS settings, no
// proxy, HTTP/2); this class holds the per-connection facts and answers
// the name questions.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/x509.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handles.h"
#include "net_options.h"
#include "resolver.h"

namespace h2pool_core {

struct X509Deleter {
  void operator()(X509 *x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

class CoalesceInfo {
public:
  // Bound of the origin set and of the excluded names: a server cannot make
  // a connection hold more than this.
  static constexpr size_t kMaxOrigins = 64;

  // The server's verified certificate (the caller's reference is taken);
  // without one the connection is never shared.
  void set_certificate(X509Ptr cert) { cert_ = std::move(cert); }
  bool has_certificate() const { return cert_ != nullptr; }
  // Whether the certificate is valid for `host` (a name, or an IP literal
  // without brackets), by the rules of the handshake's own check.
  bool covers(const std::string &host, bool host_is_ip) const;

  // An ORIGIN frame arrived on a connection to `own_host`:`own_port`:
  // from now on the connection serves exactly its origin set. Entries that
  // are not https origins are ignored (RFC 8336 section 2.2: the client
  // must tolerate them); past kMaxOrigins the rest are dropped.
  void on_origin_frame(const nghttp2_ext_origin &frame,
                       const std::string &own_host, uint16_t own_port);
  bool has_origin_set() const { return origin_frame_; }
  bool in_origin_set(const std::string &host, uint16_t port) const;

  // The server answered 421 for `host`: never again on this connection.
  void exclude(const std::string &host);
  bool excluded(const std::string &host) const;

  // The address the connection is connected to ("127.0.0.1", "::1") and
  // its port, to compare with what another name resolves to.
  void set_peer(std::string ip, uint16_t port) {
    peer_ip_ = std::move(ip);
    peer_port_ = port;
  }
  bool peer_in(const std::vector<Address> &addresses) const;

private:
  struct Origin {
    std::string host;
    uint16_t port;
  };
  void add_origin(std::string host, uint16_t port);

  X509Ptr cert_;
  bool origin_frame_ = false;
  std::vector<Origin> origins_;
  std::vector<std::string> excluded_;
  std::string peer_ip_;
  uint16_t peer_port_ = 0;
};

// Where an endpoint's host leads, looked up the way the connector would
// (--connect-to, then --resolve, an IP literal, else the resolver), to
// compare with the addresses of connections it might share. One per
// endpoint; the answer is reused for kMaxAgeMs.
class AddressLookup {
public:
  static constexpr uint32_t kMaxAgeMs = 60000;

  // Looks `host`:`port` up unless a lookup runs or a fresh answer is there.
  // Overrides and literals answer at once; a resolver's answer, or none
  // within `timeout_ms`, comes later on the loop thread, and then `done` is
  // called (never after the lookup is destroyed).
  void start(event_base *base, Resolver &resolver, const NetOptions &net,
             const std::string &host, uint16_t port, uint32_t timeout_ms,
             std::function<void()> done);
  bool running() const { return running_; }
  // An answer no older than kMaxAgeMs (empty addresses if it failed).
  bool fresh(event_base *base) const;
  const std::vector<Address> &addresses() const { return addresses_; }

private:
  void finish(std::vector<Address> addresses);

  std::vector<Address> addresses_;
  uint64_t answered_ms_ = 0;
  bool answered_ = false;
  bool running_ = false;
  event_base *base_ = nullptr;
  EventPtr timer_;
  std::function<void()> done_;
  // Expires with the lookup, so an answer after it has gone is dropped.
  std::shared_ptr<char> liveness_ = std::make_shared<char>();
};

// An address as "ip" (no port, IPv6 without brackets); empty for other
// families.
std::string address_ip(const Address &a, uint16_t *port);

} // namespace h2pool_core
