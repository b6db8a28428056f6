// What a test can watch of the pool's connections, as it happens: the
// fault-schedule simulator checks from these events that reconnects follow
// the backoff. Called on the loop thread; must not block or call into the
// pool. Not part of the public API (see testing_hooks.h).
#pragma once

#include <cstdint>
#include <string>

namespace h2pool_core {

class PoolObserver {
public:
  enum class Event {
    opened, // the pool started a connection
    ready,  // it became ready for streams
    useful, // the first response began on it
    failed, // it closed before serving anything (a failed connection)
    closed  // it closed (after `failed`, if it failed)
  };
  virtual void on_connection_event(const std::string &endpoint,
                                   uint64_t connection_id, Event event) = 0;
  // The endpoint was unused long enough to be forgotten, failure streak
  // and all; a later request starts afresh.
  virtual void on_endpoint_forgotten(const std::string &endpoint) = 0;

protected:
  ~PoolObserver() = default;
};

} // namespace h2pool_core
