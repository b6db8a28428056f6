// h2pool serve: run the embedded scriptable test server in the foreground.
#include <signal.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

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
    "      --unix-socket PATH          listen on a Unix socket instead\n"
    "                                  (@NAME: abstract; URL "
    "http://localhost)\n"
    "      --host H                    loopback address: 127.0.0.1 (default)\n"
    "                                  or ::1\n"
    "  -m, --max-concurrent-streams N  SETTINGS_MAX_CONCURRENT_STREAMS to\n"
    "                                  announce (default 100; 0: none)\n"
    "      --rfc9218                   announce "
    "SETTINGS_NO_RFC7540_PRIORITIES\n"
    "                                  and send the responses of more urgent\n"
    "                                  requests (priority header,\n"
    "                                  PRIORITY_UPDATE) first\n"
    "  -h, --help                      show this help\n"
    "\n"
    "Failure scenarios, for every connection (per-request faults such as\n"
    "goaway=CODE, rst=CODE, refuse=P, drop=close|reset|midframe with\n"
    "fault_at=N are URL parameters; see tools/server/test_server.h):\n"
    "      --after-settings WHAT       right after its SETTINGS, before\n"
    "                                  reading anything, a connection:\n"
    "          goaway[=CODE]           sends GOAWAY(CODE, last_stream_id 0)\n"
    "                                  and reads until the client closes;\n"
    "                                  CODE is a number or a name such as\n"
    "                                  PROTOCOL_ERROR (default NO_ERROR)\n"
    "          protocol-error=KIND     sends a malformed frame, KIND one of\n"
    "                                  settings-ack-with-payload,\n"
    "                                  ping-wrong-length, data-on-stream-0\n"
    "          close                   sends FIN\n"
    "          reset                   sends TCP RST\n"
    "      --refuse-every N            answer every Nth stream (counted over\n"
    "                                  all connections) with\n"
    "                                  RST_STREAM(REFUSED_STREAM); 0: off\n"
    "      --read-pause-ms N           after each request's HEADERS, stop\n"
    "                                  reading its connection for N ms (a\n"
    "                                  slow reader); 0: off\n"
    "      --initial-window-size N     SETTINGS_INITIAL_WINDOW_SIZE (and\n"
    "                                  connection window) to announce, up to\n"
    "                                  2147483647, so an upload can outrun a\n"
    "                                  paused reader (default 65535)\n";

namespace {

// RFC 9113 section 7 error codes, for --after-settings goaway=NAME.
constexpr std::pair<std::string_view, uint32_t> kErrorCodes[] = {
    {"NO_ERROR", 0x0},
    {"PROTOCOL_ERROR", 0x1},
    {"INTERNAL_ERROR", 0x2},
    {"FLOW_CONTROL_ERROR", 0x3},
    {"SETTINGS_TIMEOUT", 0x4},
    {"STREAM_CLOSED", 0x5},
    {"FRAME_SIZE_ERROR", 0x6},
    {"REFUSED_STREAM", 0x7},
    {"CANCEL", 0x8},
    {"COMPRESSION_ERROR", 0x9},
    {"CONNECT_ERROR", 0xa},
    {"ENHANCE_YOUR_CALM", 0xb},
    {"INADEQUATE_SECURITY", 0xc},
    {"HTTP_1_1_REQUIRED", 0xd},
};

uint32_t parse_error_code(std::string_view text) {
  std::string upper(text);
  for (char &c : upper) {
    c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
  }
  for (const auto &[name, code] : kErrorCodes) {
    if (upper == name) {
      return code;
    }
  }
  return static_cast<uint32_t>(
      parse_uint(text, 0, UINT32_MAX, "--after-settings goaway=CODE"));
}

// Kinds are written with dashes on the command line; underscores (as in
// the C++ enum) are accepted too.
h2pool_testing::ProtocolErrorKind parse_protocol_error(std::string_view text) {
  std::string kind(text);
  for (char &c : kind) {
    c = c == '_' ? '-' : c;
  }
  using K = h2pool_testing::ProtocolErrorKind;
  if (kind == "settings-ack-with-payload") {
    return K::settings_ack_with_payload;
  }
  if (kind == "ping-wrong-length") {
    return K::ping_wrong_length;
  }
  if (kind == "data-on-stream-0") {
    return K::data_on_stream_0;
  }
  throw UsageError("--after-settings protocol-error=KIND: unknown kind '" +
                   std::string(text) +
                   "' (settings-ack-with-payload, ping-wrong-length, "
                   "data-on-stream-0)");
}

void parse_after_settings(std::string_view value,
                          h2pool_testing::ConnectionScript &script) {
  using A = h2pool_testing::AfterSettings;
  auto eq = value.find('=');
  std::string_view what = value.substr(0, eq);
  std::string_view arg =
      eq == std::string_view::npos ? std::string_view() : value.substr(eq + 1);
  bool has_arg = eq != std::string_view::npos;
  if (what == "goaway") {
    script.after_settings = A::goaway;
    script.after_settings_goaway_code = has_arg ? parse_error_code(arg) : 0;
    script.after_settings_debug = "h2pool serve --after-settings goaway";
  } else if (what == "protocol-error" && has_arg) {
    script.after_settings = A::protocol_error;
    script.after_settings_protocol_error = parse_protocol_error(arg);
  } else if (what == "close" && !has_arg) {
    script.after_settings = A::close;
  } else if (what == "reset" && !has_arg) {
    script.after_settings = A::reset;
  } else {
    throw UsageError("--after-settings: expected goaway[=CODE], "
                     "protocol-error=KIND, close or reset, not '" +
                     std::string(value) + "'");
  }
}

// One line naming the failure scripts in effect ("" when there are none),
// so whoever reproduces a scenario by hand sees which one is running.
std::string describe_scripts(const h2pool_testing::ServerOptions &options) {
  const h2pool_testing::ConnectionScript &c = options.connection;
  std::string out;
  auto add = [&out](const std::string &what) {
    out += (out.empty() ? "" : ", ") + what;
  };
  using A = h2pool_testing::AfterSettings;
  switch (c.after_settings) {
  case A::none:
    break;
  case A::goaway:
    add("GOAWAY(" + std::to_string(c.after_settings_goaway_code) +
        ", last_stream_id 0) after SETTINGS");
    break;
  case A::protocol_error:
    add("a malformed frame after SETTINGS");
    break;
  case A::close:
    add("FIN after SETTINGS");
    break;
  case A::reset:
    add("TCP RST after SETTINGS");
    break;
  }
  if (options.refuse_every != 0) {
    add("refuse 1 stream in " + std::to_string(options.refuse_every));
  }
  if (c.read_pause_ms != 0) {
    add("pause reading " + std::to_string(c.read_pause_ms) +
        " ms after each request");
  }
  if (c.initial_window_size) {
    add("initial window " + std::to_string(*c.initial_window_size));
  }
  return out;
}

} // namespace

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
    } else if (cur.value_option("--unix-socket", "", value)) {
      if (value.empty()) {
        throw UsageError("--unix-socket must not be empty");
      }
      options.unix_socket = value;
    } else if (cur.value_option("--host", "", value)) {
      if (value.empty()) {
        throw UsageError("--host must not be empty");
      }
      options.host = value;
    } else if (cur.value_option("--max-concurrent-streams", "-m", value)) {
      options.max_concurrent_streams = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--max-concurrent-streams"));
    } else if (cur.value_option("--after-settings", "", value)) {
      parse_after_settings(value, options.connection);
    } else if (cur.value_option("--refuse-every", "", value)) {
      options.refuse_every = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--refuse-every"));
    } else if (cur.value_option("--read-pause-ms", "", value)) {
      options.connection.read_pause_ms = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--read-pause-ms"));
    } else if (cur.value_option("--initial-window-size", "", value)) {
      options.connection.initial_window_size = static_cast<uint32_t>(
          parse_uint(value, 0, INT32_MAX, "--initial-window-size"));
    } else if (cur.flag("--rfc9218")) {
      options.rfc9218 = true;
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
    if (!options.unix_socket.empty()) {
      std::fprintf(stderr, "h2pool: cannot listen on %s: %s\n",
                   options.unix_socket.c_str(), std::strerror(-rc));
      return kExitFailure;
    }
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
  if (std::string scripts = describe_scripts(options); !scripts.empty()) {
    std::fprintf(stderr, "h2pool: failure scripts: %s\n", scripts.c_str());
  }

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
