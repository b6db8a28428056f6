// The extern "C" surface: validates arguments, translates to the C++ core,
// and never lets an exception out.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <new>

#include "call_gate.h"
#include "callback_scope.h"
#include "completion_queue.h"
#include "config.h"
#include "decompress.h"
#include "error.h"
#include "headers.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "priority.h"
#include "request.h"
#include "resolver.h"
#include "stats.h"
#include "testing_hooks.h"
#include "tls.h"
#include "url.h"
#include "watch_reporter.h"

#include <event2/event.h>

// Refused requests waiting to be logged on the loop thread (h2pool_log_cb
// promises that thread): the first refusal queues one task carrying its
// message; refusals before that task runs are only counted, and reported
// with it. So a flood of bad requests costs one queued task, not one each.
struct RefusalLog {
  std::mutex mutex;
  bool queued = false; // a task is queued; guarded by mutex
  std::string first;   // its message; guarded by mutex
  uint64_t more = 0;   // refusals since; guarded by mutex
};

// One event loop and the pool it runs (h2pool_config_set_loop_threads()
// asks for several). Member order is destruction order in reverse: the
// resolver (whose thread posts to the loop) goes before the loop, and the
// request cache, which the pool fills up to its last moment, after both.
struct LoopShard {
  uint32_t index = 0; // in h2pool::shards
  // The pool's config, with the per-endpoint connection limit shared out
  // between the loops.
  h2pool_config config;
  h2pool_core::RequestCache requests;
  h2pool_core::Loop loop;
  std::unique_ptr<h2pool_core::Resolver> resolver;
  std::unique_ptr<h2pool_core::Pool> pool;
};

// The public pool handle. Member order is destruction order in reverse.
// The gate comes first of all: calls still leaving it may touch nothing else.
struct h2pool {
  explicit h2pool(const h2pool_config &cfg)
      : config(cfg), log(cfg.log_cb, cfg.log_level, cfg.log_user_data) {}

  // Every exported function taking an h2pool * passes through it, so that
  // h2pool_destroy() can refuse new calls and wait for those under way.
  h2pool_core::CallGate gate;
  h2pool_config config;
  h2pool_core::Logger log;
  // Requests queued or in flight on any loop, against max_pending_requests.
  std::atomic<uint64_t> waiting{0};
  std::vector<std::unique_ptr<LoopShard>> shards;
  // A request id is (sequence << shard_bits) | its loop's index, so that a
  // call naming the id goes to the loop holding the request.
  unsigned shard_bits = 0;
  std::atomic<uint64_t> next_id{0};
  std::atomic<uint32_t> next_shard{0};
  RefusalLog refusals;
  // Streamed uploads of queued requests, for h2pool_request_write_body().
  h2pool_core::UploadRegistry uploads;
  // External pools: what the caller's loop is told to watch.
  std::unique_ptr<h2pool_core::WatchReporter> watches;
  // Pools on the caller's loop, loop thread: inside h2pool_socket_action(),
  // and whether an asynchronous h2pool_destroy() has finished the shutdown
  // (the pool is then freed as soon as the current pass is over).
  bool in_action = false;
  bool finished = false;

  // The first loop: the only one of a pool on the caller's loop.
  LoopShard &main() { return *shards.front(); }
  // The loop holding request `id`. An id naming no loop (the caller's
  // mistake) is no request of the pool: any loop answers it as such.
  LoopShard &shard_of(uint64_t id) {
    uint64_t index = id & ((uint64_t{1} << shard_bits) - 1);
    return index < shards.size() ? *shards[index] : main();
  }
  // The loop whose thread is calling, or null.
  LoopShard *current() {
    for (auto &s : shards)
      if (s->loop.on_loop_thread())
        return s.get();
    return nullptr;
  }
  // Where a new request goes: the calling loop's own, else the next in turn.
  LoopShard &pick() {
    if (shards.size() == 1)
      return main();
    if (LoopShard *s = current())
      return *s;
    return *shards[next_shard.fetch_add(1, std::memory_order_relaxed) %
                   shards.size()];
  }
};

namespace {

using h2pool_core::Error;

// Runs `fn`, mapping any exception to an error code: nothing may unwind into
// a C caller.
template <typename Fn> int guarded(Fn &&fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc &) {
    return H2POOL_ERR_NOMEM;
  } catch (...) {
    return H2POOL_ERR_INTERNAL;
  }
}

using h2pool_core::GateGuard;

// Loop thread: logs the refusal queued by log_refusal() and those counted
// after it.
void report_refusals(h2pool *pool) {
  std::string message;
  uint64_t more;
  {
    std::lock_guard lock(pool->refusals.mutex);
    message.swap(pool->refusals.first);
    more = pool->refusals.more;
    pool->refusals.queued = false;
  }
  if (more)
    H2POOL_LOG(pool->log, H2POOL_LOG_DEBUG,
               "%s (and %llu more requests refused since)", message.c_str(),
               (unsigned long long)more);
  else
    H2POOL_LOG(pool->log, H2POOL_LOG_DEBUG, "%s", message.c_str());
}

// Returns `code`, having logged why the request was refused: on the loop
// thread, where the log callback is promised to run. Best effort: a refusal
// is never turned into another error by its log line.
int log_refusal(h2pool *pool, int code, const char *what,
                const std::string &why) noexcept {
  if (!pool->log.enabled(H2POOL_LOG_DEBUG))
    return code;
  try {
    char buf[1024];
    snprintf(buf, sizeof buf, "request refused (%s): %s: %s",
             h2pool_core::error_text(code), what, why.c_str());
    if (pool->current()) {
      H2POOL_LOG(pool->log, H2POOL_LOG_DEBUG, "%s", buf);
      return code;
    }
    {
      std::lock_guard lock(pool->refusals.mutex);
      if (pool->refusals.queued) {
        ++pool->refusals.more;
        return code;
      }
      pool->refusals.first = buf;
      pool->refusals.more = 0;
      pool->refusals.queued = true;
    }
    int rc = H2POOL_ERR_INTERNAL;
    try {
      rc = pool->main().loop.post([pool] { report_refusals(pool); });
    } catch (...) {
    }
    if (rc != H2POOL_OK) {
      // The loop is closing (or out of memory): nobody will log it.
      std::lock_guard lock(pool->refusals.mutex);
      pool->refusals.queued = false;
      pool->refusals.first.clear();
    }
  } catch (...) {
  }
  return code;
}

// Hands a request that h2pool_request() did not submit back to the cache,
// whichever way the function leaves.
class Unsubmitted {
public:
  Unsubmitted(h2pool_core::RequestCache &cache,
              std::unique_ptr<h2pool_core::Request> &req, bool loop_thread)
      : cache_(cache), req_(req), loop_thread_(loop_thread) {}
  ~Unsubmitted() { cache_.put(std::move(req_), loop_thread_); }
  Unsubmitted(const Unsubmitted &) = delete;
  Unsubmitted &operator=(const Unsubmitted &) = delete;

private:
  h2pool_core::RequestCache &cache_;
  std::unique_ptr<h2pool_core::Request> &req_;
  bool loop_thread_;
};

// An extended CONNECT (RFC 8441) request: the method it needs, and what an
// ordinary request adds that a tunnel must not have. Returns H2POOL_OK, or
// the refusal's code with the reason in `*why`.
int prepare_tunnel(const h2pool_request_opts &opts,
                   const h2pool_core::RequestHeaders &headers,
                   h2pool_core::Request *req, std::string *why) {
  if (req->method != "CONNECT") {
    *why = "a :protocol (" + opts.protocol + ") needs the method CONNECT";
    return H2POOL_ERR_INVALID_METHOD;
  }
  if (headers.has_content_length) {
    // The stream carries a byte stream of no set length (RFC 8441 section
    // 4 leaves CONNECT's rules of RFC 9113 section 8.5 in force).
    *why = "a tunnel's request has no content-length";
    return H2POOL_ERR_INVALID_HEADER;
  }
  req->make_rare().protocol = opts.protocol;
  req->add_content_length = false;
  // The tunnel's bytes are the protocol's own: nothing to decode.
  req->auto_decompress = false;
  req->add_accept_encoding = false;
  if (!opts.has_timeout && req->timeout_ms)
    req->timeout_until_open = true;
  return H2POOL_OK;
}

// Queues `op` for request `id` on the loop thread.
int post_request_op(h2pool *pool, uint64_t id,
                    void (h2pool_core::Pool::*op)(uint64_t)) {
  if (pool == nullptr || id == 0)
    return H2POOL_ERR_INVALID_ARGUMENT;
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  return guarded([&]() -> int {
    LoopShard &shard = pool->shard_of(id);
    return shard.loop.post([&shard, id, op] { (shard.pool.get()->*op)(id); });
  });
}

} // namespace

extern "C" {

uint32_t h2pool_version(const char **str) {
  if (str)
    *str = H2POOL_VERSION_STRING;
  return H2POOL_VERSION_NUM;
}

const char *h2pool_supported_encodings(void) {
  return h2pool_core::kAcceptEncoding;
}

const char *h2pool_strerror(int code) { return h2pool_core::error_text(code); }

int h2pool_error_code(const h2pool_error *err) {
  return err ? err->code : H2POOL_ERR_INVALID_ARGUMENT;
}

int64_t h2pool_error_http2_code(const h2pool_error *err) {
  return err ? err->http2_code : -1;
}

int32_t h2pool_error_stream_id(const h2pool_error *err) {
  return err ? err->stream_id : 0;
}

int64_t h2pool_error_goaway_last_stream_id(const h2pool_error *err) {
  return err ? err->goaway_last_stream_id : -1;
}

const char *h2pool_error_message(const h2pool_error *err) {
  return err ? err->message.c_str() : "";
}

namespace {

int create_pool(const h2pool_config *cfg, h2pool **out,
                h2pool_core::Loop::Mode mode, event_base *caller_base) {
  static const h2pool_config defaults;
  const h2pool_config &c = cfg ? *cfg : defaults;
  h2pool_core::ResolverSettings rs;
  rs.servers = c.dns_servers;
  // c-ares asks each server twice, waiting twice as long the second time:
  // with half the deadline per try the second try is still out when the
  // deadline passes, so a silent server ends as a deadline (RESOLVE_TIMEOUT)
  // and an answer to the retry can still be cached for the next caller.
  rs.query_timeout_ms =
      std::clamp<uint32_t>(c.resolve_timeout_ms / 2, 50, 5000);
  return h2pool_core::create_pool_with_resolver(
      cfg,
      [rs](h2pool_core::Loop &loop) -> std::unique_ptr<h2pool_core::Resolver> {
        std::unique_ptr<h2pool_core::AresResolver> r;
        std::string why;
        if (h2pool_core::AresResolver::create(loop, rs, &r, &why) != H2POOL_OK)
          return nullptr;
        return r;
      },
      out, nullptr, mode, caller_base);
}

} // namespace

int h2pool_create(const h2pool_config *cfg, h2pool **out) {
  return create_pool(cfg, out, h2pool_core::Loop::Mode::own_thread, nullptr);
}

int h2pool_create_on_base(const h2pool_config *cfg, event_base *base,
                          h2pool **out) {
  if (out)
    *out = nullptr;
  if (base == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return create_pool(cfg, out, h2pool_core::Loop::Mode::caller_base, base);
}

int h2pool_create_external(const h2pool_config *cfg, h2pool **out) {
  if (out)
    *out = nullptr;
  if (cfg == nullptr || cfg->socket_cb == nullptr || cfg->timer_cb == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  return create_pool(cfg, out, h2pool_core::Loop::Mode::external, nullptr);
}

} // extern "C"

int h2pool_core::create_pool_with_resolver(const h2pool_config *cfg,
                                           const ResolverFactory &make_resolver,
                                           h2pool **out, PoolObserver *observer,
                                           Loop::Mode mode,
                                           event_base *caller_base) {
  if (out == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  return guarded([&]() -> int {
    static const h2pool_config defaults;
    auto pool = std::make_unique<h2pool>(cfg ? *cfg : defaults);
    // Files the caller named are checked now, so a bad path fails here
    // rather than on the first https:// request.
    std::unique_ptr<h2pool_core::TlsContext> tls;
    const h2pool_config &c = pool->config;
    if (!c.tls_ca_file.empty() || !c.tls_ca_dir.empty() ||
        !c.tls_cert_file.empty()) {
      std::string why;
      int rc = h2pool_core::TlsContext::create(c, &tls, &why);
      if (rc != H2POOL_OK) {
        H2POOL_LOG(pool->log, H2POOL_LOG_ERROR, "%s", why.c_str());
        return rc;
      }
    }
    // The proxy environment is read once, here; a malformed proxy setting
    // fails now rather than on the first request.
    h2pool_core::capture_proxy_environment(pool->config);
    {
      h2pool_core::ProxyRules rules;
      std::string why;
      int rc = rules.init(pool->config, &why);
      if (rc != H2POOL_OK) {
        H2POOL_LOG(pool->log, H2POOL_LOG_ERROR, "%s", why.c_str());
        return rc;
      }
    }
    if (pool->config.tls_insecure)
      H2POOL_LOG(pool->log, H2POOL_LOG_WARN,
                 "TLS certificate verification is disabled for this pool: "
                 "any server can impersonate any other");
    uint32_t n = c.loop_threads;
    if (n > 1 && mode != Loop::Mode::own_thread) {
      H2POOL_LOG(pool->log, H2POOL_LOG_ERROR,
                 "a pool on the caller's loop runs one loop, not %u",
                 unsigned(n));
      return H2POOL_ERR_INVALID_ARGUMENT;
    }
    // One TLS context for every loop: SSL_CTX makes SSL objects on several
    // threads at once, and the trust store is then loaded once.
    auto tls_slot =
        std::make_shared<h2pool_core::TlsContextSlot>(std::move(tls));
    while ((uint32_t{1} << pool->shard_bits) < n)
      ++pool->shard_bits;
    for (uint32_t i = 0; i < n; ++i) {
      auto shard = std::make_unique<LoopShard>();
      shard->index = i;
      shard->config = c;
      shard->config.max_connections_per_endpoint =
          (c.max_connections_per_endpoint + n - 1) / n;
      LoopShard *raw = shard.get();
      int rc = raw->loop.init(
          [raw](h2pool_core::Loop::Batch &batch) { raw->pool->handle(batch); },
          mode, caller_base);
      if (rc != H2POOL_OK)
        return rc;
      raw->resolver = make_resolver(raw->loop);
      if (!raw->resolver) {
        H2POOL_LOG(pool->log, H2POOL_LOG_ERROR,
                   "cannot set up the DNS resolver (c-ares)");
        return H2POOL_ERR_SYSTEM;
      }
      raw->pool = std::make_unique<h2pool_core::Pool>(
          raw->loop.base(), raw->config, pool->log, *raw->resolver,
          pool->waiting, tls_slot, raw->requests, observer);
      raw->pool->set_id_space(i, n);
      pool->shards.push_back(std::move(shard));
    }
    for (size_t i = 0; i < pool->shards.size(); ++i) {
      int rc = pool->shards[i]->loop.start();
      if (rc != H2POOL_OK) {
        // The loops already running hold nothing yet: stop them so that the
        // pool can be freed.
        for (size_t j = 0; j < i; ++j) {
          LoopShard *s = pool->shards[j].get();
          s->loop.close([s] {
            s->pool->shutdown();
            s->loop.stop();
          });
          s->loop.join();
        }
        return rc;
      }
    }
    if (mode == Loop::Mode::external) {
      pool->watches = std::make_unique<WatchReporter>(
          c.socket_cb, c.socket_user_data, c.timer_cb, c.timer_user_data);
      pool->watches->report(pool->main().loop.base(), {});
    }
    *out = pool.release();
    return H2POOL_OK;
  });
}

namespace {

// The end of h2pool_destroy(), once the loop thread has finished: frees the
// pool as soon as no call is inside it any more.
void free_pool(h2pool *pool) {
  for (auto &shard : pool->shards)
    shard->resolver->shutdown();
  // Calls that came in during the shutdown were refused, but may still be
  // on their way out of the gate.
  pool->gate.wait_drained();
  // Logged after the pool is gone: a program that destroyed it from a
  // callback learns only from this message that nothing of the pool will
  // call it again, and may then free what its callbacks use.
  h2pool_core::Logger log = pool->log;
  delete pool;
  H2POOL_LOG(log, H2POOL_LOG_DEBUG, "pool destroyed");
}

// h2pool_destroy() of a pool on the caller's loop, once the gate is closed.
void destroy_on_callers_loop(h2pool *pool) {
  using Mode = h2pool_core::Loop::Mode;
  LoopShard &main = pool->main();
  h2pool_core::Loop &loop = main.loop;
  bool in_callback = !loop.on_loop_thread() || loop.driving() ||
                     pool->in_action || h2pool_core::CallbackScope::active();
  if (!in_callback) {
    // Between two loop turns, on the loop thread: nothing of the pool is on
    // the stack, so all of it can end here. The queued batch goes first, so
    // a request accepted before the gate closed is completed like the rest,
    // and a call on another thread waiting for the loop is answered.
    loop.close([&main] { main.pool->shutdown(); });
    loop.run_queued();
    if (pool->watches)
      pool->watches->report_none();
    free_pool(pool);
    return;
  }
  // Inside a callback (or on another thread): the shutdown runs on the loop
  // as the last queued task, and the pool is freed once no callback of its
  // is on the stack: on the base's next turn, or at the end of the
  // h2pool_socket_action() pass.
  loop.close([pool] {
    LoopShard &shard = pool->main();
    shard.pool->shutdown();
    if (shard.loop.mode() == Mode::external) {
      pool->finished = true;
      return;
    }
    static const timeval now{0, 0};
    if (event_base_once(
            shard.loop.base(), -1, EV_TIMEOUT,
            [](evutil_socket_t, short, void *arg) {
              free_pool(static_cast<h2pool *>(arg));
            },
            pool, &now) != 0) {
      // Without the one-shot event the pool cannot be freed safely from
      // here: leaking it is the lesser harm, and it is said.
      H2POOL_LOG(pool->log, H2POOL_LOG_ERROR,
                 "cannot schedule the pool's release on the event base; "
                 "the pool is leaked");
    }
  });
}

} // namespace

extern "C" {

int h2pool_socket_action(h2pool *pool, int fd, int events) {
  if (pool == nullptr || fd < H2POOL_SOCKET_TIMEOUT ||
      (events & ~(H2POOL_POLL_IN | H2POOL_POLL_OUT)) != 0 ||
      pool->main().loop.mode() != h2pool_core::Loop::Mode::external ||
      pool->in_action)
    return H2POOL_ERR_INVALID_ARGUMENT;
  // Not through the gate: only the loop thread frees a pool on the
  // caller's loop, and this is the loop thread.
  return guarded([&]() -> int {
    struct InAction {
      bool &flag;
      explicit InAction(bool &f) : flag(f) { flag = true; }
      ~InAction() { flag = false; }
    };
    {
      InAction in(pool->in_action);
      h2pool_core::Loop &loop = pool->main().loop;
      loop.drive();
      if (!pool->finished)
        pool->watches->report(loop.base(), loop.take_closed_sockets());
    }
    if (!pool->finished)
      return H2POOL_OK;
    pool->watches->report_none();
    free_pool(pool);
    return H2POOL_POOL_FREED;
  });
}

void h2pool_destroy(h2pool *pool) {
  if (pool == nullptr)
    return;
  {
    // Through the gate like any call, so that a second h2pool_destroy()
    // (from a callback the shutdown runs, or from another thread) sees the
    // first and returns without touching anything else.
    GateGuard in(pool->gate);
    if (!in || !pool->gate.close())
      return;
  }
  // From here every call is refused with H2POOL_ERR_POOL_CLOSED.
  if (pool->main().loop.mode() != h2pool_core::Loop::Mode::own_thread) {
    destroy_on_callers_loop(pool);
    return;
  }
  auto close_all = [pool] {
    for (auto &shard : pool->shards) {
      LoopShard *s = shard.get();
      s->loop.close([s] {
        s->pool->shutdown();
        s->loop.stop();
      });
    }
  };
  if (LoopShard *self = pool->current()) {
    // From a callback: the loop thread can neither join itself nor wait
    // here for calls on other threads (h2pool_stats_get() waits for this
    // very thread), so it finishes the shutdown after this callback returns
    // and frees the pool as its last act, once the other loops (which never
    // wait for this one) have ended.
    self->loop.set_exit_hook([pool, self] {
      for (auto &shard : pool->shards)
        if (shard.get() != self)
          shard->loop.join();
      self->loop.detach();
      free_pool(pool);
    });
    close_all();
    return;
  }
  // Calls that were under way when the gate closed finish against a working
  // pool: a request they submit is accepted, then completed by the shutdown.
  pool->gate.wait_drained();
  close_all();
  for (auto &shard : pool->shards)
    shard->loop.join();
  free_pool(pool);
}

int h2pool_request(h2pool *pool, const char *method, const char *url,
                   const h2pool_header *headers, size_t nheaders,
                   const uint8_t *body, size_t body_len,
                   const h2pool_request_opts *opts, h2pool_response_cb cb,
                   void *user_data, uint64_t *out_id) {
  if (out_id)
    *out_id = 0;
  if (cb == nullptr || (opts && opts->queue_upload))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return h2pool_core::submit_request(pool, method, url, headers, nheaders, body,
                                     body_len, opts, cb, user_data, out_id,
                                     nullptr);
}

} // extern "C"

// h2pool_request() and h2pool_queue_request(): a queued request is an
// ordinary one whose callbacks `call` installs.
int h2pool_core::submit_request(h2pool *pool, const char *method,
                                const char *url, const h2pool_header *headers,
                                size_t nheaders, const uint8_t *body,
                                size_t body_len,
                                const h2pool_request_opts *opts,
                                h2pool_response_cb cb, void *user_data,
                                uint64_t *out_id, QueueCall *call) {
  if (pool == nullptr || method == nullptr || url == nullptr ||
      (headers == nullptr && nheaders > 0) || (body == nullptr && body_len > 0))
    return H2POOL_ERR_INVALID_ARGUMENT;
  if (opts && (opts->body_reader || opts->queue_upload) &&
      (body != nullptr || body_len > 0))
    return H2POOL_ERR_INVALID_ARGUMENT; // one body source only
  // Declared first, so it is left after every other local is gone.
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  return guarded([&]() -> int {
    LoopShard &shard = pool->pick();
    bool loop_thread = shard.loop.on_loop_thread();
    std::unique_ptr<h2pool_core::Request> req =
        shard.requests.take(loop_thread);
    Unsubmitted unsubmitted(shard.requests, req, loop_thread);
    std::string why;
    int rc = h2pool_core::parse_url(url, &req->url, &why);
    if (rc != H2POOL_OK)
      return log_refusal(pool, rc, url, why);
    if (!h2pool_core::valid_method(method))
      return log_refusal(pool, H2POOL_ERR_INVALID_METHOD, method,
                         "not an HTTP token");
    h2pool_core::RequestHeaders normalized;
    normalized.fields.swap(req->headers); // a recycled request's capacity
    rc = h2pool_core::normalize_request_headers(headers, nheaders, &normalized,
                                                &why);
    if (rc != H2POOL_OK)
      return log_refusal(pool, rc, url, why);

    req->method = method;
    req->headers = std::move(normalized.fields);
    if (!normalized.authority.empty() &&
        normalized.authority != req->url.authority)
      req->make_rare().authority = std::move(normalized.authority);
    if (opts && (opts->body_reader || opts->queue_upload)) {
      int64_t length = opts->body_reader ? opts->body_content_length
                                         : opts->queue_upload_length;
      req->body_reader = opts->body_reader;
      req->body_content_length = length;
      req->add_content_length = length >= 0 && !normalized.has_content_length;
    } else if (body != nullptr) {
      if (opts && opts->body_release) {
        // Borrowed until released, whatever its length: the caller was
        // promised one release call for the pointer it gave.
        req->body_release = opts->body_release;
        req->body_data = body;
      } else if (body_len) {
        req->body_copy.reset(new uint8_t[body_len]);
        std::memcpy(req->body_copy.get(), body, body_len);
        req->body_data = req->body_copy.get();
      }
      req->body_size = body_len;
      req->add_content_length = body_len > 0 && !normalized.has_content_length;
    }
    if (opts) {
      req->on_headers = opts->on_headers;
      req->on_data = opts->on_data;
      req->auto_decompress = opts->auto_decompress;
      req->urgency = opts->urgency;
      req->incremental = opts->incremental;
    }
    if (normalized.has_priority) {
      // The caller's field is what the server sees, so it is also what
      // orders the pool's queue.
      h2pool_core::Priority p =
          h2pool_core::parse_priority(normalized.priority);
      req->urgency = p.urgency;
      req->incremental = p.incremental;
      req->caller_priority = true;
    }
    req->add_accept_encoding =
        req->auto_decompress && !normalized.has_accept_encoding;
    req->http_version =
        uint8_t((opts && opts->has_http_version) ? opts->http_version
                                                 : pool->config.http_version);
    req->timeout_ms = (opts && opts->has_timeout)
                          ? opts->timeout_ms
                          : pool->config.request_timeout_ms;
    if (opts && !opts->protocol.empty()) {
      rc = prepare_tunnel(*opts, normalized, req.get(), &why);
      if (rc != H2POOL_OK)
        return log_refusal(pool, rc, url, why);
    }
    req->cb = cb;
    req->user_data = user_data;

    // Reserve a place in the pending budget before queueing, so concurrent
    // callers cannot overshoot it together.
    uint64_t before = pool->waiting.fetch_add(1, std::memory_order_relaxed);
    if (before >= pool->config.max_pending_requests) {
      pool->waiting.fetch_sub(1, std::memory_order_relaxed);
      return H2POOL_ERR_QUEUE_FULL;
    }
    uint64_t sequence = pool->next_id.fetch_add(1, std::memory_order_relaxed);
    uint64_t id = ((sequence + 1) << pool->shard_bits) | shard.index;
    req->id = id;
    if (call) {
      if (call->streams_upload())
        pool->uploads.add(id, call->shared_from_this());
      call->attach(*req, id);
    }
    req->times().submitted = h2pool_core::monotonic_ns();
    rc = shard.loop.submit(std::move(req));
    if (rc != H2POOL_OK) {
      pool->waiting.fetch_sub(1, std::memory_order_relaxed);
      if (call) {
        if (call->streams_upload())
          pool->uploads.remove(id);
        call->detach();
      }
      return rc;
    }
    if (out_id)
      *out_id = id;
    return H2POOL_OK;
  });
}

extern "C" {

int h2pool_cancel(h2pool *pool, uint64_t id) {
  if (pool == nullptr || id == 0)
    return H2POOL_ERR_INVALID_ARGUMENT;
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  return guarded([&]() -> int { return pool->shard_of(id).loop.cancel(id); });
}

int h2pool_request_resume_upload(h2pool *pool, uint64_t id) {
  return post_request_op(pool, id, &h2pool_core::Pool::resume_upload);
}

int h2pool_request_pause_download(h2pool *pool, uint64_t id) {
  return post_request_op(pool, id, &h2pool_core::Pool::pause_download);
}

int h2pool_request_resume_download(h2pool *pool, uint64_t id) {
  return post_request_op(pool, id, &h2pool_core::Pool::resume_download);
}

int h2pool_request_set_priority(h2pool *pool, uint64_t id, int urgency,
                                int incremental) {
  if (pool == nullptr || id == 0 || urgency < 0 || urgency > 7 ||
      incremental < 0 || incremental > 1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  h2pool_core::Priority p{uint8_t(urgency), incremental != 0};
  return guarded([&]() -> int {
    LoopShard &shard = pool->shard_of(id);
    return shard.loop.post(
        [&shard, id, p] { shard.pool->set_priority(id, p); });
  });
}

int h2pool_stats_get(h2pool *pool, h2pool_stats **out) {
  if (out)
    *out = nullptr;
  if (pool == nullptr || out == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  // Inside the gate while it waits for the loop thread: h2pool_destroy()
  // waits for this call before it stops that thread.
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  return guarded([&]() -> int {
    if (pool->shards.size() == 1 && pool->main().loop.on_loop_thread()) {
      *out = pool->main().pool->snapshot();
      return H2POOL_OK;
    }
    if (pool->current())
      return H2POOL_ERR_WRONG_THREAD;
    // Asked of every loop at once, then merged: the figures are each
    // loop's at nearly the same moment.
    size_t n = pool->shards.size();
    std::vector<std::promise<h2pool_stats *>> promises(n);
    std::vector<std::future<h2pool_stats *>> futures;
    for (auto &p : promises)
      futures.push_back(p.get_future());
    std::vector<std::unique_ptr<h2pool_stats>> parts(n);
    int rc = H2POOL_OK;
    size_t posted = 0;
    for (; posted < n; ++posted) {
      LoopShard *shard = pool->shards[posted].get();
      std::promise<h2pool_stats *> *promise = &promises[posted];
      rc = shard->loop.post([shard, promise] {
        try {
          promise->set_value(shard->pool->snapshot());
        } catch (...) {
          promise->set_value(nullptr);
        }
      });
      if (rc != H2POOL_OK)
        break;
    }
    // Every posted task is waited for, even after a failure: each holds a
    // promise of this frame.
    for (size_t i = 0; i < posted; ++i)
      parts[i].reset(futures[i].get());
    if (rc != H2POOL_OK)
      return rc;
    for (auto &part : parts)
      if (!part)
        return H2POOL_ERR_NOMEM;
    for (size_t i = 1; i < n; ++i)
      h2pool_core::merge_stats(*parts[0], *parts[i]);
    *out = parts[0].release();
    return H2POOL_OK;
  });
}

} // extern "C"

// --- Completion queue (public C API) -----------------------------------------

h2pool_core::UploadRegistry &h2pool_core::upload_registry(h2pool *pool) {
  return pool->uploads;
}

int h2pool_core::post_to_loop(h2pool *pool, uint64_t id,
                              std::function<void()> task) {
  return pool->shard_of(id).loop.post(std::move(task));
}

namespace {

// Runs `fn(call)` for the streamed upload `id` of `pool`, inside the gate
// and `guarded`: H2POOL_ERR_NO_SUCH_REQUEST if there is none.
template <typename Fn> int with_upload(h2pool *pool, uint64_t id, Fn &&fn) {
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  return guarded([&]() -> int {
    std::shared_ptr<h2pool_core::QueueCall> call = pool->uploads.find(id);
    if (!call)
      return H2POOL_ERR_NO_SUCH_REQUEST;
    return fn(*call);
  });
}

} // namespace

extern "C" {

int h2pool_close_idle_connections(h2pool *pool) {
  if (pool == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  GateGuard in(pool->gate);
  if (!in)
    return H2POOL_ERR_POOL_CLOSED;
  return guarded([&]() -> int {
    for (auto &shard : pool->shards) {
      LoopShard *s = shard.get();
      int rc = s->loop.post([s] { s->pool->close_idle_connections(); });
      if (rc != H2POOL_OK)
        return rc;
    }
    return H2POOL_OK;
  });
}

int h2pool_queue_create(h2pool_queue **out) {
  if (out == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  return guarded([&]() -> int {
    auto queue = std::make_unique<h2pool_queue>();
    queue->core = std::make_shared<h2pool_core::QueueCore>();
    int rc = queue->core->init();
    if (rc != H2POOL_OK)
      return rc;
    *out = queue.release();
    return H2POOL_OK;
  });
}

int h2pool_queue_shutdown(h2pool_queue *queue) {
  if (queue == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  queue->core->shutdown();
  return H2POOL_OK;
}

void h2pool_queue_destroy(h2pool_queue *queue) {
  if (queue == nullptr)
    return;
  try {
    queue->core->destroy();
  } catch (...) {
    // Only the list of calls to cancel can fail to allocate; the calls
    // then run to their end, their events dropped.
  }
  delete queue;
}

int h2pool_queue_fd(const h2pool_queue *queue) {
  return queue ? queue->core->fd() : H2POOL_ERR_INVALID_ARGUMENT;
}

int h2pool_queue_next(h2pool_queue *queue, h2pool_event **events, size_t max,
                      int timeout_ms) {
  if (queue == nullptr || events == nullptr || max == 0 || timeout_ms < -1)
    return H2POOL_ERR_INVALID_ARGUMENT;
  if (max > size_t(INT32_MAX))
    max = size_t(INT32_MAX);
  return guarded(
      [&]() -> int { return queue->core->next(events, max, timeout_ms); });
}

int h2pool_queue_request(h2pool *pool, h2pool_queue *queue, const char *method,
                         const char *url, const h2pool_header *headers,
                         size_t nheaders, const uint8_t *body, size_t body_len,
                         const h2pool_request_opts *opts, void *user_data,
                         uint64_t *out_id) {
  if (out_id)
    *out_id = 0;
  if (queue == nullptr || pool == nullptr || method == nullptr ||
      url == nullptr)
    return H2POOL_ERR_INVALID_ARGUMENT;
  if (opts && (opts->body_reader || opts->body_release || opts->on_headers ||
               opts->on_data))
    return H2POOL_ERR_INVALID_ARGUMENT; // no callback runs for it
  return guarded([&]() -> int {
    h2pool_core::QueueCallOptions qo;
    if (opts) {
      qo.stream_response = opts->queue_streaming;
      qo.stream_upload = opts->queue_upload;
      qo.upload_length = opts->queue_upload_length;
      qo.download_buffer = opts->queue_download_buffer;
      qo.upload_buffer = opts->queue_upload_buffer;
    }
    auto call = std::make_shared<h2pool_core::QueueCall>(queue->core, pool,
                                                         user_data, qo);
    if (!queue->core->add_call(call.get()))
      return H2POOL_ERR_QUEUE_CLOSED;
    int rc = h2pool_core::submit_request(pool, method, url, headers, nheaders,
                                         body, body_len, opts, nullptr, nullptr,
                                         out_id, call.get());
    if (rc != H2POOL_OK)
      queue->core->remove_call(call.get());
    return rc;
  });
}

int h2pool_request_write_body(h2pool *pool, uint64_t id, const uint8_t *data,
                              size_t len, size_t *accepted) {
  if (accepted)
    *accepted = 0;
  if (pool == nullptr || id == 0 || accepted == nullptr ||
      (data == nullptr && len > 0))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return with_upload(pool, id, [&](h2pool_core::QueueCall &call) -> int {
    return call.write(data, len, accepted);
  });
}

int h2pool_request_end_body(h2pool *pool, uint64_t id,
                            const h2pool_header *trailers, size_t ntrailers) {
  if (pool == nullptr || id == 0 || (trailers == nullptr && ntrailers > 0))
    return H2POOL_ERR_INVALID_ARGUMENT;
  return with_upload(pool, id, [&](h2pool_core::QueueCall &call) -> int {
    h2pool_core::RequestHeaders normalized;
    std::string why;
    int rc = h2pool_core::normalize_request_headers(trailers, ntrailers,
                                                    &normalized, &why);
    if (rc != H2POOL_OK)
      return rc;
    // A trailer section may not carry what frames the message (RFC 9110
    // 6.5.1); content-length comes through `has_content_length`.
    if (!normalized.authority.empty() || normalized.has_content_length)
      return H2POOL_ERR_INVALID_HEADER;
    return call.end(std::move(normalized.fields));
  });
}

} // extern "C"
