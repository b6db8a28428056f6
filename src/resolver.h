// Name resolution that never blocks the loop thread and never makes one
// endpoint wait for another's lookup.
//
// IP literals are parsed in place (parse_ip_literal). Names go to a
// Resolver: SystemResolver runs getaddrinfo() on a small pool of helper
// threads, so one slow name occupies one thread while other lookups carry
// on, and identical lookups in flight share one getaddrinfo() call. Results
// come back to the loop thread as posted tasks. getaddrinfo() cannot be
// cancelled, so the deadline of a lookup is kept by its caller (the
// connector), which drops a late answer.
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
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

  virtual ~Resolver() = default;

  // Loop thread. The callback runs later on the loop thread (never inside
  // this call), unless the resolver has been shut down by then, in which
  // case it is dropped.
  virtual void resolve(const std::string &host, uint16_t port,
                       Callback callback) = 0;
  // Stops delivering results and releases the resolver's threads. Called
  // from the thread that destroys the pool, after the loop has stopped.
  virtual void shutdown() = 0;
};

class SystemResolver final : public Resolver {
public:
  // Helper threads started on demand, at most this many at once: lookups
  // beyond it wait for a free thread.
  static constexpr size_t kMaxThreads = 8;

  explicit SystemResolver(Loop &loop) : loop_(loop) {}
  ~SystemResolver() override;
  SystemResolver(const SystemResolver &) = delete;
  SystemResolver &operator=(const SystemResolver &) = delete;

  void resolve(const std::string &host, uint16_t port,
               Callback callback) override;
  // Joins the helper threads; a getaddrinfo() in progress is waited for
  // (it cannot be interrupted), but no queued lookup is started.
  void shutdown() override;

private:
  using Key = std::pair<std::string, uint16_t>;
  void run();

  Loop &loop_;
  std::mutex mutex_;
  std::condition_variable cv_;
  // Lookups not yet started, and every lookup's waiting callbacks (both
  // queued and running ones), guarded by mutex_.
  std::deque<Key> queue_;
  std::map<Key, std::vector<Callback>> waiting_;
  size_t idle_threads_ = 0; // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::vector<std::thread> threads_;
};

} // namespace h2pool_core
