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

Resolver::~Resolver() { shutdown(); }

void Resolver::resolve(std::string host, uint16_t port, Callback callback) {
  std::lock_guard lock(mutex_);
  if (stopping_)
    return;
  if (!thread_.joinable())
    thread_ = std::thread([this] { run(); });
  jobs_.push_back({std::move(host), port, std::move(callback)});
  cv_.notify_one();
}

void Resolver::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

void Resolver::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_)
        return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo *res = nullptr;
    std::string port = std::to_string(job.port);
    int rc = getaddrinfo(job.host.c_str(), port.c_str(), &hints, &res);
    if (rc == EAI_BADFLAGS || (rc != 0 && rc != EAI_NONAME)) {
      // AI_ADDRCONFIG hides loopback-only hosts on machines without a
      // configured address; ask again without it before giving up.
      hints.ai_flags = 0;
      rc = getaddrinfo(job.host.c_str(), port.c_str(), &hints, &res);
    }
    std::string error;
    std::vector<Address> addresses;
    if (rc != 0) {
      error = "cannot resolve '" + job.host + "': " + gai_strerror(rc);
    } else {
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
        error = "'" + job.host + "' has no usable address";
    }
    // Dropped if the loop has closed: the pool is going away.
    loop_.post([cb = std::move(job.callback), error = std::move(error),
                addresses = std::move(addresses)]() mutable {
      cb(std::move(error), std::move(addresses));
    });
  }
}

} // namespace h2pool_core
