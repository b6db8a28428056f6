// Routes messages to the log callback set on the config, filtered by level.
#pragma once

#include "h2pool.h"

namespace h2pool_core {

class Logger {
public:
  Logger(h2pool_log_cb cb, int level, void *user_data)
      : cb_(cb), level_(cb ? level : H2POOL_LOG_NONE), user_data_(user_data) {}

  // Cheap enough for hot paths: callers test this before formatting.
  bool enabled(int level) const { return level <= level_; }

  void log(int level, const char *fmt, ...) const
      __attribute__((format(printf, 3, 4)));

private:
  h2pool_log_cb cb_;
  int level_;
  void *user_data_;
};

} // namespace h2pool_core

#define H2POOL_LOG(logger, level, ...)                                         \
  do {                                                                         \
    if ((logger).enabled(level))                                               \
      (logger).log(level, __VA_ARGS__);                                        \
  } while (0)
