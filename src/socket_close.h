// Closing h2pool's sockets. An external pool (h2pool_create_external) tells
// its caller which descriptors to watch only at the end of each
// h2pool_socket_action() pass; a socket closed during the pass may have its
// number reused by the next socket opened in the same pass, and an epoll
// set would silently keep watching nothing. So every socket h2pool closes
// goes through close_socket(), which, while a pass runs on this thread,
// records the number: the caller is then told to drop it before it is
// reported again.
#pragma once

#include <vector>

namespace h2pool_core {

// Closes `fd` (ignored if negative), noting it for the pass running on this
// thread, if any.
void close_socket(int fd) noexcept;
// Notes that `fd` is about to be closed by a library of ours (c-ares).
void note_socket_closing(int fd) noexcept;

// While it lives, sockets closed on this thread are recorded in `sink`.
class ClosedSocketLog {
public:
  explicit ClosedSocketLog(std::vector<int> &sink) noexcept;
  ~ClosedSocketLog();
  ClosedSocketLog(const ClosedSocketLog &) = delete;
  ClosedSocketLog &operator=(const ClosedSocketLog &) = delete;

private:
  std::vector<int> *previous_;
};

} // namespace h2pool_core
