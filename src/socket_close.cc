#include "socket_close.h"

#include <unistd.h>

namespace h2pool_core {

namespace {
thread_local std::vector<int> *closed_sink = nullptr;
}

void note_socket_closing(int fd) noexcept {
  if (closed_sink == nullptr || fd < 0)
    return;
  try {
    closed_sink->push_back(fd);
  } catch (...) {
    // Out of memory: the reuse goes unnoticed, as it would without a log.
  }
}

void close_socket(int fd) noexcept {
  if (fd < 0)
    return;
  note_socket_closing(fd);
  ::close(fd);
}

ClosedSocketLog::ClosedSocketLog(std::vector<int> &sink) noexcept
    : previous_(closed_sink) {
  closed_sink = &sink;
}

ClosedSocketLog::~ClosedSocketLog() { closed_sink = previous_; }

} // namespace h2pool_core
