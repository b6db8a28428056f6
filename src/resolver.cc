#include "resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

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

SystemResolver::SystemResolver(Loop &loop)
    : state_(std::make_shared<State>(loop)) {}

SystemResolver::~SystemResolver() { shutdown(); }

void SystemResolver::resolve(const std::string &host, uint16_t port,
                             Callback callback) {
  State &st = *state_;
  std::lock_guard lock(st.mutex);
  if (st.stopping)
    return;
  Key key(host, port);
  auto &callbacks = st.waiting[key];
  callbacks.push_back(std::move(callback));
  if (callbacks.size() > 1)
    return; // the same lookup is queued or running: its answer serves both
  st.queue.push_back(std::move(key));
  if (st.idle_threads > 0) {
    st.cv.notify_one();
    return;
  }
  // Every thread is busy (perhaps on a name whose servers do not answer):
  // another thread keeps this lookup from waiting behind them.
  if (st.threads < kMaxThreads) {
    std::thread(run, state_).detach();
    ++st.threads;
  }
}

void SystemResolver::shutdown() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->queue.clear();
    state_->waiting.clear();
  }
  state_->cv.notify_all();
}

namespace {

// getaddrinfo() for a stream socket; empty result with `*error` set on
// failure.
std::vector<Address> lookup(const std::string &host, uint16_t port,
                            std::string *error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo *res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc == EAI_BADFLAGS || (rc != 0 && rc != EAI_NONAME)) {
    // AI_ADDRCONFIG hides loopback-only hosts on machines without a
    // configured address; ask again without it before giving up.
    hints.ai_flags = 0;
    rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  }
  std::vector<Address> addresses;
  if (rc != 0) {
    *error = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return addresses;
  }
  for (addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage))
      continue;
    Address a;
    memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    addresses.push_back(a);
  }
  freeaddrinfo(res);
  if (addresses.empty())
    *error = "'" + host + "' has no usable address";
  return addresses;
}

} // namespace

void SystemResolver::run(std::shared_ptr<State> state) {
  State &st = *state;
  std::unique_lock lock(st.mutex);
  for (;;) {
    ++st.idle_threads;
    st.cv.wait(lock, [&] { return st.stopping || !st.queue.empty(); });
    --st.idle_threads;
    if (st.stopping)
      break;
    Key key = std::move(st.queue.front());
    st.queue.pop_front();
    lock.unlock();
    std::string error;
    std::vector<Address> addresses = lookup(key.first, key.second, &error);
    lock.lock();
    if (st.stopping)
      break;
    auto it = st.waiting.find(key);
    if (it == st.waiting.end())
      continue;
    std::vector<Callback> callbacks = std::move(it->second);
    st.waiting.erase(it);
    // Under our lock, so that shutdown() (after which the loop may be gone)
    // cannot come between the check above and the post. Posting takes the
    // loop's lock, which never waits for ours.
    st.loop.post([callbacks = std::move(callbacks), error = std::move(error),
                  addresses = std::move(addresses)]() mutable {
      for (auto &cb : callbacks)
        cb(error, addresses);
    });
  }
  --st.threads;
}

} // namespace h2pool_core
