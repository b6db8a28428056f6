// Name resolution that never blocks the loop thread: IP literals are parsed
// in place, names go to getaddrinfo() on a helper thread whose results come
// back to the loop as posted tasks.
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace h2pool_core {

class Loop;

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr *sa() const {
    return reinterpret_cast<const sockaddr *>(&storage);
  }
  // "127.0.0.1:80" or "[::1]:80", for messages.
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

  explicit Resolver(Loop &loop) : loop_(loop) {}
  ~Resolver();
  Resolver(const Resolver &) = delete;
  Resolver &operator=(const Resolver &) = delete;

  // Loop thread. The callback runs later on the loop thread, unless the loop
  // has been closed by then, in which case it is dropped.
  void resolve(std::string host, uint16_t port, Callback callback);

  // Stops the helper thread, waiting for a lookup in progress to finish.
  void shutdown();

private:
  struct Job {
    std::string host;
    uint16_t port;
    Callback callback;
  };
  void run();

  Loop &loop_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // guarded by mutex_
  bool stopping_ = false; // guarded by mutex_
  std::thread thread_;    // started on first use
};

} // namespace h2pool_core
