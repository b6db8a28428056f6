// h2pool get: fetch URLs concurrently through one pool, print the bodies in
// argument order.
#include <h2pool.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"

namespace h2pool_cli {

const char kGetUsage[] =
    "Usage: h2pool get [OPTIONS] URL...\n"
    "\n"
    "Fetches every URL concurrently through one connection pool and writes\n"
    "the response bodies to stdout in argument order. Errors go to stderr as\n"
    "'h2pool: URL: <error>'.\n"
    "\n"
    "Options:\n"
    "  -H, --header 'NAME: VALUE'  add a request header (repeatable)\n"
    "  -d, --data STRING           send STRING as the request body (implies\n"
    "                              POST unless --method is given)\n"
    "  -X, --method METHOD         request method (default GET)\n"
    "      --timeout-ms N          per-request timeout in ms (0: none)\n"
    "  -v, --verbose               print status line and headers to stderr\n"
    "      --cacert FILE           trust the CA certificates in FILE (PEM)\n"
    "      --cert FILE --key FILE  client certificate and key (mutual TLS)\n"
    "  -k, --insecure              do not verify server certificates\n"
    "  -h, --help                  show this help\n"
    "\n"
    "Exit status: 0 if every URL got a response (any HTTP status), 1 if\n"
    "any failed, 2 on usage errors.\n";

namespace {

struct Fetch {
  std::string url;
  bool done = false;
  bool ok = false;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
};

struct Ctx {
  Shared *shared;
  Fetch *fetch;
};

void on_response(const h2pool_response *resp, const h2pool_error *err,
                 void *user_data) {
  auto ctx = static_cast<Ctx *>(user_data);
  Fetch &f = *ctx->fetch;
  // Copy everything out: resp and err are borrowed for this call only. Only
  // this callback writes to `f` until `remaining` says it is done.
  if (err != nullptr) {
    f.ok = false;
    f.error = describe_error(err);
  } else {
    f.ok = true;
    f.status = h2pool_response_status(resp);
    size_t n = h2pool_response_header_count(resp);
    f.headers.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      h2pool_header h{};
      if (h2pool_response_header_at(resp, i, &h) == H2POOL_OK) {
        f.headers.emplace_back(std::string(h.name, h.name_len),
                               std::string(h.value, h.value_len));
      }
    }
    size_t len = 0;
    const uint8_t *body = h2pool_response_body(resp, &len);
    f.body.assign(reinterpret_cast<const char *>(body), len);
  }
  std::lock_guard<std::mutex> lock(ctx->shared->mu);
  f.done = true;
  if (--ctx->shared->remaining == 0) {
    ctx->shared->cv.notify_all();
  }
}

// Splits "Name: value" at the first colon; the value loses leading blanks.
std::pair<std::string, std::string> parse_header(const std::string &text) {
  auto colon = text.find(':');
  // A leading colon would make a pseudo-header; the library refuses those,
  // but say so here with a clearer message.
  if (colon == std::string::npos || colon == 0) {
    throw UsageError("--header expects 'NAME: VALUE', got '" + text + "'");
  }
  std::string name = text.substr(0, colon);
  size_t v = colon + 1;
  while (v < text.size() && (text[v] == ' ' || text[v] == '\t')) {
    ++v;
  }
  return {name, text.substr(v)};
}

} // namespace

int cmd_get(const Args &args) {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string data, method, value;
  bool have_data = false, verbose = false;
  uint32_t timeout_ms = 0;
  bool have_timeout = false;
  std::vector<Fetch> fetches;
  TlsOptions tls;

  ArgCursor cur(args);
  while (!cur.done()) {
    cur.check_help();
    if (tls.parse(cur)) {
      continue;
    } else if (cur.value_option("--header", "-H", value)) {
      headers.push_back(parse_header(value));
    } else if (cur.value_option("--data", "-d", value)) {
      data = value;
      have_data = true;
    } else if (cur.value_option("--method", "-X", value)) {
      if (value.empty()) {
        throw UsageError("--method must not be empty");
      }
      method = value;
    } else if (cur.value_option("--timeout-ms", "", value)) {
      timeout_ms = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--timeout-ms"));
      have_timeout = true;
    } else if (cur.flag("--verbose", "-v")) {
      verbose = true;
    } else if (auto url = cur.positional()) {
      Fetch f;
      f.url = std::move(*url);
      fetches.push_back(std::move(f));
    }
  }
  if (fetches.empty()) {
    throw UsageError("no URL given");
  }
  tls.validate();
  if (method.empty()) {
    method = have_data ? "POST" : "GET";
  }

  std::vector<h2pool_header> hdrs;
  for (auto &[n, v] : headers) {
    hdrs.push_back(h2pool_header{n.data(), n.size(), v.data(), v.size()});
  }

  OptsPtr opts;
  if (have_timeout) {
    opts = new_request_opts();
    check(h2pool_request_opts_set_timeout_ms(opts.get(), timeout_ms),
          "h2pool_request_opts_set_timeout_ms");
  }

  Shared shared;
  std::vector<Ctx> ctxs(fetches.size());
  {
    ConfigPtr cfg = new_config();
    tls.apply(cfg.get());
    PoolPtr pool = new_pool(cfg.get());
    {
      std::lock_guard<std::mutex> lock(shared.mu);
      shared.remaining = fetches.size();
    }
    for (size_t i = 0; i < fetches.size(); ++i) {
      ctxs[i] = Ctx{&shared, &fetches[i]};
      int rc = h2pool_request(
          pool.get(), method.c_str(), fetches[i].url.c_str(), hdrs.data(),
          hdrs.size(), reinterpret_cast<const uint8_t *>(data.data()),
          data.size(), opts.get(), on_response, &ctxs[i], nullptr);
      if (rc != H2POOL_OK) {
        // Refused: the callback will never run for this one.
        std::lock_guard<std::mutex> lock(shared.mu);
        fetches[i].done = true;
        fetches[i].error = describe_code(rc);
        --shared.remaining;
      }
    }
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait(lock, [&] { return shared.remaining == 0; });
    lock.unlock();
    // Destroying the pool joins its loop thread, so no callback is still
    // touching `fetches` once this scope ends.
  }

  int rc = kExitOk;
  for (const Fetch &f : fetches) {
    if (!f.ok) {
      std::fprintf(stderr, "h2pool: %s: %s\n", f.url.c_str(), f.error.c_str());
      rc = kExitFailure;
      continue;
    }
    if (verbose) {
      std::fflush(stdout);
      std::fprintf(stderr, "* %s %s\n< HTTP/2 %d\n", method.c_str(),
                   f.url.c_str(), f.status);
      for (auto &[n, v] : f.headers) {
        std::fprintf(stderr, "< %s: %s\n", n.c_str(), v.c_str());
      }
      std::fprintf(stderr, "<\n");
    }
    if (!f.body.empty() &&
        std::fwrite(f.body.data(), 1, f.body.size(), stdout) != f.body.size()) {
      break;
    }
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::perror("h2pool: writing to stdout");
    return kExitFailure;
  }
  return rc;
}

} // namespace h2pool_cli
