/* Compiled, never run: h2pool.h must be valid strict C99 on its own, with
 * -Wall -Wextra -pedantic -Werror (see CMakeLists.txt). The header comes
 * first so that a missing #include inside it shows. Nothing here refers to a
 * library symbol (sizeof does not evaluate), so the program needs no
 * libh2pool to link. */
#include "h2pool.h"

/* 0xMMmmpp leaves one byte each to minor and patch. C99 has no
 * _Static_assert: a negative array size fails instead. */
typedef char
    version_parts_fit[(H2POOL_VERSION_MINOR < 256 &&
                       H2POOL_VERSION_PATCH < 256 &&
                       (H2POOL_VERSION_NUM >> 16) == H2POOL_VERSION_MAJOR)
                          ? 1
                          : -1];

static void on_response(const h2pool_response *resp, const h2pool_error *err,
                        void *user_data) {
  (void)resp;
  (void)err;
  (void)user_data;
}

static void on_log(int level, const char *msg, void *user_data) {
  (void)level;
  (void)msg;
  (void)user_data;
}

int main(void) {
  h2pool_response_cb cb = on_response;
  h2pool_log_cb log_cb = on_log;
  h2pool_header header = {"accept", 6, "*/*", 3};
  h2pool_log_level level = H2POOL_LOG_DEBUG;
  h2pool_stat stat = H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION;
  int code = H2POOL_ERR_INTERNAL;
  const char *version = H2POOL_VERSION_STRING;
  size_t fn_sizes = sizeof(&h2pool_version) + sizeof(&h2pool_request) +
                    sizeof(&h2pool_stats_endpoint_value);
  version_parts_fit ok = {0};
  (void)cb;
  (void)log_cb;
  (void)header;
  (void)level;
  (void)stat;
  (void)version;
  (void)fn_sizes;
  (void)ok;
  return code == H2POOL_OK;
}
