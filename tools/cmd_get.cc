// h2pool get: fetch URLs concurrently through one pool, print the bodies in
// argument order.
//
// With one URL the body streams straight to the output as it arrives, so a
// download of any size runs in bounded memory; with several, each body is
// buffered so they can be written in argument order.
#include <h2pool.h>

#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "net_args.h"
#include "progress.h"
#include "write_out.h"

namespace h2pool_cli {
namespace {

// --priority: "u=N", "u=N,i" (a space after the comma allowed) or "i".
std::pair<int, int> parse_priority_option(const std::string &value) {
  std::pair<int, int> p{3, 0};
  std::string rest = value;
  if (rest.size() >= 3 && rest.compare(0, 2, "u=") == 0 && rest[2] >= '0' &&
      rest[2] <= '7') {
    p.first = rest[2] - '0';
    rest.erase(0, 3);
    if (rest.empty())
      return p;
    size_t skip = rest.compare(0, 2, ", ") == 0 ? 2 : rest[0] == ',' ? 1 : 0;
    if (skip == 0)
      throw UsageError("--priority: want u=N[,i] with N 0..7, got '" + value +
                       "'");
    rest.erase(0, skip);
  }
  if (rest != "i")
    throw UsageError("--priority: want u=N[,i] with N 0..7, got '" + value +
                     "'");
  p.second = 1;
  return p;
}

} // namespace

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
    "  -d, --data @FILE            stream the body from FILE\n"
    "  -X, --method METHOD         request method (default GET)\n"
    "  -o, --output FILE           write the bodies to FILE, not stdout\n"
    "  -i, --include               write the status line and headers before\n"
    "                              each body, and trailers after it\n"
    "  -I, --head                  send HEAD and write the status line and\n"
    "                              headers (as -i)\n"
    "  -w, --write-out FORMAT      after each transfer write FORMAT to "
    "stdout,\n"
    "                              as curl does: %{time_namelookup},\n"
    "                              %{time_connect}, %{time_appconnect},\n"
    "                              %{time_pretransfer}, "
    "%{time_starttransfer},\n"
    "                              %{time_total}, %{time_queue} (seconds),\n"
    "                              %{http_code}, %{http_version},\n"
    "                              %{size_download}, %{size_upload},\n"
    "                              %{size_header}, %{speed_download},\n"
    "                              %{remote_ip}, %{remote_port},\n"
    "                              %{num_connects}, %{exitcode}, %{errormsg},\n"
    "                              %{url}, %{method}; \\n \\t %%; @FILE reads\n"
    "                              FORMAT from FILE\n"
    "      --compressed            ask for every content-encoding this build\n"
    "                              decodes (-v shows them) and decode it\n"
    "      --timeout-ms N          per-request timeout in ms (0: none)\n"
    "      --priority u=N[,i]      RFC 9218 urgency N (0 most urgent .. 7)\n"
    "                              and, with ',i', incremental (default\n"
    "                              u=3, not incremental: no header sent)\n"
    "  -v, --verbose               show connects, TLS, ALPN, request and\n"
    "                              response headers and frame counts on "
    "stderr\n"
    "  -s, --silent                no progress bar and no error messages\n"
    "  -S, --show-error            with -s, still show error messages\n"
    "  -#, --progress-bar          show progress as a bar of #s (curl's -#)\n"
    "      --cacert FILE           trust the CA certificates in FILE (PEM)\n"
    "      --capath DIR            trust the CA certificates in DIR (hashed)\n"
    "      --cert FILE --key FILE  client certificate and key (mutual TLS)\n"
    "  -k, --insecure              do not verify server certificates\n"
    "      --http1.1               speak HTTP/1.1 (over TLS: ALPN http/1.1)\n"
    "      --http2                 speak HTTP/2 only (over TLS: ALPN h2)\n"
    "                              (default: what ALPN selects over TLS,\n"
    "                              HTTP/2 with prior knowledge over http://)\n"
    "  -x, --proxy URL             tunnel every connection through the\n"
    "                              proxy URL (http://, https://, socks5://,\n"
    "                              socks5h://; \"\" for none); default: the\n"
    "                              environment's https_proxy, http_proxy,\n"
    "                              ALL_PROXY, as curl reads them\n"
    "  -U, --proxy-user USER:PASS  the proxy's credentials\n"
    "      --noproxy LIST          hosts that bypass the proxy (\"*\": all);\n"
    "                              default: the environment's "
    "NO_PROXY\n" H2POOL_CLI_NETWORK_USAGE
    "  -h, --help                  show this help\n"
    "\n"
    "Exit status: 0 if every URL got a response (any HTTP status), 1 if\n"
    "any failed, 2 on usage errors.\n";

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Fetch {
  std::string url;
  bool done = false;
  bool ok = false;
  int status = 0;
  int protocol = 0;
  std::string reason;
  Fields headers;
  Fields trailers;
  std::string body;
  std::string error;
  TransferInfo info;       // for --write-out
  char last_body_byte = 0; // of what was written, for --include's trailers
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
};

// What every request of one invocation shares (read-only once running).
struct Settings {
  std::FILE *out = stdout;
  bool include = false;
  bool verbose = false;
  bool stream = false; // write the body as it arrives (one URL)
  bool head = false;   // -I
  std::string method;
  Progress *progress = nullptr; // one streamed transfer to a terminal
  std::string data_file;        // --data @FILE
  // The accept-encoding h2pool adds (--compressed, none given); for -v.
  std::string accept_encoding;
};

struct FileCloser {
  void operator()(std::FILE *f) const {
    if (f != nullptr) {
      std::fclose(f);
    }
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

struct Ctx {
  Shared *shared = nullptr;
  Fetch *fetch = nullptr;
  const Settings *settings = nullptr;
  FilePtr upload; // --data @FILE, one handle per request
  bool write_failed = false;
  int write_errno = 0;
};

Fields copy_fields(const h2pool_response *resp, bool trailers) {
  Fields out;
  size_t n = trailers ? h2pool_response_trailer_count(resp)
                      : h2pool_response_header_count(resp);
  for (size_t i = 0; i < n; ++i) {
    h2pool_header h{};
    int rc = trailers ? h2pool_response_trailer_at(resp, i, &h)
                      : h2pool_response_header_at(resp, i, &h);
    if (rc == H2POOL_OK) {
      out.emplace_back(std::string(h.name, h.name_len),
                       std::string(h.value, h.value_len));
    }
  }
  return out;
}

// The status line as curl shows it: "HTTP/2 200", "HTTP/1.1 200 OK".
std::string status_line(const Fetch &f) {
  std::string line = h2pool_protocol_name(f.protocol);
  line += ' ';
  line += std::to_string(f.status);
  if (f.protocol != H2POOL_PROTOCOL_HTTP_2) {
    line += ' ';
    line += f.reason;
  }
  return line;
}

void copy_status(const h2pool_response *resp, Fetch &f) {
  f.status = h2pool_response_status(resp);
  f.protocol = h2pool_response_protocol(resp);
  f.reason = h2pool_response_reason(resp);
}

void print_head(std::FILE *f, const Fetch &fetch) {
  std::fprintf(f, "%s\r\n", status_line(fetch).c_str());
  const Fields &headers = fetch.headers;
  for (auto &[n, v] : headers) {
    std::fprintf(f, "%s: %s\r\n", n.c_str(), v.c_str());
  }
  std::fputs("\r\n", f);
}

// After a body that lacks a final newline the first trailer would run into
// its last line.
void print_trailers(std::FILE *f, const Fields &trailers, char last_byte) {
  if (!trailers.empty() && last_byte != 0 && last_byte != '\n')
    std::fputs("\r\n", f);
  for (auto &[n, v] : trailers) {
    std::fprintf(f, "%s: %s\r\n", n.c_str(), v.c_str());
  }
}

void print_verbose(const Fetch &f) {
  std::fprintf(stderr, "< %s\n", status_line(f).c_str());
  for (auto &[n, v] : f.headers) {
    std::fprintf(stderr, "< %s: %s\n", n.c_str(), v.c_str());
  }
  std::fprintf(stderr, "<\n");
}

// The request as curl -v shows it ("> " lines). The library adds what is
// not listed (content-length, accept-encoding).
void print_request(const Settings &s, const std::string &url,
                   const Fields &headers, size_t body_len, bool body_file) {
  std::string path = "/", authority;
  size_t scheme_end = url.find("://");
  if (scheme_end != std::string::npos) {
    size_t start = scheme_end + 3;
    size_t slash = url.find_first_of("/?", start);
    authority = url.substr(start, slash == std::string::npos ? std::string::npos
                                                             : slash - start);
    if (slash != std::string::npos) {
      // "?q" alone is the path "/?q". (Appended rather than inserted at
      // 0, on which GCC 12 warns falsely, -Wrestrict.)
      path = url[slash] == '?' ? "/" : "";
      path.append(url, slash, std::string::npos);
    }
  }
  std::fprintf(stderr, "> %s %s\n> host: %s\n", s.method.c_str(), path.c_str(),
               authority.c_str());
  for (auto &[n, v] : headers) {
    std::fprintf(stderr, "> %s: %s\n", n.c_str(), v.c_str());
  }
  if (!s.accept_encoding.empty()) {
    std::fprintf(stderr, "> accept-encoding: %s\n", s.accept_encoding.c_str());
  }
  if (body_file) {
    std::fprintf(stderr, "> (body streamed from %s)\n", s.data_file.c_str());
  } else if (body_len > 0) {
    std::fprintf(stderr, "> (body of %zu bytes)\n", body_len);
  }
  std::fprintf(stderr, ">\n");
}

// Streaming mode: status and headers go out as soon as they arrive.
int on_headers(const h2pool_response *resp, void *user_data) {
  auto ctx = static_cast<Ctx *>(user_data);
  Fetch &f = *ctx->fetch;
  copy_status(resp, f);
  f.headers = copy_fields(resp, false);
  if (ctx->settings->verbose) {
    print_verbose(f);
  }
  if (ctx->settings->include) {
    print_head(ctx->settings->out, f);
  }
  if (ctx->settings->progress) {
    size_t n = 0;
    const char *cl = h2pool_response_header(resp, "content-length", &n);
    ctx->settings->progress->set_download_total(
        cl ? std::strtoll(std::string(cl, n).c_str(), nullptr, 10) : -1);
  }
  return 0;
}

int on_data(const uint8_t *data, size_t len, void *user_data) {
  auto ctx = static_cast<Ctx *>(user_data);
  ctx->fetch->info.size_download += len;
  if (len > 0) {
    ctx->fetch->last_body_byte = char(data[len - 1]);
  }
  if (ctx->settings->progress) {
    ctx->settings->progress->downloaded(len);
  }
  if (std::fwrite(data, 1, len, ctx->settings->out) != len) {
    ctx->write_failed = true;
    ctx->write_errno = errno;
    return -1; // abort: nowhere to put the rest
  }
  return 0;
}

// Streams the upload from the request's own handle on the file.
int64_t read_upload(uint8_t *buf, size_t len, int *eof, void *user_data) {
  auto ctx = static_cast<Ctx *>(user_data);
  size_t n = std::fread(buf, 1, len, ctx->upload.get());
  ctx->fetch->info.size_upload += n;
  if (ctx->settings->progress) {
    ctx->settings->progress->uploaded(n);
  }
  if (n < len) {
    if (std::ferror(ctx->upload.get())) {
      return H2POOL_BODY_ABORT;
    }
    *eof = 1;
  }
  return static_cast<int64_t>(n);
}

void on_response(const h2pool_response *resp, const h2pool_error *err,
                 void *user_data) {
  auto ctx = static_cast<Ctx *>(user_data);
  Fetch &f = *ctx->fetch;
  // Copy everything out: resp and err are borrowed for this call only. Only
  // this callback writes to `f` until `remaining` says it is done.
  f.info.take_timings(resp, err);
  if (resp != nullptr) {
    f.info.http_code = h2pool_response_status(resp);
    f.info.protocol = h2pool_response_protocol(resp);
    h2pool_header h{};
    for (size_t i = 0; h2pool_response_header_at(resp, i, &h) == H2POOL_OK;
         ++i) {
      f.info.size_header += h.name_len + h.value_len + 4; // ": " CRLF
    }
  }
  if (err != nullptr) {
    f.ok = false;
    f.error = ctx->write_failed ? std::string("writing the body failed: ") +
                                      std::strerror(ctx->write_errno)
                                : describe_error(err);
  } else {
    f.ok = true;
    copy_status(resp, f);
    f.headers = copy_fields(resp, false);
    f.trailers = copy_fields(resp, true);
    size_t len = 0;
    const uint8_t *body = h2pool_response_body(resp, &len);
    f.body.assign(reinterpret_cast<const char *>(body), len);
    if (!ctx->settings->stream) {
      f.info.size_download = len;
      f.last_body_byte = len ? f.body.back() : 0;
    }
    if (ctx->settings->stream && ctx->settings->include) {
      print_trailers(ctx->settings->out, f.trailers, f.last_body_byte);
    }
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

// curl users write flags together ("-sS", "-sI"): split a group made only
// of get's value-less short flags into its flags. Anything else (a group
// with a value option, "-o" ...) is left for the parser.
Args split_short_flags(const Args &args) {
  static const std::string kFlags = "sSiIvk#";
  Args out;
  bool options_ended = false;
  for (const std::string &a : args) {
    options_ended = options_ended || a == "--";
    bool group = !options_ended && a.size() > 2 && a[0] == '-' && a[1] != '-' &&
                 a.find_first_not_of(kFlags, 1) == std::string::npos;
    if (!group) {
      out.push_back(a);
      continue;
    }
    for (size_t i = 1; i < a.size(); ++i) {
      out.push_back(std::string("-") + a[i]);
    }
  }
  return out;
}

} // namespace

int cmd_get(const Args &args) {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string data, value, output;
  bool have_data = false, compressed = false;
  std::pair<int, int> priority{3, 0}; // RFC 9218 section 4 defaults
  uint32_t timeout_ms = 0;
  bool have_timeout = false;
  std::vector<Fetch> fetches;
  TlsOptions tls;
  NetworkOptions net;
  Settings settings;
  std::string write_out;
  bool silent = false, show_error = false, bar = false;

  ArgCursor cur(split_short_flags(args));
  while (!cur.done()) {
    cur.check_help();
    if (tls.parse(cur) || net.parse(cur)) {
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
      settings.method = value;
    } else if (cur.value_option("--output", "-o", value)) {
      if (value.empty()) {
        throw UsageError("--output needs a file name");
      }
      output = value;
    } else if (cur.value_option("--priority", "", value)) {
      priority = parse_priority_option(value);
    } else if (cur.value_option("--timeout-ms", "", value)) {
      timeout_ms = static_cast<uint32_t>(
          parse_uint(value, 0, UINT32_MAX, "--timeout-ms"));
      have_timeout = true;
    } else if (cur.flag("--include", "-i")) {
      settings.include = true;
    } else if (cur.flag("--head", "-I")) {
      settings.head = true;
      settings.include = true;
    } else if (cur.value_option("--write-out", "-w", value)) {
      write_out = load_write_out(value);
    } else if (cur.flag("--silent", "-s")) {
      silent = true;
    } else if (cur.flag("--show-error", "-S")) {
      show_error = true;
    } else if (cur.flag("--progress-bar", "-#")) {
      bar = true;
    } else if (cur.flag("--compressed", "")) {
      compressed = true;
    } else if (cur.flag("--verbose", "-v")) {
      settings.verbose = true;
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
  if (settings.method.empty()) {
    settings.method = settings.head ? "HEAD" : have_data ? "POST" : "GET";
  }
  settings.stream = fetches.size() == 1;

  int64_t upload_size = -1;
  if (have_data && !data.empty() && data[0] == '@') {
    settings.data_file = data.substr(1);
    struct stat st;
    if (settings.data_file.empty() ||
        stat(settings.data_file.c_str(), &st) != 0) {
      throw UsageError("--data @FILE: cannot read '" + settings.data_file +
                       "': " + std::strerror(errno));
    }
    if (S_ISREG(st.st_mode)) {
      upload_size = static_cast<int64_t>(st.st_size);
    }
  }

  FilePtr out_file;
  if (!output.empty()) {
    out_file.reset(std::fopen(output.c_str(), "wb"));
    if (!out_file) {
      std::fprintf(stderr, "h2pool: cannot write '%s': %s\n", output.c_str(),
                   std::strerror(errno));
      return kExitFailure;
    }
    settings.out = out_file.get();
  }

  std::vector<h2pool_header> hdrs;
  for (auto &[n, v] : headers) {
    hdrs.push_back(h2pool_header{n.data(), n.size(), v.data(), v.size()});
  }

  bool caller_ae = std::any_of(headers.begin(), headers.end(), [](auto &h) {
    return strcasecmp(h.first.c_str(), "accept-encoding") == 0;
  });
  if (compressed && !caller_ae) {
    settings.accept_encoding = h2pool_supported_encodings();
  }
  OptsPtr opts = new_request_opts();
  check(h2pool_request_opts_set_priority(opts.get(), priority.first,
                                         priority.second),
        "--priority");
  check(h2pool_request_opts_set_auto_decompress(opts.get(), compressed ? 1 : 0),
        "h2pool_request_opts_set_auto_decompress");
  if (have_timeout) {
    check(h2pool_request_opts_set_timeout_ms(opts.get(), timeout_ms),
          "h2pool_request_opts_set_timeout_ms");
  }
  if (settings.stream) {
    check(h2pool_request_opts_set_on_headers(opts.get(), on_headers),
          "h2pool_request_opts_set_on_headers");
    check(h2pool_request_opts_set_on_data(opts.get(), on_data),
          "h2pool_request_opts_set_on_data");
  }
  if (!settings.data_file.empty()) {
    check(h2pool_request_opts_set_body_reader(opts.get(), read_upload,
                                              upload_size),
          "h2pool_request_opts_set_body_reader");
  }

  Shared shared;
  std::vector<Ctx> ctxs(fetches.size());
  {
    ConfigPtr cfg = new_config(settings.verbose);
    tls.apply(cfg.get());
    net.apply(cfg.get());
    PoolPtr pool = new_pool(cfg.get());
    {
      std::lock_guard<std::mutex> lock(shared.mu);
      shared.remaining = fetches.size();
    }
    std::unique_ptr<Progress> progress;
    // Only a single streamed transfer has one bar to draw, and only for a
    // person watching: curl draws none either when stderr is redirected.
    if (settings.stream && !silent && !settings.verbose &&
        Progress::stderr_is_terminal()) {
      progress = std::make_unique<Progress>(bar ? Progress::Style::bar
                                                : Progress::Style::meter);
      if (!settings.data_file.empty()) {
        progress->set_upload_total(upload_size);
      } else if (!data.empty()) {
        progress->set_upload_total(int64_t(data.size()));
      }
      settings.progress = progress.get();
    }
    for (size_t i = 0; i < fetches.size(); ++i) {
      Ctx &ctx = ctxs[i];
      fetches[i].info.url = fetches[i].url;
      fetches[i].info.method = settings.method;
      if (settings.data_file.empty()) {
        fetches[i].info.size_upload = data.size();
      }
      if (settings.verbose) {
        print_request(settings, fetches[i].url, headers, data.size(),
                      !settings.data_file.empty());
      }
      ctx.shared = &shared;
      ctx.fetch = &fetches[i];
      ctx.settings = &settings;
      const uint8_t *body = reinterpret_cast<const uint8_t *>(data.data());
      size_t body_len = data.size();
      int rc = H2POOL_OK;
      if (!settings.data_file.empty()) {
        body = nullptr;
        body_len = 0;
        ctx.upload.reset(std::fopen(settings.data_file.c_str(), "rb"));
        if (!ctx.upload) {
          rc = H2POOL_ERR_BODY_SOURCE;
        }
      }
      if (rc == H2POOL_OK) {
        rc = h2pool_request(pool.get(), settings.method.c_str(),
                            fetches[i].url.c_str(), hdrs.data(), hdrs.size(),
                            body, body_len, opts.get(), on_response, &ctx,
                            nullptr);
      }
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
    if (progress) {
      progress->finish();
      settings.progress = nullptr;
    }
    // Destroying the pool joins its loop thread, so no callback is still
    // touching `fetches` once this scope ends.
  }

  int rc = kExitOk;
  // curl writes -w after each transfer, to stdout whatever -o says.
  auto write_out_for = [&](Fetch &f) {
    if (write_out.empty()) {
      return;
    }
    f.info.exitcode = f.ok ? kExitOk : kExitFailure;
    f.info.errormsg = f.ok ? std::string() : f.error;
    std::string warn;
    std::string text = expand_write_out(write_out, f.info, &warn);
    if (!warn.empty()) {
      std::fprintf(stderr, "h2pool: warning: %s", warn.c_str());
    }
    std::fflush(settings.out);
    std::fwrite(text.data(), 1, text.size(), stdout);
  };
  for (Fetch &f : fetches) {
    if (!f.ok) {
      if (!silent || show_error) {
        std::fprintf(stderr, "h2pool: %s: %s\n", f.url.c_str(),
                     f.error.c_str());
      }
      rc = kExitFailure;
      write_out_for(f);
      continue;
    }
    if (settings.stream) {
      write_out_for(f);
      continue; // already written as it arrived
    }
    if (settings.verbose) {
      std::fflush(settings.out);
      print_verbose(f);
    }
    if (settings.include) {
      print_head(settings.out, f);
    }
    if (!f.body.empty() && std::fwrite(f.body.data(), 1, f.body.size(),
                                       settings.out) != f.body.size()) {
      break;
    }
    if (settings.include) {
      print_trailers(settings.out, f.trailers, f.last_body_byte);
    }
    write_out_for(f);
  }
  bool reported = false; // a streamed write failure was already reported
  for (const Ctx &ctx : ctxs) {
    reported = reported || ctx.write_failed;
  }
  if ((std::fflush(settings.out) != 0 || std::ferror(settings.out)) &&
      !reported) {
    std::fprintf(stderr, "h2pool: writing %s: %s\n",
                 output.empty() ? "to stdout" : output.c_str(),
                 std::strerror(errno));
    return kExitFailure;
  }
  return rc;
}

} // namespace h2pool_cli
