// Compiled, never run: h2pool.h must be usable from C++ (extern "C", no C-only
// constructs) with -Wall -Wextra -pedantic -Werror. Built as C++11 and as the
// project's C++20 (see CMakeLists.txt). Refers to no library symbol.
#include "h2pool.h"

namespace {

// 0xMMmmpp leaves one byte each to minor and patch.
static_assert(H2POOL_VERSION_MINOR < 256 && H2POOL_VERSION_PATCH < 256 &&
                  (H2POOL_VERSION_NUM >> 16) == H2POOL_VERSION_MAJOR,
              "H2POOL_VERSION_NUM cannot hold the version");

void on_response(const h2pool_response *, const h2pool_error *, void *) {}

} // namespace

int main() {
  h2pool_response_cb cb = on_response;
  h2pool_header header = {"accept", 6, "*/*", 3};
  int code = H2POOL_ERR_INTERNAL;
  h2pool_stat stat = H2POOL_STAT_CONNECTIONS_OPEN;
  // Function types must have C language linkage and the declared types.
  uint32_t (*version)(const char **) = nullptr;
  static_assert(sizeof(version == &h2pool_version) == sizeof(bool), "");
  (void)cb;
  (void)header;
  (void)stat;
  return code == H2POOL_OK ? 1 : 0;
}
