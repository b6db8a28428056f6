#include "pool.h"
#include "callback_scope.h"

#include <algorithm>
#include <cassert>
#include <random>

namespace h2pool_core {
namespace {

// Deadline tags: which of a request's two deadlines fell due.
constexpr uint32_t kTimeoutTag = 0;
constexpr uint32_t kPhaseTag = 1;

void deadline_fired(void *, Deadline &d) {
  auto req = static_cast<Request *>(d.target);
  if (d.tag == kTimeoutTag)
    req->owner->on_request_timeout(*req);
  else
    req->owner->on_phase_timeout(*req);
}

// RFC 9110 section 9.2.2: repeating these has the effect of sending them once.
bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" ||
         method == "PUT" || method == "DELETE" || method == "TRACE";
}

// Streams we expect a connection still being set up to take: its local cap,
// or the 100 RFC 9113 recommends as the minimum servers should allow.
uint32_t expected_capacity(const Config &config) {
  return config.max_concurrent_streams
             ? std::min(config.max_concurrent_streams, 100u)
             : 100u;
}

// Request heads placed between serialisations (see place_queued()).
constexpr size_t kSerializeEvery = 64;

uint64_t seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ rd();
}

} // namespace

Pool::Pool(event_base *base, const Config &config, const Logger &log,
           Resolver &resolver, std::atomic<uint64_t> &waiting,
           std::shared_ptr<TlsContextSlot> tls, RequestCache &cache,
           PoolObserver *observer)
    : base_(base), config_(config), log_(log), resolver_(resolver),
      waiting_(waiting), tls_(std::move(tls)), cache_(cache),
      observer_(observer), rng_(seed()),
      deadlines_(base, deadline_fired, this) {
  ConnectionSettings &cs = connection_settings_;
  cs.connect.resolve_timeout_ms = config.resolve_timeout_ms;
  cs.connect.connect_timeout_ms = config.connect_timeout_ms;
  cs.connect.tls_handshake_timeout_ms = config.tls_handshake_timeout_ms;
  cs.connect.net = &config.net;
  cs.settings_timeout_ms = config.settings_timeout_ms;
  cs.idle_timeout_ms = config.idle_timeout_ms;
  cs.max_lifetime_ms = config.max_lifetime_ms;
  cs.max_streams_per_connection = config.max_requests_per_connection;
  H2Settings &h2 = cs.h2;
  h2.allocator = &session_alloc_;
  h2.local_max_streams = config.max_concurrent_streams;
  h2.stream_window_bytes = config.stream_window_bytes;
  h2.connection_window_bytes = config.connection_window_bytes;
  h2.adaptive_window = config.adaptive_window;
  h2.body_limits.max_body_bytes = config.max_response_body_bytes;
  h2.body_limits.decode.max_bytes = config.decode_max_bytes;
  h2.body_limits.decode.max_ratio = config.decode_max_ratio;
  h2.max_response_header_bytes = config.max_response_header_bytes;
  h2.max_response_header_fields = config.max_response_header_fields;
  h2.ping_interval_ms = config.ping_interval_ms;
  h2.ping_timeout_ms = config.ping_timeout_ms;
  h2.stale_after_idle_ms = config.stale_after_idle_ms;
  h2.stale_deadline_ms = config.stale_deadline_ms;
  H1Settings &h1 = cs.h1;
  h1.body_limits = h2.body_limits;
  h1.max_response_header_bytes = config.max_response_header_bytes;
  h1.max_response_header_fields = config.max_response_header_fields;
  h1.expect_continue_timeout_ms = config.expect_continue_timeout_ms;
  // Validated by h2pool_create() already.
  proxies_.init(config_, nullptr);
  reconnect_backoff_ = {config.reconnect_backoff_initial_ms,
                        config.reconnect_backoff_max_ms};
  retry_backoff_ = {config.retry_backoff_initial_ms,
                    config.retry_backoff_max_ms};
  dispatch_event_.reset(event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void *arg) {
        static_cast<Pool *>(arg)->dispatch_dirty();
      },
      this));
  reap_event_.reset(event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void *arg) {
        static_cast<Pool *>(arg)->reap();
      },
      this));
}

Pool::~Pool() {
  // shutdown() has normally run; this only frees what is left.
  requests_.for_each([this](uint64_t, Request *req) {
    deadlines_.disarm(req->timeout);
    deadlines_.disarm(req->phase_deadline);
  });
  graveyard_.clear();
  endpoints_.clear();
  // Last: the connections just destroyed may still have listed them.
  requests_.for_each([](uint64_t, Request *req) { delete req; });
  requests_.clear();
}

uint32_t Pool::linger_ms() const {
  return config_.idle_timeout_ms ? config_.idle_timeout_ms : 60000;
}

void Pool::handle(Loop::Batch &batch) {
  // Request timers count from now, not from the start of a loop turn that
  // began before some of these submissions were made: otherwise a timeout
  // could fire before timeout_ms had passed since h2pool_request().
  if (!batch.requests.empty())
    event_base_update_cache_time(base_);
  // Every request of the batch was submitted before the loop took it: one
  // reading taken now stamps the placements this batch makes.
  ClockPass pass;
  for (auto &req : batch.requests)
    accept(std::move(req));
  for (uint64_t id : batch.cancels)
    cancel(id);
  for (auto &task : batch.tasks)
    task();
  dispatch_dirty();
}

Endpoint &Pool::endpoint_for(Request &req) {
  // Most traffic goes to the endpoint the previous request went to: compare
  // the parts before building and hashing a key.
  const Url &u = req.url;
  bool https = u.scheme == Scheme::https;
  if (last_endpoint_ && last_endpoint_->port() == u.port &&
      last_endpoint_->https() == https &&
      last_endpoint_->http_version() == req.http_version &&
      last_endpoint_->host() == u.host())
    return *last_endpoint_;
  // An origin asked for in another version than the pool's is another
  // endpoint: its connections speak something else.
  std::string key = u.endpoint_name();
  if (req.http_version != config_.http_version)
    key += req.http_version == H2POOL_HTTP_VERSION_1_1 ? " (HTTP/1.1)"
           : req.http_version == H2POOL_HTTP_VERSION_2 ? " (HTTP/2)"
                                                       : " (any HTTP)";
  // Through a proxy, the route is part of the key (and of the name in
  // messages and statistics): NO_PROXY sends some origins direct.
  const ProxyTarget *proxy =
      proxies_.any() ? proxies_.route(https, std::string(u.host()), u.port)
                     : nullptr;
  if (proxy)
    key += " via " + proxy->name;
  auto it = endpoints_.find(key);
  if (it != endpoints_.end()) {
    last_endpoint_ = it->second.get();
    return *last_endpoint_;
  }
  auto ep = std::make_unique<Endpoint>(
      base_, *this, key, std::string(u.host()), u.port,
      https ? tls_->built() : nullptr, req.http_version, reconnect_backoff_,
      RetryBudget(config_.retry_budget_burst, config_.retry_budget_percent));
  if (proxy)
    ep->set_proxy(proxy, tls_->built());
  Endpoint &ref = *ep;
  endpoint_order_.push_back(&ref);
  endpoints_.emplace(std::move(key), std::move(ep));
  last_endpoint_ = &ref;
  return ref;
}

const TlsContext *Pool::tls_context(std::string *why) {
  const TlsContext *ctx = tls_->get(config_, why);
  if (!ctx)
    H2POOL_LOG(log_, H2POOL_LOG_ERROR, "%s", why->c_str());
  return ctx;
}

void Pool::accept(std::unique_ptr<Request> owned) {
  Request &req = *owned;
  // The map owns the request once the insertion (which may grow it, and so
  // throw) has succeeded.
  auto adopt = [&] {
    requests_.insert(req.id, &req);
    owned.release();
  };
  if (closing_) {
    adopt();
    Error e = make_error(H2POOL_ERR_POOL_CLOSED);
    finish(req, &e);
    return;
  }
  std::string why;
  bool needs_tls = req.url.scheme == Scheme::https;
  if (!needs_tls && proxies_.any()) {
    // An https:// proxy is reached over TLS whatever the origin's scheme.
    const ProxyTarget *proxy =
        proxies_.route(false, std::string(req.url.host()), req.url.port);
    needs_tls = proxy && proxy->kind == ProxyTarget::Kind::https;
  }
  if (needs_tls && !tls_context(&why)) {
    adopt();
    Error e = make_error(H2POOL_ERR_TLS_CONFIG, why);
    finish(req, &e);
    return;
  }
  Endpoint &ep = endpoint_for(req);
  req.owner = this;
  adopt();
  req.endpoint = &ep;
  ep.request_added();
  if (req.timeout_ms) {
    if (!deadlines_.arm(req.timeout, pass_now_ns(), req.timeout_ms, &req,
                        kTimeoutTag)) {
      Error e = make_error(H2POOL_ERR_NOMEM, "no memory for the timeout");
      finish(req, &e);
      return;
    }
  }
  req.state = Request::State::queued;
  ep.pending.push_back(&req);
  mark_dirty(ep);
}

void Pool::cancel(uint64_t id) {
  // Not found: already completed, and its result stands.
  if (Request *req = requests_.find(id))
    abort(*req, make_error(H2POOL_ERR_CANCELLED));
}

void Pool::on_request_timeout(Request &req) {
  // The pool's default timeout is meant for exchanges; an open tunnel
  // lives as long as its peers want (h2pool_request_opts_set_protocol()).
  if (req.timeout_until_open && req.tunnel_open())
    return;
  abort(req, make_error(H2POOL_ERR_TIMEOUT, "request timed out after " +
                                                std::to_string(req.timeout_ms) +
                                                " ms"));
}

void Pool::on_phase_timeout(Request &req) {
  Endpoint &ep = *req.endpoint;
  if (req.state == Request::State::retrying) {
    ep.retrying.remove(&req);
    req.state = Request::State::queued;
    ep.pending.push_front(&req);
    mark_dirty(ep);
    return;
  }
  if (req.got_headers || req.state != Request::State::in_flight)
    return; // headers arrived in time; the timer just was not cancelled
  abort(req, make_error(H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT,
                        "no response headers within " +
                            std::to_string(config_.response_header_timeout_ms) +
                            " ms of sending the request"));
}

void Pool::abort(Request &req, const Error &err) {
  if (Endpoint *ep = req.endpoint) {
    switch (req.state) {
    case Request::State::queued:
      ep->pending.remove(&req);
      break;
    case Request::State::retrying:
      ep->retrying.remove(&req);
      break;
    case Request::State::throttled:
      ep->throttled.remove(&req);
      break;
    case Request::State::in_flight:
      if (Connection *conn = connection_of(req))
        // RST_STREAM(CANCEL) tells the server to stop; the connection and
        // its other streams carry on.
        conn->reset(req, NGHTTP2_CANCEL);
      break;
    default:
      break;
    }
    mark_dirty(*ep);
  }
  finish(req, &err);
}

void Pool::finish(Request &req, const Error *err) {
  deadlines_.disarm(req.timeout);
  deadlines_.disarm(req.phase_deadline);
  if (req.counted_waiting) {
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    req.counted_waiting = false;
  }
  [[maybe_unused]] Request *found = requests_.erase(req.id);
  assert(found == &req);
  // Ownership passes from the map to here, and to the cache at the end,
  // once the callback can no longer look at the request.
  std::unique_ptr<Request> owned(&req);
  req.state = Request::State::done;
  // A success has a response (its HEADERS made it); should making one
  // fail here all the same, the request still completes, with an error.
  Error no_response;
  if (!err && !req.response) {
    try {
      req.resp();
    } catch (const std::bad_alloc &) {
      no_response = make_error(H2POOL_ERR_NOMEM, "out of memory");
      err = &no_response;
    }
  }
  if (Endpoint *ep = req.endpoint) {
    ++(err ? ep->counters.failed : ep->counters.completed);
    ep->request_done();
  }

  if (err && !req.times().has_connection && req.endpoint)
    // It failed waiting: what it waited for is the connection being set up.
    for (auto &conn : req.endpoint->connections)
      if (!conn->was_ready() && conn->state() != Connection::State::closed) {
        note_waited_for(req, *conn);
        break;
      }
  try {
    CallbackScope in_callback;
    if (req.body_release) {
      auto release = req.body_release;
      req.body_release = nullptr;
      release(req.body_data, req.user_data);
    }
    if (err) {
      Error e = *err;
      if (e.stream_id == 0)
        e.stream_id = req.stream_id;
      req.record_timings(&e);
      req.cb(req.got_headers ? req.response.get() : nullptr, &e, req.user_data);
    } else {
      req.record_timings(nullptr);
      req.cb(req.response.get(), nullptr, req.user_data);
    }
  } catch (...) {
    // A C++ callback that throws must not unwind through libevent or
    // nghttp2; its exception is dropped and the request stays completed.
    H2POOL_LOG(log_, H2POOL_LOG_ERROR,
               "completion callback of request %llu threw; ignored",
               (unsigned long long)req.id);
  }
  cache_.put(std::move(owned), /*loop_thread=*/true);
}

// --- retries -----------------------------------------------------------------

bool Pool::charge(Request &req, uint64_t conn_id) {
  if (req.charged_connection == conn_id)
    return true;
  req.charged_connection = conn_id;
  return ++req.failed_connections <= config_.max_retries;
}

Error Pool::gave_up(const Request &req, const Error &why) {
  Error e = why;
  e.message += " (gave up after " + std::to_string(req.failed_connections) +
               " failed connections)";
  return e;
}

void Pool::requeue(Endpoint &ep, Request &req) {
  ++ep.counters.retried;
  ++req.retries;
  req.state = Request::State::queued;
  // Front of the queue: it was accepted before everything still waiting.
  ep.pending.push_front(&req);
  mark_dirty(ep);
}

void Pool::retry_after(Endpoint &ep, Request &req, uint32_t delay_ms) {
  ++ep.counters.retried;
  ++req.retries;
  req.state = Request::State::retrying;
  ep.retrying.push_back(&req);
  // From now, not from the start of a pass that may have run long: a
  // refused request waits its full backoff (see connection_failed()).
  if (!deadlines_.arm(req.phase_deadline, monotonic_ns(), delay_ms, &req,
                      kPhaseTag)) {
    // Too short of memory to time the delay: retry without it.
    ep.retrying.remove(&req);
    req.state = Request::State::queued;
    ep.pending.push_front(&req);
  }
  mark_dirty(ep);
}

void Pool::release_throttled(Endpoint &ep) {
  while (!ep.throttled.empty() && ep.budget.take()) {
    Request *req = ep.throttled.pop_front();
    retry_after(ep, *req, retry_backoff_.delay_ms(req->retries + 1, rng_));
  }
}

void Pool::throttle(Endpoint &ep, Request &req) {
  req.state = Request::State::throttled;
  ep.throttled.push_back(&req);
  mark_dirty(ep);
}

void Pool::retry_unprocessed(Endpoint &ep, Connection &conn, Request &req,
                             const StreamEnd &end) {
  req.make_rare().retry_error = *end.unprocessed_why;
  deadlines_.disarm(req.phase_deadline); // the response-header timeout
  if (!req.body_replayable()) {
    Error e = req.retry_error();
    e.message += " (not retried: its body came from a reader and cannot be "
                 "sent again)";
    finish(req, &e);
    return;
  }
  // Above a GOAWAY on a connection that has not served: the connection is
  // failing, and this request waited on it.
  if (!end.refused && !conn.useful() && !charge(req, conn.id())) {
    Error e = gave_up(req, req.retry_error());
    finish(req, &e);
    return;
  }
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG,
             "request %llu: stream %d %s; retrying (retry %u)",
             (unsigned long long)req.id, req.stream_id,
             end.refused ? "refused" : req.retry_error().message.c_str(),
             req.retries + 1);
  if (!end.refused) {
    // The connection is going away; another one takes it at once.
    requeue(ep, req);
    return;
  }
  // Refused: the server is busy now. Come back later, on another
  // connection if there is one, and only as fast as the budget allows.
  req.refused_by = conn.id();
  uint32_t delay = retry_backoff_.delay_ms(req.retries + 1, rng_);
  if (req.timeout.armed() &&
      monotonic_ns() + int64_t(delay) * 1000000 >= req.timeout.when_ns) {
    Error e = req.retry_error();
    e.message += " (no time left to retry before the request's deadline)";
    finish(req, &e);
    return;
  }
  if (!ep.budget.take()) {
    throttle(ep, req);
    return;
  }
  retry_after(ep, req, delay);
}

std::vector<Request *> Pool::waiting_requests(Endpoint &ep) const {
  std::vector<Request *> out;
  out.reserve(ep.pending.size() + ep.retrying.size() + ep.throttled.size());
  ep.pending.for_each([&out](Request *r) { out.push_back(r); });
  for (RequestList *list : {&ep.retrying, &ep.throttled})
    for (Request *r = list->front(); r; r = r->next)
      out.push_back(r);
  return out;
}

void Pool::fail_waiting(Endpoint &ep, const Error &err) {
  for (Request *r : waiting_requests(ep))
    abort(*r, err);
}

// --- placement
// -----------------------------------------------------------------

void Pool::mark_dirty(Endpoint &ep) {
  if (ep.dirty)
    return;
  ep.dirty = true;
  dirty_.push_back(&ep);
  // Run after the current callback (an nghttp2 callback may have called us),
  // batching every change of this loop iteration into one pass.
  event_active(dispatch_event_.get(), EV_TIMEOUT, 0);
}

void Pool::dispatch_dirty() {
  // dispatch() may mark endpoints dirty again, so the pass works on its own
  // list while dirty_ collects into the spare one's capacity. (Were this
  // re-entered, the inner pass would find no spare and merely allocate.)
  std::vector<Endpoint *> work = std::move(spare_dirty_);
  work.swap(dirty_);
  for (Endpoint *ep : work) {
    ep->dirty = false;
    dispatch(*ep);
  }
  work.clear();
  spare_dirty_ = std::move(work);
}

Connection *Pool::busiest_with_room(Endpoint &ep, uint64_t except_id) {
  Connection *best = nullptr;
  for (auto &c : ep.connections)
    if (c->id() != except_id && c->has_free_slot() &&
        (!best || c->active_streams() > best->active_streams()))
      best = c.get();
  if (best || shareable_.empty() || !may_coalesce(ep))
    return best;
  for (Connection *c : shareable_)
    if (c->id() != except_id && c->has_free_slot() &&
        may_share(ep, *c, nullptr) &&
        (!best || c->active_streams() > best->active_streams()))
      best = c;
  return best;
}

// --- coalescing
// ----------------------------------------------------------------

bool Pool::may_coalesce(const Endpoint &ep) const {
  // A Unix socket leads wherever it leads, whatever the name: no address
  // to compare.
  return config_.coalescing && ep.https() && !ep.proxy() &&
         ep.http_version() != H2POOL_HTTP_VERSION_1_1 &&
         config_.net.unix_socket.length == 0;
}

bool Pool::may_share(const Endpoint &ep, const Connection &conn,
                     bool *need_lookup) const {
  const Endpoint *home = conn.endpoint();
  const CoalesceInfo &info = conn.coalesce();
  if (home == &ep || home->port() != ep.port() ||
      home->http_version() != ep.http_version() || home->proxy() ||
      conn.protocol() != H2POOL_PROTOCOL_HTTP_2 || info.excluded(ep.host()) ||
      !info.covers(ep.host(), ep.host_is_ip()))
    return false;
  // RFC 8336 section 2.4: with an origin set, DNS need not agree.
  if (info.has_origin_set())
    return info.in_origin_set(ep.host(), ep.port());
  if (ep.lookup.fresh(base_))
    return info.peer_in(ep.lookup.addresses());
  if (need_lookup)
    *need_lookup = true;
  return false;
}

bool Pool::look_up_for_sharing(Endpoint &ep) {
  if (ep.lookup.running())
    return true;
  if (shareable_.empty() || ep.lookup.fresh(base_) || !may_coalesce(ep))
    return false;
  bool need = false;
  for (Connection *c : shareable_) {
    may_share(ep, *c, &need);
    if (need)
      break;
  }
  if (!need)
    return false;
  Endpoint *target = &ep;
  ep.lookup.start(base_, resolver_, config_.net, ep.host(), ep.port(),
                  config_.resolve_timeout_ms,
                  [this, target] { mark_dirty(*target); });
  if (ep.lookup.running())
    return true;
  // Answered at once (an override or a literal): place what now fits.
  place_queued(ep);
  return false;
}

void Pool::retry_misdirected(Endpoint &ep, Connection &conn, Request &req) {
  conn.coalesce().exclude(ep.host());
  req.misdirected = false;
  req.coalesced = false;
  req.no_coalesce = true;
  deadlines_.disarm(req.phase_deadline); // the response-header timeout
  H2POOL_LOG(log_, H2POOL_LOG_INFO,
             "request %llu: 421 from connection %llu of %s; retrying on a "
             "connection of %s",
             (unsigned long long)req.id, (unsigned long long)conn.id(),
             conn.name().c_str(), ep.name().c_str());
  requeue(ep, req);
}

bool Pool::place(Endpoint &ep, Connection &conn, Request &req) {
  bool reused = conn.ever_used();
  int rc = conn.submit(req);
  if (rc == H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED) {
    // The request, not the connection, is what cannot go: the server's
    // SETTINGS (or HTTP/1.1) rule out its extended CONNECT, and every
    // connection to this server would say the same.
    Error e = make_error(rc, "server " + conn.name() +
                                 (conn.protocol() == H2POOL_PROTOCOL_HTTP_1_1
                                      ? " speaks HTTP/1.1, which has no "
                                        "extended CONNECT"
                                      : " did not enable extended CONNECT "
                                        "(SETTINGS_ENABLE_CONNECT_PROTOCOL)"));
    finish(req, &e);
    return true;
  }
  if (rc != H2POOL_OK) {
    conn.drain(); // it cannot take streams; stop offering it any
    return false;
  }
  req.state = Request::State::in_flight;
  req.refused_by = 0;
  req.coalesced = conn.endpoint() != &ep;
  if (req.coalesced) {
    ++ep.counters.coalesced;
    H2POOL_LOG(log_, H2POOL_LOG_DEBUG,
               "coalesced %s onto connection %llu of %s (request %llu)",
               ep.name().c_str(), (unsigned long long)conn.id(),
               conn.endpoint()->name().c_str(), (unsigned long long)req.id);
  }
  // Reused: up before the request came, or it has served another since.
  const ConnectionTimes &ct = conn.times();
  req.times().placed = std::max(pass_now_ns(), req.times().submitted);
  req.times().note_connection(ct, ct.established < req.times().submitted ||
                                      conn.exchanges_done() > 0);
  req.remote_ip = ct.remote_ip;
  req.remote_port = ct.remote_port;
  if (config_.response_header_timeout_ms &&
      !deadlines_.arm(req.phase_deadline, pass_now_ns(),
                      config_.response_header_timeout_ms, &req, kPhaseTag)) {
    // Too short of memory to time the headers: do without.
    H2POOL_LOG(log_, H2POOL_LOG_WARN,
               "request %llu: no memory for its response-header timeout",
               (unsigned long long)req.id);
  }
  if (req.counted_waiting) {
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    req.counted_waiting = false;
  }
  if (reused)
    ++ep.counters.reused;
  ep.counters.peak_streams =
      std::max<uint64_t>(ep.counters.peak_streams, conn.peak_streams());
  return true;
}

void Pool::place_queued(Endpoint &ep) {
  std::vector<Connection *> touched = std::move(spare_touched_);
  // Refused by the only connection with room; waiting for another.
  std::vector<Request *> deferred = std::move(spare_deferred_);
  touched.clear();
  deferred.clear();
  size_t placed = 0;
  while (!ep.pending.empty()) {
    Connection *target = busiest_with_room(ep, 0);
    if (!target)
      break;
    Request *req = ep.pending.pop_front();
    if (req->no_coalesce && target->endpoint() != &ep) {
      // Answered 421 on a shared connection: it waits for one of its own.
      deferred.push_back(req);
      continue;
    }
    if (req->refused_by == target->id()) {
      // The server refused this request on that connection: another one,
      // if there is or may be one; the same one only as a last resort.
      if (Connection *other = busiest_with_room(ep, target->id())) {
        target = other;
      } else if (ep.may_open(config_.max_connections_per_endpoint) ||
                 ep.setting_up() > 0) {
        deferred.push_back(req);
        continue;
      }
    }
    if (!place(ep, *target, *req)) {
      ep.pending.push_front(req);
      break;
    }
    if (std::find(touched.begin(), touched.end(), target) == touched.end())
      touched.push_back(target);
    // nghttp2 keeps each submitted request's HEADERS item and a copy of its
    // header list until the frame is serialised. Serialising every so many
    // placements, not only at the end, bounds that to a batch: a thousand
    // queued requests placed at once would otherwise hold a thousand of
    // each, and leave them in the session allocator's free lists after.
    if (++placed % kSerializeEvery == 0)
      for (Connection *c : touched)
        c->flush();
  }
  for (auto it = deferred.rbegin(); it != deferred.rend(); ++it)
    ep.pending.push_front(*it);
  for (Connection *c : touched)
    c->flush();
  spare_touched_ = std::move(touched);
  spare_deferred_ = std::move(deferred);
}

void Pool::dispatch(Endpoint &ep) {
  if (closing_)
    return;
  release_throttled(ep);
  place_queued(ep);
  // A connection it may share, once its host is looked up: nothing of its
  // own is opened meanwhile.
  bool looking_up = !ep.pending.empty() && look_up_for_sharing(ep);
  // Throttled requests with nothing under way that could refill the
  // budget would wait forever: the server refuses more than it serves.
  if (!ep.throttled.empty() && ep.pending.empty() && ep.retrying.empty() &&
      ep.active_streams() == 0) {
    while (Request *req = ep.throttled.front()) {
      Error e = req->retry_error();
      e.message += " (retry budget of " + ep.name() +
                   " exhausted: the server refuses more requests than it "
                   "serves)";
      abort(*req, e);
    }
  }
  // An HTTP/1.1 connection takes one request: a queue of n needs n of them
  // (up to the limit), where an HTTP/2 one is expected to take many.
  uint32_t per_connection = ep.protocol() == H2POOL_PROTOCOL_HTTP_1_1
                                ? 1
                                : expected_capacity(config_);
  size_t expected = ep.setting_up() * per_connection;
  while (!looking_up && ep.pending.size() > expected &&
         ep.may_open(config_.max_connections_per_endpoint)) {
    open_connection(ep);
    expected += per_connection;
  }
  ep.update_linger(linger_ms());
}

void Pool::open_connection(Endpoint &ep) {
  auto owned = std::make_unique<Connection>(
      base_, *this, log_, connection_settings_,
      next_connection_id_ += connection_id_step_, ep.target(), resolver_, &ep);
  Connection *conn = owned.get();
  ep.connections.push_back(std::move(owned));
  ep.on_connection_state(conn->state(), conn->state());
  ++ep.counters.created;
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: opening to %s",
             (unsigned long long)conn->id(), ep.name().c_str());
  observe(ep, *conn, PoolObserver::Event::opened);
  conn->start();
}

// --- connection events
// -----------------------------------------------------------

void Pool::on_connection_state(Connection &conn, Connection::State from,
                               Connection::State to) {
  conn.endpoint()->on_connection_state(from, to);
  if (to == Connection::State::settings)
    conn.endpoint()->set_protocol(conn.protocol());
  if (to == Connection::State::ready) {
    observe(*conn.endpoint(), conn, PoolObserver::Event::ready);
    if (conn.coalesce().has_certificate() &&
        conn.protocol() == H2POOL_PROTOCOL_HTTP_2 && !conn.endpoint()->proxy())
      shareable_.push_back(&conn);
  } else if (from == Connection::State::ready) {
    shareable_.erase(std::remove(shareable_.begin(), shareable_.end(), &conn),
                     shareable_.end());
  }
}

void Pool::on_tls_established(Connection &conn) {
  Endpoint &ep = *conn.endpoint();
  ++ep.counters.tls_handshakes;
  if (conn.tls_resumed())
    ++ep.counters.tls_resumed;
}

void Pool::on_connection_changed(Connection &conn) {
  mark_dirty(*conn.endpoint());
}

void Pool::on_connection_useful(Connection &conn) {
  Endpoint &ep = *conn.endpoint();
  ep.connection_useful();
  observe(ep, conn, PoolObserver::Event::useful);
  mark_dirty(ep);
}

void Pool::on_stream_closed(Connection &conn, Request &req,
                            const StreamEnd &end) {
  // Its own endpoint, whose connection `conn` may not be (coalescing).
  Endpoint &ep = *req.endpoint;
  if (req.coalesced)
    mark_dirty(ep); // a shared connection has room again for its queue
  if (req.misdirected && !closing_) {
    retry_misdirected(ep, conn, req);
    return;
  }
  if (req.local_error().code != H2POOL_OK) {
    Error e = req.local_error();
    finish(req, &e);
    return;
  }
  if (req.end_stream) {
    // Spent at once on a refused request that waits for it: a burst of
    // responses must not fill the bucket past its cap and lose the rest.
    ep.budget.earn();
    release_throttled(ep);
    if (req.download_paused && req.has_pending_body()) {
      // The caller paused this response and has not taken all of it: it
      // completes when resumed (or on cancel or timeout).
      req.state = Request::State::parked;
      return;
    }
    complete(req);
    return;
  }
  if (end.unprocessed && !closing_) {
    retry_unprocessed(ep, conn, req, end);
    return;
  }
  if (end.connection_error) {
    // Opt-in: a lost connection may have delivered the request or not; only
    // a method safe to repeat, with nothing received yet, goes again.
    if (config_.retry_idempotent && !closing_ && !req.response_begun &&
        end.connection_error->code == H2POOL_ERR_CONNECTION_LOST &&
        is_idempotent(req.method.view()) && req.body_replayable() &&
        req.body_bytes == 0) {
      if (charge(req, conn.id())) {
        requeue(ep, req);
        return;
      }
      Error e = gave_up(req, *end.connection_error);
      finish(req, &e);
      return;
    }
    finish(req, end.connection_error);
    return;
  }
  Error e = make_error(H2POOL_ERR_STREAM_RESET,
                       std::string("server reset the stream with ") +
                           http2_code_name(end.http2_code));
  e.http2_code = end.http2_code;
  if (end.http2_code == NGHTTP2_NO_ERROR) {
    e.code = H2POOL_ERR_PROTOCOL;
    e.message = "stream closed before the response was complete";
  }
  finish(req, &e);
}

void Pool::complete(Request &req) {
  if (end_body(req) != H2POOL_OK) {
    Error e = req.local_error();
    finish(req, &e);
    return;
  }
  finish(req, nullptr);
}

Request *Pool::find(uint64_t id) { return requests_.find(id); }

Connection *Pool::connection_of(Request &req) {
  if (req.state != Request::State::in_flight)
    return nullptr;
  for (auto &conn : req.endpoint->connections)
    if (conn->id() == req.connection_id)
      return conn.get();
  if (!req.coalesced)
    return nullptr;
  // On another endpoint's connection: ready ones first, then any (one
  // draining since).
  for (Connection *conn : shareable_)
    if (conn->id() == req.connection_id)
      return conn;
  for (Endpoint *ep : endpoint_order_)
    for (auto &conn : ep->connections)
      if (conn->id() == req.connection_id)
        return conn.get();
  return nullptr;
}

void Pool::resume_upload(uint64_t id) {
  Request *req = find(id);
  if (Connection *conn = req ? connection_of(*req) : nullptr)
    conn->resume_upload(*req);
}

void Pool::pause_download(uint64_t id) {
  if (Request *req = find(id))
    if (req->state == Request::State::in_flight && req->on_data)
      req->download_paused = true;
}

void Pool::resume_download(uint64_t id) {
  Request *req = find(id);
  if (!req || !req->download_paused)
    return;
  if (Connection *conn = connection_of(*req)) {
    conn->resume_download(*req);
    return;
  }
  if (req->state != Request::State::parked)
    return;
  size_t consumed;
  if (resume_body(*req, connection_settings_.h2.body_limits, &consumed) !=
      H2POOL_OK) {
    Error e = req->local_error();
    finish(*req, &e);
  } else if (!req->download_paused) {
    complete(*req);
  }
}

void Pool::set_priority(uint64_t id, Priority p) {
  Request *req = find(id);
  if (!req)
    return; // completed: nothing left to prioritise
  bool changed = req->urgency != p.urgency || req->incremental != p.incremental;
  if (req->state == Request::State::queued && changed) {
    // A new place in the queue: behind those already at its new urgency.
    Endpoint &ep = *req->endpoint;
    ep.pending.remove(req);
    req->urgency = p.urgency;
    req->incremental = p.incremental;
    ep.pending.push_back(req);
    return;
  }
  req->urgency = p.urgency;
  req->incremental = p.incremental;
  // On a stream: the server hears of it (HTTP/2 PRIORITY_UPDATE). Waiting
  // for a retry or the budget, it is sent with its new priority.
  if (Connection *conn = changed ? connection_of(*req) : nullptr)
    conn->update_priority(*req);
}

void Pool::close_idle_connections() {
  // Collected first: a connection that closes leaves its endpoint's list.
  std::vector<Connection *> idle;
  for (Endpoint *ep : endpoint_order_)
    for (auto &conn : ep->connections)
      if (conn->state() == Connection::State::ready &&
          conn->active_streams() == 0)
        idle.push_back(conn.get());
  for (Connection *conn : idle)
    conn->drain();
}

void Pool::on_connection_closed(Connection &conn, const Error &why) {
  Endpoint &ep = *conn.endpoint();
  ++ep.counters.closed;
  ep.counters.peak_streams =
      std::max<uint64_t>(ep.counters.peak_streams, conn.peak_streams());
  ep.counters.peak_stream_window = std::max<uint64_t>(
      ep.counters.peak_stream_window, conn.peak_stream_window());
  auto it = std::find_if(ep.connections.begin(), ep.connections.end(),
                         [&](const auto &c) { return c.get() == &conn; });
  if (it != ep.connections.end()) {
    graveyard_.push_back(std::move(*it));
    ep.connections.erase(it);
    event_active(reap_event_.get(), EV_TIMEOUT, 0);
  }
  mark_dirty(ep);
  if (closing_ || conn.useful() || conn.closed_by_us()) {
    observe(ep, conn, PoolObserver::Event::closed);
    return;
  }
  // It closed before it served anything: a failed connection.
  ++ep.counters.failed_connections;
  ep.connection_failed(rng_);
  observe(ep, conn, PoolObserver::Event::failed);
  observe(ep, conn, PoolObserver::Event::closed);
  Error err = why;
  if (err.goaway_last_stream_id >= 0)
    err.code = H2POOL_ERR_GOAWAY; // name what the server did
  if (!conn.was_ready()) {
    // It never got going (name, TCP, TLS, SETTINGS): that is the answer for
    // the requests waiting, unless another connection may still serve them.
    if (ep.live() == 0) {
      for (Request *r : waiting_requests(ep))
        note_waited_for(*r, conn);
      fail_waiting(ep, err);
    }
    return;
  }
  // It became ready and then went away before serving: each request that
  // waited on it counts it, so a server that always does this is tried a
  // bounded number of times.
  bool alone = ep.count(Connection::State::ready) == 0;
  for (Request *r : waiting_requests(ep))
    if ((alone || r->connection_id == conn.id()) && !charge(*r, conn.id()))
      abort(*r, gave_up(*r, err));
}

void Pool::note_waited_for(Request &req, const Connection &conn) {
  const ConnectionTimes &ct = conn.times();
  req.times().note_connection(ct, false);
  req.remote_ip = ct.remote_ip;
  req.remote_port = ct.remote_port;
}

void Pool::on_backoff_done(Endpoint &ep) { mark_dirty(ep); }

void Pool::on_endpoint_unused(Endpoint &ep) {
  if (ep.requests() > 0 || !ep.connections.empty() || ep.backing_off())
    return; // in use again; dispatch re-arms the timer when it is not
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "endpoint %s: unused, forgotten",
             ep.name().c_str());
  retired_.add(ep.counters);
  if (observer_)
    observer_->on_endpoint_forgotten(ep.name());
  if (last_endpoint_ == &ep)
    last_endpoint_ = nullptr;
  if (ep.dirty)
    dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), &ep), dirty_.end());
  endpoint_order_.erase(
      std::remove(endpoint_order_.begin(), endpoint_order_.end(), &ep),
      endpoint_order_.end());
  endpoints_.erase(ep.name()); // destroys `ep`
}

void Pool::reap() { graveyard_.clear(); }

void Pool::shutdown() {
  closing_ = true;
  Error closed = make_error(H2POOL_ERR_POOL_CLOSED,
                            "pool closed before the request completed");
  for (Endpoint *ep : endpoint_order_)
    fail_waiting(*ep, closed);
  // abort() erases from the map (moving other entries), and may finish more
  // requests than its own (a connection that fails as the reset goes out):
  // work from a copy of the ids, in submission order.
  std::vector<uint64_t> ids;
  ids.reserve(requests_.size());
  requests_.for_each([&](uint64_t id, Request *) { ids.push_back(id); });
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids)
    if (Request *req = requests_.find(id))
      abort(*req, closed);
  for (Endpoint *ep : endpoint_order_) {
    std::vector<Connection *> conns;
    for (auto &c : ep->connections)
      conns.push_back(c.get());
    for (Connection *c : conns)
      c->close(closed, /*by_us=*/true);
  }
  reap();
}

h2pool_stats *Pool::snapshot() const {
  auto stats = new h2pool_stats();
  auto fill = [](const Endpoint::Counters &c, StatValues &v) {
    v[H2POOL_STAT_CONNECTIONS_CREATED] = c.created;
    v[H2POOL_STAT_CONNECTIONS_REUSED] = c.reused;
    v[H2POOL_STAT_CONNECTIONS_CLOSED] = c.closed;
    v[H2POOL_STAT_CONNECTIONS_FAILED] = c.failed_connections;
    v[H2POOL_STAT_REQUESTS_COMPLETED] = c.completed;
    v[H2POOL_STAT_REQUESTS_FAILED] = c.failed;
    v[H2POOL_STAT_REQUESTS_RETRIED] = c.retried;
    v[H2POOL_STAT_TLS_HANDSHAKES] = c.tls_handshakes;
    v[H2POOL_STAT_TLS_RESUMED] = c.tls_resumed;
    v[H2POOL_STAT_REQUESTS_COALESCED] = c.coalesced;
    v[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION] = c.peak_streams;
    v[H2POOL_STAT_PEAK_STREAM_WINDOW] = c.peak_stream_window;
  };
  fill(retired_, stats->total);
  for (const Endpoint *ep : endpoint_order_) {
    StatValues v{};
    fill(ep->counters, v);
    v[H2POOL_STAT_REQUESTS_QUEUED] = ep->pending.size();
    v[H2POOL_STAT_REQUESTS_AWAITING_RETRY] =
        ep->retrying.size() + ep->throttled.size();
    uint64_t &peak = v[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION];
    for (const auto &conn : ep->connections) {
      if (conn->state() == Connection::State::closed)
        continue;
      ++v[H2POOL_STAT_CONNECTIONS_OPEN];
      if (conn->active_streams() == 0)
        ++v[H2POOL_STAT_CONNECTIONS_IDLE];
      v[H2POOL_STAT_STREAMS_ACTIVE] += conn->active_streams();
      peak = std::max<uint64_t>(peak, conn->peak_streams());
      uint64_t &window = v[H2POOL_STAT_PEAK_STREAM_WINDOW];
      window = std::max<uint64_t>(window, conn->peak_stream_window());
    }
    add_stat_values(stats->total, v);
    stats->endpoint_names.push_back(ep->name());
    stats->endpoint_states.push_back(int(ep->state()));
    stats->endpoint_protocols.push_back(ep->protocol());
    stats->endpoints.push_back(v);
  }
  return stats;
}

} // namespace h2pool_core
