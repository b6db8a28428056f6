#include "coalesce.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "h2pool.h"
#include "tls.h"
#include "url.h"

namespace h2pool_core {

bool CoalesceInfo::covers(const std::string &host, bool host_is_ip) const {
  return cert_ && certificate_covers(cert_.get(), host, host_is_ip);
}

void CoalesceInfo::add_origin(std::string host, uint16_t port) {
  for (const Origin &o : origins_)
    if (o.port == port && o.host == host)
      return;
  if (origins_.size() < kMaxOrigins)
    origins_.push_back({std::move(host), port});
}

void CoalesceInfo::on_origin_frame(const nghttp2_ext_origin &frame,
                                   const std::string &own_host,
                                   uint16_t own_port) {
  // RFC 8336 section 2.3: the set starts as the connection's own origin.
  if (!origin_frame_) {
    origin_frame_ = true;
    add_origin(own_host, own_port);
  }
  for (size_t i = 0; i < frame.nov; ++i) {
    // An ASCII serialisation ("https://host[:port]"); parse_url also
    // lower-cases the host and fills in the default port.
    std::string text(reinterpret_cast<const char *>(frame.ov[i].origin),
                     frame.ov[i].origin_len);
    Url u;
    if (parse_url(text, &u, nullptr) != H2POOL_OK ||
        u.scheme != Scheme::https || u.path != "/")
      continue;
    add_origin(std::string(u.host()), u.port);
  }
}

bool CoalesceInfo::in_origin_set(const std::string &host, uint16_t port) const {
  return std::any_of(origins_.begin(), origins_.end(), [&](const Origin &o) {
    return o.port == port && o.host == host;
  });
}

void CoalesceInfo::exclude(const std::string &host) {
  if (!excluded(host) && excluded_.size() < kMaxOrigins)
    excluded_.push_back(host);
}

bool CoalesceInfo::excluded(const std::string &host) const {
  return std::find(excluded_.begin(), excluded_.end(), host) != excluded_.end();
}

bool CoalesceInfo::peer_in(const std::vector<Address> &addresses) const {
  if (peer_ip_.empty())
    return false;
  return std::any_of(addresses.begin(), addresses.end(), [&](const Address &a) {
    uint16_t port = 0;
    return address_ip(a, &port) == peer_ip_ && port == peer_port_;
  });
}

void AddressLookup::start(event_base *base, Resolver &resolver,
                          const NetOptions &net, const std::string &host,
                          uint16_t port, uint32_t timeout_ms,
                          std::function<void()> done) {
  if (running_ || fresh(base))
    return;
  base_ = base;
  std::string to_host = host;
  uint16_t to_port = port;
  apply_connect_to(net, &to_host, &to_port);
  std::vector<Address> fixed;
  if (fixed_addresses(net, to_host, to_port, &fixed)) {
    finish(std::move(fixed));
    return;
  }
  running_ = true;
  done_ = std::move(done);
  timer_.reset(evtimer_new(
      base,
      [](evutil_socket_t, short, void *arg) {
        auto self = static_cast<AddressLookup *>(arg);
        self->finish({});
        if (self->done_)
          self->done_();
      },
      this));
  // A resolver may never answer: the lookup ends by its deadline anyway.
  arm_timer(timer_, timeout_ms ? timeout_ms : 10000);
  std::weak_ptr<char> alive = liveness_;
  resolver.resolve(
      to_host, to_port,
      [this, alive](const std::string &error, std::vector<Address> addresses) {
        if (alive.expired() || !running_)
          return; // gone, or its deadline passed
        finish(error.empty() ? std::move(addresses) : std::vector<Address>{});
        if (done_)
          done_();
      });
}

bool AddressLookup::fresh(event_base *base) const {
  return answered_ && loop_now_ms(base) - answered_ms_ < kMaxAgeMs;
}

void AddressLookup::finish(std::vector<Address> addresses) {
  running_ = false;
  timer_.reset();
  addresses_ = std::move(addresses);
  answered_ = true;
  answered_ms_ = loop_now_ms(base_);
}

std::string address_ip(const Address &a, uint16_t *port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.storage.ss_family == AF_INET) {
    auto sin = reinterpret_cast<const sockaddr_in *>(&a.storage);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    *port = ntohs(sin->sin_port);
  } else if (a.storage.ss_family == AF_INET6) {
    auto sin6 = reinterpret_cast<const sockaddr_in6 *>(&a.storage);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    *port = ntohs(sin6->sin6_port);
  }
  return buf;
}

} // namespace h2pool_core
