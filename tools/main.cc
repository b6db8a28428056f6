// h2pool: command-line client, benchmark and demo for libh2pool.
#include <h2pool.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "args.h"
#include "commands.h"
#include "common.h"

namespace {

using namespace h2pool_cli;

constexpr char kMainUsage[] =
    "Usage: h2pool COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "An HTTP/2 and HTTP/1.1 client built on libh2pool: https:// URLs over\n"
    "TLS (ALPN picks HTTP/2 or HTTP/1.1), http:// URLs in cleartext (HTTP/2\n"
    "with prior knowledge, or HTTP/1.1 with --http1.1).\n"
    "\n"
    "Commands:\n"
    "  get URL...     fetch URLs concurrently through one pool\n"
    "  bench URL      h2load-style load test through the public API\n"
    "  serve          run the embedded scriptable HTTP/2 test server\n"
    "  demo           multiplexing demo against the embedded test server\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help (or 'h2pool COMMAND --help')\n"
    "  --version      print the libh2pool version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

struct Command {
  std::string_view name;
  int (*run)(const Args &);
  const char *usage;
};

constexpr Command kCommands[] = {
    {"get", cmd_get, kGetUsage},
    {"bench", cmd_bench, kBenchUsage},
    {"serve", cmd_serve, kServeUsage},
    {"demo", cmd_demo, kDemoUsage},
};

int print_version() {
  const char *version = nullptr;
  uint32_t num = h2pool_version(&version);
  std::printf("h2pool %s\n", version ? version : "?");
  if ((num >> 16) != H2POOL_VERSION_MAJOR) {
    std::fprintf(stderr,
                 "h2pool: warning: built against libh2pool %s but running "
                 "with %s\n",
                 H2POOL_VERSION_STRING, version ? version : "?");
  }
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fputs(kMainUsage, stderr);
    return kExitUsage;
  }
  std::string_view first = argv[1];
  if (first == "-h" || first == "--help" || first == "help") {
    std::fputs(kMainUsage, stdout);
    return kExitOk;
  }
  if (first == "--version" || first == "-V") {
    return print_version();
  }
  const Command *cmd = nullptr;
  for (const Command &c : kCommands) {
    if (c.name == first) {
      cmd = &c;
    }
  }
  if (cmd == nullptr) {
    std::fprintf(stderr, "h2pool: unknown %s '%s'\n\n",
                 first.starts_with("-") ? "option" : "command", argv[1]);
    std::fputs(kMainUsage, stderr);
    return kExitUsage;
  }
  Args args(argv + 2, argv + argc);
  try {
    return cmd->run(args);
  } catch (const HelpRequested &) {
    std::fputs(cmd->usage, stdout);
    return kExitOk;
  } catch (const UsageError &e) {
    std::fprintf(stderr, "h2pool %s: %s\n\n", argv[1], e.what());
    std::fputs(cmd->usage, stderr);
    return kExitUsage;
  } catch (const ApiError &e) {
    std::fprintf(stderr, "h2pool: %s\n", e.what());
    return kExitFailure;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "h2pool: %s\n", e.what());
    return kExitFailure;
  }
}
