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
#include <memory>
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

  explicit SystemResolver(Loop &loop);
  ~SystemResolver() override;
  SystemResolver(const SystemResolver &) = delete;
  SystemResolver &operator=(const SystemResolver &) = delete;

  void resolve(const std::string &host, uint16_t port,
               Callback callback) override;
  // Never waits: a getaddrinfo() in progress cannot be interrupted, so its
  // thread is left to finish on its own and drop the answer (it holds the
  // state it needs), and no queued lookup is started.
  void shutdown() override;

private:
  using Key = std::pair<std::string, uint16_t>;
  // Shared with the helper threads, which may outlive the resolver.
  struct State {
    explicit State(Loop &l) : loop(l) {}
    Loop &loop; // used only while !stopping, under mutex
    std::mutex mutex;
    std::condition_variable cv;
    // Lookups not yet started, and every lookup's waiting callbacks (of
    // queued and running ones alike).
    std::deque<Key> queue;
    std::map<Key, std::vector<Callback>> waiting;
    size_t threads = 0;
    size_t idle_threads = 0;
    bool stopping = false;
  };
  static void run(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
};

} // namespace h2pool_core
