// h2pool serve: run the embedded scriptable test server in the foreground.
#include <signal.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "args.h"
#include "commands.h"
#include "test_server.h"

namespace h2pool_cli {

const char kServeUsage[] =
    "Usage: h2pool serve [OPTIONS]\n"
    "\n"
    "Runs the embedded HTTP/2 (h2c, prior knowledge) test server until\n"
    "SIGINT or SIGTERM, printing its URL on stdout. Requests are scripted by\n"
    "URL: /path?size=N&seed=K gives N deterministic bytes, /echo echoes the\n"
    "body, and status=N, delay_ms=N, header=NAME:VALUE shape the response.\n"
    "\n"
    "Options:\n"
    "  -p, --port P                    port to listen on (default 0: pick a\n"
    "                                  free one)\n"
    "      --host H                    loopback address: 127.0.0.1 (default)\n"
    "                                  or ::1\n"
    "  -m, --max-concurrent-streams N  SETTINGS_MAX_CONCURRENT_STREAMS to\n"
    "                                  announce (default 100; 0: none)\n"
    "  -h, --help                      show this help\n";

int cmd_serve(const Args &args) {
  h2pool_testing::ServerOptions options;
  // A long-running server only reports counters; keeping every request (and
  // every uploaded body) would grow without bound.
  options.record_limit = 0;
  options.record_bodies = false;
  std::string value;
  ArgCursor cur(args);
  while (!cur.done()) {
    cur.check_help();
    if (cur.value_option("--port", "-p", value)) {
      options.port =
          static_cast<uint16_t>(parse_uint(value, 0, 65535, "--port"));
    } else if (cur.value_option("--host", "", value)) {
      if (value.empty()) {
        throw UsageError("--host must not be empty");
      }
      options.host = value;
    } else if (cur.value_option("--max-concurrent-streams", "-m", value)) {
      options.max_concurrent_streams = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--max-concurrent-streams"));
    } else if (auto pos = cur.positional()) {
      throw UsageError("unexpected argument '" + *pos + "'");
    }
  }

  // Block the signals before the server starts its loop thread, so that
  // thread inherits the mask and sigwait() below is the only receiver.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (int rc = pthread_sigmask(SIG_BLOCK, &signals, nullptr); rc != 0) {
    std::fprintf(stderr, "h2pool: pthread_sigmask: %s\n", std::strerror(rc));
    return kExitFailure;
  }

  h2pool_testing::TestServer server(options);
  if (int rc = server.start(); rc != 0) {
    std::fprintf(stderr, "h2pool: cannot start server on %s port %u: %s\n",
                 options.host.c_str(), static_cast<unsigned>(options.port),
                 std::strerror(-rc));
    if (rc == -EINVAL) {
      std::fprintf(stderr, "h2pool: the test server listens on loopback only "
                           "(--host 127.0.0.1 or ::1)\n");
    }
    return kExitFailure;
  }
  std::printf("%s\n", server.base_url().c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "h2pool: serving on %s (max concurrent streams %u); "
               "stop with Ctrl-C\n",
               server.base_url().c_str(), options.max_concurrent_streams);

  int sig = 0;
  if (int rc = sigwait(&signals, &sig); rc != 0) {
    std::fprintf(stderr, "h2pool: sigwait: %s\n", std::strerror(rc));
    server.stop();
    return kExitFailure;
  }
  server.stop();
  h2pool_testing::ServerStats st = server.stats();
  std::fprintf(stderr,
               "h2pool: %s received; stopped after %" PRIu64
               " requests on %" PRIu64
               " connections (peak %u concurrent streams)\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", st.requests,
               st.connections_accepted, st.peak_concurrent_streams);
  return kExitOk;
}

} // namespace h2pool_cli
