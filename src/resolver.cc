#include "resolver.h"
#include "socket_close.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <sys/un.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>

#include <ares.h>

#include "h2pool.h"
#include "loop.h"

namespace h2pool_core {

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (storage.ss_family == AF_INET) {
    auto sin = reinterpret_cast<const sockaddr_in *>(&storage);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    port = ntohs(sin->sin_port);
    return std::string(buf) + ':' + std::to_string(port);
  }
  if (storage.ss_family == AF_UNIX) {
    auto sun = reinterpret_cast<const sockaddr_un *>(&storage);
    size_t n = length > offsetof(sockaddr_un, sun_path)
                   ? length - offsetof(sockaddr_un, sun_path)
                   : 0;
    if (n > 0 && sun->sun_path[0] == '\0')
      return '@' + std::string(sun->sun_path + 1, n - 1);
    return std::string(sun->sun_path, strnlen(sun->sun_path, n));
  }
  if (storage.ss_family == AF_INET6) {
    auto sin6 = reinterpret_cast<const sockaddr_in6 *>(&storage);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    port = ntohs(sin6->sin6_port);
  }
  return '[' + std::string(buf) + "]:" + std::to_string(port);
}

bool parse_ip_literal(const std::string &host, uint16_t port, Address *out) {
  Address a;
  auto sin = reinterpret_cast<sockaddr_in *>(&a.storage);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    a.length = sizeof(sockaddr_in);
    if (out)
      *out = a;
    return true;
  }
  auto sin6 = reinterpret_cast<sockaddr_in6 *>(&a.storage);
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    a.length = sizeof(sockaddr_in6);
    if (out)
      *out = a;
    return true;
  }
  return false;
}

namespace {

void socket_state_cb(void *data, ares_socket_t fd, int readable, int writable) {
  static_cast<AresResolver *>(data)->on_socket_state(fd, readable != 0,
                                                     writable != 0);
}
void socket_event_cb(evutil_socket_t fd, short what, void *arg) {
  static_cast<AresResolver *>(arg)->on_socket_event(int(fd), what);
}
void timer_cb(evutil_socket_t, short, void *arg) {
  static_cast<AresResolver *>(arg)->on_timer();
}

std::once_flag g_ares_init_once;
int g_ares_init_status = ARES_SUCCESS;

} // namespace

struct AresResolver::Lookup {
  AresResolver *resolver;
  std::string host;
  std::vector<Waiter> waiters;
  std::chrono::steady_clock::time_point started;
};

namespace {

void answer_cb(void *arg, int status, int, ares_addrinfo *result) {
  auto lookup = static_cast<AresResolver::Lookup *>(arg);
  lookup->resolver->on_answer(lookup, status, result);
}

} // namespace

void AresChannelDeleter::operator()(ares_channeldata *channel) const {
  ares_destroy(channel);
}

AresResolver::AresResolver(Loop &loop, const ResolverSettings &settings)
    : loop_(loop), settings_(settings) {}

int AresResolver::create(Loop &loop, const ResolverSettings &settings,
                         std::unique_ptr<AresResolver> *out, std::string *why) {
  std::call_once(g_ares_init_once, [] {
    g_ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
  });
  if (g_ares_init_status != ARES_SUCCESS) {
    *why = std::string("cannot initialise c-ares: ") +
           ares_strerror(g_ares_init_status);
    return H2POOL_ERR_SYSTEM;
  }
  std::unique_ptr<AresResolver> r(new AresResolver(loop, settings));
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS |
             ARES_OPT_TRIES | ARES_OPT_SOCK_RCVBUF;
  opts.sock_state_cb = socket_state_cb;
  opts.sock_state_cb_data = r.get();
  // The hosts file, then DNS: what getaddrinfo() does with the usual
  // nsswitch.conf.
  char lookups[] = "fb";
  opts.lookups = lookups;
  opts.timeout = int(std::max<uint32_t>(settings.query_timeout_ms, 1));
  opts.tries = 2;
  // c-ares sends every query of a server over one UDP socket: when many
  // lookups start at once their answers arrive in a burst, which the
  // default receive buffer (about 200 answers) would partly drop, each
  // drop costing a retry timeout.
  opts.socket_receive_buffer_size = 1 << 20;
  ares_channel channel = nullptr;
  int rc = ares_init_options(&channel, &opts, mask);
  if (rc != ARES_SUCCESS) {
    *why = std::string("cannot set up the DNS resolver: ") + ares_strerror(rc);
    return rc == ARES_ENOMEM ? H2POOL_ERR_NOMEM : H2POOL_ERR_SYSTEM;
  }
  r->channel_.reset(channel);
  if (!settings.servers.empty()) {
    std::vector<ares_addr_port_node> nodes(settings.servers.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Address &a = settings.servers[i];
      ares_addr_port_node &n = nodes[i];
      n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      n.family = a.storage.ss_family;
      if (n.family == AF_INET) {
        auto sin = reinterpret_cast<const sockaddr_in *>(&a.storage);
        n.addr.addr4 = sin->sin_addr;
        n.udp_port = n.tcp_port = ntohs(sin->sin_port);
      } else {
        auto sin6 = reinterpret_cast<const sockaddr_in6 *>(&a.storage);
        memcpy(&n.addr.addr6, &sin6->sin6_addr, sizeof sin6->sin6_addr);
        n.udp_port = n.tcp_port = ntohs(sin6->sin6_port);
      }
    }
    rc = ares_set_servers_ports(r->channel_.get(), nodes.data());
    if (rc != ARES_SUCCESS) {
      *why = std::string("cannot use the DNS servers: ") + ares_strerror(rc);
      return H2POOL_ERR_SYSTEM;
    }
  }
  r->timer_.reset(evtimer_new(loop.base(), timer_cb, r.get()));
  if (!r->timer_)
    return H2POOL_ERR_NOMEM;
  *out = std::move(r);
  return H2POOL_OK;
}

AresResolver::~AresResolver() { shutdown(); }

void AresResolver::shutdown() {
  if (stopped_)
    return;
  stopped_ = true;
  // ares_destroy() calls back every query with ARES_EDESTRUCTION, which
  // on_answer() takes as "drop"; then the sockets are gone.
  channel_.reset();
  in_flight_.clear();
  sockets_.clear();
  timer_.reset();
  liveness_.reset();
}

void AresResolver::resolve(const std::string &host, uint16_t port,
                           Callback callback) {
  if (stopped_)
    return;
  std::string key = host;
  for (char &c : key)
    if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
  // RFC 6761 section 6.4: resolvers answer .invalid names themselves,
  // with NXDOMAIN, and never ask a DNS server about them.
  if (key == "invalid" ||
      (key.size() > 8 && key.compare(key.size() - 8, 8, ".invalid") == 0)) {
    std::vector<Waiter> one;
    one.push_back({port, std::move(callback), {}});
    deliver(std::move(one),
            "cannot resolve '" + key +
                "': .invalid names never exist (RFC 6761)",
            {});
    return;
  }
  auto cached = cache_.find(key);
  if (cached != cache_.end()) {
    if (cached->second.expires > std::chrono::steady_clock::now()) {
      std::vector<Waiter> one;
      one.push_back({port, std::move(callback), {}});
      deliver(std::move(one), cached->second.error, cached->second.addresses);
      return;
    }
    cache_.erase(cached);
  }
  auto it = in_flight_.find(key);
  if (it != in_flight_.end()) {
    // The same name is being asked: its answer serves both.
    it->second->waiters.push_back(
        {port, std::move(callback), std::chrono::steady_clock::now()});
    return;
  }
  std::vector<Waiter> waiters;
  waiters.push_back({port, std::move(callback), {}});
  start_lookup(key, std::move(waiters));
}

void AresResolver::start_lookup(const std::string &key,
                                std::vector<Waiter> waiters) {
  auto lookup = std::make_unique<Lookup>();
  lookup->resolver = this;
  lookup->host = key;
  lookup->started = std::chrono::steady_clock::now();
  lookup->waiters = std::move(waiters);
  for (Waiter &w : lookup->waiters)
    w.joined = lookup->started;
  Lookup *raw = lookup.get();
  in_flight_.emplace(key, std::move(lookup));
  ++lookups_started_;
  ares_addrinfo_hints hints{};
  // AF_UNSPEC: A and AAAA asked at once, for Happy Eyeballs.
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  // May answer at once (the hosts file); on_answer copes.
  ares_getaddrinfo(channel_.get(), key.c_str(), nullptr, &hints, answer_cb,
                   raw);
  rearm_timer();
}

void AresResolver::on_answer(Lookup *lookup, int status, void *result) {
  auto res = static_cast<ares_addrinfo *>(result);
  auto it = in_flight_.find(lookup->host);
  if (stopped_ || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED ||
      it == in_flight_.end() || it->second.get() != lookup) {
    if (res)
      ares_freeaddrinfo(res);
    return;
  }
  std::unique_ptr<Lookup> owned = std::move(it->second);
  in_flight_.erase(it);
  if (status == ARES_ETIMEOUT) {
    // The servers did not answer. Not an answer to pass on: each caller's
    // own deadline reports it (as H2POOL_ERR_RESOLVE_TIMEOUT). Callers who
    // joined after the first try went out have not had a full lookup of
    // their own: they get a fresh one (once; the rest are dropped).
    auto late_after =
        owned->started + std::chrono::milliseconds(settings_.query_timeout_ms);
    std::vector<Waiter> late;
    for (Waiter &w : owned->waiters)
      if (w.joined > late_after)
        late.push_back(std::move(w));
    if (res)
      ares_freeaddrinfo(res);
    if (!late.empty())
      start_lookup(owned->host, std::move(late));
    return;
  }
  CacheEntry entry;
  int min_ttl = INT32_MAX;
  if (status == ARES_SUCCESS && res) {
    for (ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
      if (n->ai_addrlen > sizeof(sockaddr_storage) ||
          (n->ai_family != AF_INET && n->ai_family != AF_INET6))
        continue;
      Address a;
      memcpy(&a.storage, n->ai_addr, n->ai_addrlen);
      a.length = n->ai_addrlen;
      // One entry per address: c-ares may list one per socket type.
      bool seen = false;
      for (const Address &b : entry.addresses)
        seen = seen || (b.length == a.length &&
                        memcmp(&b.storage, &a.storage, a.length) == 0);
      if (!seen)
        entry.addresses.push_back(a);
      min_ttl = std::min(min_ttl, std::max(n->ai_ttl, 0));
    }
    if (entry.addresses.empty())
      entry.error = "'" + owned->host + "' has no usable address";
  } else {
    entry.error =
        "cannot resolve '" + owned->host + "': " + ares_strerror(status);
  }
  if (res)
    ares_freeaddrinfo(res);
  uint64_t ttl_ms =
      entry.error.empty()
          ? std::min<uint64_t>(uint64_t(min_ttl) * 1000, settings_.max_ttl_ms)
          : settings_.negative_ttl_ms;
  // A failing server says nothing about the name: not remembered.
  bool cacheable = ttl_ms > 0 && status != ARES_ECONNREFUSED &&
                   status != ARES_ESERVFAIL && status != ARES_EREFUSED;
  deliver(std::move(owned->waiters), entry.error, entry.addresses);
  if (cacheable) {
    entry.expires =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(ttl_ms);
    remember(owned->host, std::move(entry));
  }
}

void AresResolver::remember(const std::string &host, CacheEntry entry) {
  if (settings_.max_cache_entries == 0)
    return;
  if (cache_.size() >= settings_.max_cache_entries) {
    // Full: drop what has expired, else the entry expiring first.
    auto now = std::chrono::steady_clock::now();
    for (auto it = cache_.begin(); it != cache_.end();)
      it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
    if (cache_.size() >= settings_.max_cache_entries) {
      auto first = std::min_element(
          cache_.begin(), cache_.end(), [](const auto &a, const auto &b) {
            return a.second.expires < b.second.expires;
          });
      cache_.erase(first);
    }
  }
  cache_[host] = std::move(entry);
}

void AresResolver::deliver(std::vector<Waiter> waiters,
                           const std::string &error,
                           const std::vector<Address> &addresses) {
  std::weak_ptr<char> alive = liveness_;
  loop_.post([alive, waiters = std::move(waiters), error, addresses]() {
    for (const Waiter &w : waiters) {
      if (alive.expired())
        return;
      std::vector<Address> with_port = addresses;
      for (Address &a : with_port) {
        if (a.storage.ss_family == AF_INET)
          reinterpret_cast<sockaddr_in *>(&a.storage)->sin_port = htons(w.port);
        else
          reinterpret_cast<sockaddr_in6 *>(&a.storage)->sin6_port =
              htons(w.port);
      }
      w.callback(error, std::move(with_port));
    }
  });
}

void AresResolver::on_socket_state(int fd, bool readable, bool writable) {
  if (!readable && !writable) {
    // c-ares says so right before it closes the socket.
    note_socket_closing(fd);
    sockets_.erase(fd);
    return;
  }
  short what =
      short(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
  EventPtr ev(event_new(loop_.base(), fd, what, socket_event_cb, this));
  if (ev)
    event_add(ev.get(), nullptr);
  // Replacing the old event frees it (event_free is allowed from its own
  // callback, which is where c-ares calls us from).
  sockets_[fd] = std::move(ev);
}

void AresResolver::on_socket_event(int fd, short what) {
  if (!channel_)
    return;
  ares_process_fd(channel_.get(), (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  rearm_timer();
}

void AresResolver::on_timer() {
  if (!channel_)
    return;
  ares_process_fd(channel_.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  rearm_timer();
}

void AresResolver::rearm_timer() {
  if (!channel_ || !timer_)
    return;
  timeval tv{};
  if (ares_timeout(channel_.get(), nullptr, &tv))
    evtimer_add(timer_.get(), &tv);
  else
    evtimer_del(timer_.get());
}

} // namespace h2pool_core
