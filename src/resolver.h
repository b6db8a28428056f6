// Name resolution that never blocks the loop thread and never makes one
// endpoint wait for another's lookup.
//
// IP literals are parsed in place (parse_ip_literal). Names go to a
// Resolver: AresResolver (below) in the library, scripted ones in tests
// (testing_hooks.h). The deadline of a lookup is kept by its caller (the
// connector), which drops a late answer.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "handles.h"

struct ares_channeldata; // c-ares's channel, kept out of this header

namespace h2pool_core {

class Loop;

struct AresChannelDeleter {
  void operator()(ares_channeldata *channel) const;
};
using AresChannelPtr = std::unique_ptr<ares_channeldata, AresChannelDeleter>;

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr *sa() const {
    return reinterpret_cast<const sockaddr *>(&storage);
  }
  // "127.0.0.1:80", "[::1]:80", "/path" or "@abstract", for messages.
  std::string to_string() const;
};

// True if `host` is an IPv4 or IPv6 literal (without brackets); fills `out`
// (if not null) with the address and `port`.
bool parse_ip_literal(const std::string &host, uint16_t port, Address *out);

class Resolver {
public:
  // Runs on the loop thread. `error` is empty on success, otherwise a
  // message; `addresses` then is empty.
  using Callback =
      std::function<void(std::string error, std::vector<Address> addresses)>;

  virtual ~Resolver() = default;

  // Loop thread. The callback runs later on the loop thread (never inside
  // this call), unless the resolver has been shut down by then, in which
  // case it is dropped. A lookup whose DNS servers never answer may never
  // call back: the caller keeps a deadline of its own.
  virtual void resolve(const std::string &host, uint16_t port,
                       Callback callback) = 0;
  // Stops delivering results and releases what the resolver holds. Called
  // from the thread that destroys the pool, after the loop has stopped.
  virtual void shutdown() = 0;
};

// Settings of AresResolver.
struct ResolverSettings {
  // DNS servers to ask; empty: those of /etc/resolv.conf.
  std::vector<Address> servers;
  // Time c-ares waits for one server's answer before asking again (it
  // asks each server up to twice, waiting twice as long the second time).
  // The deadline of a whole lookup is kept by its caller, which drops a
  // late answer; a lookup that times out calls nobody back.
  uint32_t query_timeout_ms = 3000;
  // Answers kept, each for its TTL but at most max_ttl_ms; negative
  // answers (NXDOMAIN, no address) at most negative_ttl_ms, so a name
  // that comes into existence is seen soon.
  size_t max_cache_entries = 512;
  uint32_t max_ttl_ms = 60000;
  uint32_t negative_ttl_ms = 1000;
};

// c-ares on the pool's loop thread: its sockets are watched by the pool's
// event_base, so a lookup costs a few datagrams and no thread, and any
// number run at once. c-ares was chosen over libevent's evdns because it
// is what curl, gRPC and Node resolve with (so it behaves as users expect:
// /etc/hosts first, then DNS, search domains and ndots from resolv.conf),
// asks A and AAAA in parallel in one ares_getaddrinfo(), and reports the
// TTL of each address, which evdns's evdns_getaddrinfo() does not. Cost
// does not decide between them: bench/run_dns.sh (1000 distinct names at
// once against dnsmasq) measured 36-38 us of CPU per A+AAAA lookup for
// c-ares and 31-33 us for evdns, the same wall time for both (see the
// README's Building section).
//
// Identical lookups in flight share one query; answers are cached by host
// name (not port) for their TTL, within ResolverSettings' bounds.
class AresResolver final : public Resolver {
public:
  // Loop thread or before the loop starts. H2POOL_OK, or an error code with
  // `*why` set.
  static int create(Loop &loop, const ResolverSettings &settings,
                    std::unique_ptr<AresResolver> *out, std::string *why);
  ~AresResolver() override;
  AresResolver(const AresResolver &) = delete;
  AresResolver &operator=(const AresResolver &) = delete;

  void resolve(const std::string &host, uint16_t port,
               Callback callback) override;
  // Drops every waiting callback and cancels the queries. The loop must
  // not be running any more (or this must be the loop thread).
  void shutdown() override;

  // Lookups sent to c-ares so far (cache hits and shared lookups not
  // counted); for tests.
  uint64_t lookups_started() const { return lookups_started_; }

  // Trampoline entry points.
  void on_socket_state(int fd, bool readable, bool writable);
  void on_socket_event(int fd, short what);
  void on_timer();
  struct Lookup;
  void on_answer(Lookup *lookup, int status, void *result);

private:
  AresResolver(Loop &loop, const ResolverSettings &settings);
  struct Waiter {
    uint16_t port;
    Callback callback;
    std::chrono::steady_clock::time_point joined;
  };
  struct CacheEntry {
    std::vector<Address> addresses; // port 0
    std::string error;
    std::chrono::steady_clock::time_point expires;
  };
  void start_lookup(const std::string &key, std::vector<Waiter> waiters);
  void rearm_timer();
  void remember(const std::string &host, CacheEntry entry);
  // Hands the answer to each waiter from a posted task, never from inside
  // c-ares or resolve().
  void deliver(std::vector<Waiter> waiters, const std::string &error,
               const std::vector<Address> &addresses);

  Loop &loop_;
  ResolverSettings settings_;
  AresChannelPtr channel_;
  std::map<int, EventPtr> sockets_;
  EventPtr timer_;
  std::map<std::string, std::unique_ptr<Lookup>> in_flight_;
  std::map<std::string, CacheEntry> cache_;
  uint64_t lookups_started_ = 0;
  bool stopped_ = false;
  // Expires with the resolver: posted deliveries check it.
  std::shared_ptr<char> liveness_ = std::make_shared<char>();
};

} // namespace h2pool_core
