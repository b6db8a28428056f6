#include "log.h"
#include "callback_scope.h"

#include <cstdarg>
#include <cstdio>

namespace h2pool_core {

void Logger::log(int level, const char *fmt, ...) const {
  if (!enabled(level))
    return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  CallbackScope in_callback;
  cb_(level, buf, user_data_);
}

} // namespace h2pool_core
