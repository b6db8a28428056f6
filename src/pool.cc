#include "pool.h"

#include <algorithm>
#include <cassert>

namespace h2pool_core {
namespace {

void request_timer_cb(evutil_socket_t, short, void *arg) {
  auto req = static_cast<Request *>(arg);
  static_cast<Pool *>(req->owner)->on_request_timeout(*req);
}

void header_timer_cb(evutil_socket_t, short, void *arg) {
  auto req = static_cast<Request *>(arg);
  static_cast<Pool *>(req->owner)->on_header_timeout(*req);
}

// RFC 9110 section 9.2.2: repeating these has the effect of sending them once.
bool is_idempotent(const std::string &method) {
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

} // namespace

Pool::Pool(event_base *base, const Config &config, const Logger &log,
           Resolver &resolver, std::atomic<uint64_t> &waiting,
           std::unique_ptr<TlsContext> tls, RequestCache &cache)
    : base_(base), config_(config), log_(log), resolver_(resolver),
      waiting_(waiting), tls_(std::move(tls)), cache_(cache) {
  connection_settings_.allocator = &session_alloc_;
  connection_settings_.connect_timeout_ms = config.connect_timeout_ms;
  connection_settings_.settings_timeout_ms = config.settings_timeout_ms;
  connection_settings_.tls_handshake_timeout_ms =
      config.tls_handshake_timeout_ms;
  connection_settings_.idle_timeout_ms = config.idle_timeout_ms;
  connection_settings_.max_lifetime_ms = config.max_lifetime_ms;
  connection_settings_.local_max_streams = config.max_concurrent_streams;
  connection_settings_.stream_window_bytes = config.stream_window_bytes;
  connection_settings_.connection_window_bytes = config.connection_window_bytes;
  connection_settings_.body_limits.max_body_bytes =
      config.max_response_body_bytes;
  connection_settings_.body_limits.decode.max_bytes = config.decode_max_bytes;
  connection_settings_.body_limits.decode.max_ratio = config.decode_max_ratio;
  connection_settings_.max_response_header_bytes =
      config.max_response_header_bytes;
  connection_settings_.max_response_header_fields =
      config.max_response_header_fields;
  connection_settings_.ping_interval_ms = config.ping_interval_ms;
  connection_settings_.ping_timeout_ms = config.ping_timeout_ms;
  connection_settings_.max_streams_per_connection =
      config.max_requests_per_connection;
  if (config.response_header_timeout_ms) {
    timeval tv = ms_to_timeval(config.response_header_timeout_ms);
    header_timeout_ = event_base_init_common_timeout(base_, &tv);
  }
  if (config.request_timeout_ms) {
    // Requests with the pool's default timeout all expire in submission
    // order, which libevent's common-timeout queue handles in O(1).
    timeval tv = ms_to_timeval(config.request_timeout_ms);
    default_timeout_ = event_base_init_common_timeout(base_, &tv);
  }
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
  requests_.for_each([](uint64_t, Request *req) {
    if (req->timer_armed)
      event_del(&req->timer);
    if (req->header_timer_armed)
      event_del(&req->header_timer);
  });
  graveyard_.clear();
  endpoints_.clear();
  // Last: the connections just destroyed may still have listed them.
  requests_.for_each([](uint64_t, Request *req) { delete req; });
  requests_.clear();
}

void Pool::handle(Loop::Batch &batch) {
  for (auto &req : batch.requests)
    accept(std::move(req));
  for (uint64_t id : batch.cancels)
    cancel(id);
  for (auto &task : batch.tasks)
    task();
  dispatch_dirty();
}

Pool::Endpoint &Pool::endpoint_for(Request &req) {
  // Most traffic goes to the endpoint the previous request went to: compare
  // the parts before building and hashing a key.
  const Url &u = req.url;
  if (last_endpoint_ && last_endpoint_->port == u.port &&
      last_endpoint_->https == (u.scheme == Scheme::https) &&
      last_endpoint_->host == u.host)
    return *last_endpoint_;
  std::string key = u.endpoint_name();
  auto it = endpoints_.find(key);
  if (it != endpoints_.end()) {
    last_endpoint_ = it->second.get();
    return *last_endpoint_;
  }
  auto ep = std::make_unique<Endpoint>();
  ep->name = key;
  ep->host = u.host;
  ep->port = u.port;
  ep->https = u.scheme == Scheme::https;
  if (ep->https) {
    ep->tls.context = tls_.get();
    ep->tls.host = u.host;
    ep->tls.host_is_ip = u.host_is_ipv6 || parse_ip_literal(u.host, 0, nullptr);
    ep->tls.sessions = &ep->tls_sessions;
  }
  Endpoint &ref = *ep;
  endpoint_order_.push_back(&ref);
  endpoints_.emplace(std::move(key), std::move(ep));
  last_endpoint_ = &ref;
  return ref;
}

const TlsContext *Pool::tls_context(std::string *why) {
  if (!tls_ && TlsContext::create(config_, &tls_, why) != H2POOL_OK)
    H2POOL_LOG(log_, H2POOL_LOG_ERROR, "%s", why->c_str());
  return tls_.get();
}

Pool::Endpoint &Pool::endpoint_of(const Connection &conn) {
  return *connection_endpoint_.at(&conn);
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
  if (req.url.scheme == Scheme::https && !tls_context(&why)) {
    adopt();
    Error e = make_error(H2POOL_ERR_TLS_CONFIG, why);
    finish(req, &e);
    return;
  }
  Endpoint &ep = endpoint_for(req);
  req.owner = this;
  req.endpoint = &ep;
  adopt();
  if (req.timeout_ms) {
    event_assign(&req.timer, base_, -1, 0, request_timer_cb, &req);
    timeval tv = ms_to_timeval(req.timeout_ms);
    const timeval *when =
        (default_timeout_ && req.timeout_ms == config_.request_timeout_ms)
            ? default_timeout_
            : &tv;
    event_add(&req.timer, when);
    req.timer_armed = true;
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
  req.timer_armed = false;
  abort(req, make_error(H2POOL_ERR_TIMEOUT, "request timed out after " +
                                                std::to_string(req.timeout_ms) +
                                                " ms"));
}

void Pool::on_header_timeout(Request &req) {
  req.header_timer_armed = false;
  if (req.got_headers || req.state != Request::State::in_flight)
    return; // headers arrived in time; the timer just was not cancelled
  abort(req, make_error(H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT,
                        "no response headers within " +
                            std::to_string(config_.response_header_timeout_ms) +
                            " ms of sending the request"));
}

void Pool::abort(Request &req, const Error &err) {
  auto &ep = *static_cast<Endpoint *>(req.endpoint);
  if (req.state == Request::State::queued) {
    ep.pending.remove(&req);
  } else if (Connection *conn = connection_of(req)) {
    // RST_STREAM(CANCEL) tells the server to stop; the connection and its
    // other streams carry on.
    conn->reset(req, NGHTTP2_CANCEL);
  }
  finish(req, &err);
}

void Pool::finish(Request &req, const Error *err) {
  if (req.timer_armed) {
    event_del(&req.timer);
    req.timer_armed = false;
  }
  if (req.header_timer_armed) {
    event_del(&req.header_timer);
    req.header_timer_armed = false;
  }
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
  if (auto ep = static_cast<Endpoint *>(req.endpoint))
    ++(err ? ep->counters.failed : ep->counters.completed);

  req.response.request_id = req.id;
  try {
    if (req.body_release) {
      auto release = req.body_release;
      req.body_release = nullptr;
      release(req.body_data, req.user_data);
    }
    if (err) {
      Error e = *err;
      if (e.stream_id == 0)
        e.stream_id = req.response.stream_id;
      req.cb(req.got_headers ? &req.response : nullptr, &e, req.user_data);
    } else {
      req.cb(&req.response, nullptr, req.user_data);
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

void Pool::retry(Endpoint &ep, Request &req) {
  ++ep.counters.retried;
  if (req.header_timer_armed) {
    event_del(&req.header_timer);
    req.header_timer_armed = false;
  }
  req.state = Request::State::queued;
  // Front of the queue: it was accepted before everything still waiting.
  ep.pending.push_front(&req);
  mark_dirty(ep);
}

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
  return best;
}

bool Pool::place(Endpoint &ep, Connection &conn, Request &req) {
  bool reused = conn.ever_used();
  if (conn.submit(req) != H2POOL_OK) {
    conn.drain(); // it cannot take streams; stop offering it any
    return false;
  }
  req.state = Request::State::in_flight;
  req.refused_by = 0;
  if (header_timeout_) {
    if (req.header_timer_armed)
      event_del(&req.header_timer);
    event_assign(&req.header_timer, base_, -1, 0, header_timer_cb, &req);
    event_add(&req.header_timer, header_timeout_);
    req.header_timer_armed = true;
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

void Pool::dispatch(Endpoint &ep) {
  if (closing_)
    return;
  std::vector<Connection *> touched = std::move(spare_touched_);
  // Refused by the only connection with room; waiting for another.
  std::vector<Request *> deferred = std::move(spare_deferred_);
  touched.clear();
  deferred.clear();
  size_t live = 0;
  for (auto &c : ep.connections)
    live += c->is_healthy();
  while (!ep.pending.empty()) {
    Connection *target = busiest_with_room(ep, 0);
    if (!target)
      break;
    Request *req = ep.pending.pop_front();
    if (req->refused_by == target->id()) {
      // The server refused this request on that connection: another one,
      // if there is or may be one; the same one only as a last resort.
      if (Connection *other = busiest_with_room(ep, target->id())) {
        target = other;
      } else if (live < config_.max_connections_per_endpoint ||
                 std::any_of(ep.connections.begin(), ep.connections.end(),
                             [&](const auto &c) { return c->is_pending(); })) {
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
  }
  for (auto it = deferred.rbegin(); it != deferred.rend(); ++it)
    ep.pending.push_front(*it);
  for (Connection *c : touched)
    c->flush();
  spare_touched_ = std::move(touched);
  spare_deferred_ = std::move(deferred);

  if (ep.pending.empty() || ep.setup_failing)
    return;
  size_t healthy = 0, expected = 0;
  for (auto &c : ep.connections) {
    if (!c->is_healthy())
      continue;
    ++healthy;
    if (c->is_pending())
      expected += expected_capacity(config_);
  }
  while (ep.pending.size() > expected &&
         healthy < config_.max_connections_per_endpoint) {
    open_connection(ep);
    ++healthy;
    expected += expected_capacity(config_);
  }
}

void Pool::open_connection(Endpoint &ep) {
  auto owned = std::make_unique<Connection>(
      base_, *this, log_, connection_settings_, ++next_connection_id_, ep.name,
      ep.tls.context ? &ep.tls : nullptr);
  Connection *conn = owned.get();
  ep.connections.push_back(std::move(owned));
  connection_endpoint_[conn] = &ep;
  ++ep.counters.created;
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: opening to %s",
             (unsigned long long)conn->id(), ep.name.c_str());
  Address literal;
  if (parse_ip_literal(ep.host, ep.port, &literal)) {
    conn->connect({literal});
    return;
  }
  resolver_.resolve(ep.host, ep.port,
                    [conn, alive = conn->liveness()](
                        std::string error, std::vector<Address> addresses) {
                      if (alive.expired())
                        return; // the connection went away meanwhile
                      if (!error.empty())
                        conn->fail(make_error(H2POOL_ERR_RESOLVE, error));
                      else
                        conn->connect(std::move(addresses));
                    });
}

void Pool::on_tls_established(Connection &conn) {
  Endpoint &ep = endpoint_of(conn);
  if (conn.is_tls()) {
    ++ep.counters.tls_handshakes;
    if (conn.tls_resumed())
      ++ep.counters.tls_resumed;
  }
}

void Pool::on_connection_changed(Connection &conn) {
  Endpoint &ep = endpoint_of(conn);
  if (conn.was_ready())
    ep.setup_failing = false;
  mark_dirty(ep);
}

void Pool::on_stream_closed(Connection &conn, Request &req,
                            const StreamEnd &end) {
  // A request only ever goes to connections of its own endpoint.
  Endpoint &ep = *static_cast<Endpoint *>(req.endpoint);
  assert(&ep == &endpoint_of(conn));
  if (req.local_error.code != H2POOL_OK) {
    Error e = req.local_error;
    finish(req, &e);
    return;
  }
  if (req.end_stream) {
    if (req.download_paused && req.has_pending_body()) {
      // The caller paused this response and has not taken all of it: it
      // completes when resumed (or on cancel or timeout).
      req.state = Request::State::parked;
      return;
    }
    complete(req);
    return;
  }
  int32_t stream_id = req.response.stream_id;
  // The server promises it never processed streams above a GOAWAY's last
  // stream id, nor refused streams; either may go to another connection
  // whatever the method.
  bool above_goaway =
      conn.goaway_received() && stream_id > conn.goaway_last_stream_id();
  bool refused = !end.connection_error &&
                 end.http2_code == NGHTTP2_REFUSED_STREAM && !req.got_headers;
  if ((above_goaway || refused) && !closing_) {
    if (req.attempts <= config_.max_retries && req.body_replayable()) {
      req.refused_by = conn.id();
      H2POOL_LOG(log_, H2POOL_LOG_DEBUG,
                 "request %llu: stream %d %s; retrying (attempt %u)",
                 (unsigned long long)req.id, stream_id,
                 above_goaway ? "above GOAWAY last_stream_id" : "refused",
                 req.attempts + 1);
      retry(ep, req);
      return;
    }
    Error e;
    if (above_goaway) {
      // nghttp2 closes the streams above last_stream_id as the GOAWAY
      // arrives, before the connection ends: describe the GOAWAY itself.
      e = conn.goaway_error();
      e.code = H2POOL_ERR_GOAWAY;
    } else {
      e = make_error(H2POOL_ERR_REFUSED_STREAM);
      e.http2_code = NGHTTP2_REFUSED_STREAM;
    }
    e.message +=
        " (gave up after " + std::to_string(req.attempts) + " attempts)";
    finish(req, &e);
    return;
  }
  if (end.connection_error) {
    // Opt-in: a lost connection may have delivered the request or not; only
    // a method safe to repeat, with nothing received yet, goes again.
    if (config_.retry_idempotent && !closing_ && !req.got_headers &&
        end.connection_error->code == H2POOL_ERR_CONNECTION_LOST &&
        is_idempotent(req.method) && req.attempts <= config_.max_retries &&
        req.body_replayable() && req.body_bytes == 0) {
      retry(ep, req);
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
    Error e = req.local_error;
    finish(req, &e);
    return;
  }
  finish(req, nullptr);
}

Request *Pool::find(uint64_t id) { return requests_.find(id); }

Connection *Pool::connection_of(Request &req) {
  if (req.state != Request::State::in_flight)
    return nullptr;
  auto &ep = *static_cast<Endpoint *>(req.endpoint);
  for (auto &conn : ep.connections)
    if (conn->id() == req.response.connection_id)
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
  if (resume_body(*req, connection_settings_.body_limits, &consumed) !=
      H2POOL_OK) {
    Error e = req->local_error;
    finish(*req, &e);
  } else if (!req->download_paused) {
    complete(*req);
  }
}

void Pool::on_connection_closed(Connection &conn, const Error &why) {
  Endpoint &ep = endpoint_of(conn);
  ++ep.counters.closed;
  ep.counters.peak_streams =
      std::max<uint64_t>(ep.counters.peak_streams, conn.peak_streams());
  auto it = std::find_if(ep.connections.begin(), ep.connections.end(),
                         [&](const auto &c) { return c.get() == &conn; });
  if (it != ep.connections.end()) {
    graveyard_.push_back(std::move(*it));
    ep.connections.erase(it);
    event_active(reap_event_.get(), EV_TIMEOUT, 0);
  }
  if (closing_)
    return;
  // A connection that failed during setup is the answer for the requests
  // waiting on it, unless another connection may still serve them.
  if (!conn.was_ready()) {
    ep.setup_failing = true;
    bool others = std::any_of(ep.connections.begin(), ep.connections.end(),
                              [](const auto &c) { return c->is_healthy(); });
    if (!others) {
      ep.setup_failing = false;
      fail_pending(ep, why);
    }
  }
  if (!ep.pending.empty())
    mark_dirty(ep);
}

void Pool::fail_pending(Endpoint &ep, const Error &err) {
  while (Request *req = ep.pending.pop_front())
    finish(*req, &err);
}

void Pool::reap() {
  for (auto &conn : graveyard_)
    connection_endpoint_.erase(conn.get());
  graveyard_.clear();
}

void Pool::shutdown() {
  closing_ = true;
  Error closed = make_error(H2POOL_ERR_POOL_CLOSED,
                            "pool closed before the request completed");
  for (Endpoint *ep : endpoint_order_)
    fail_pending(*ep, closed);
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
      c->close(closed, /*clean=*/true);
  }
  reap();
}

h2pool_stats *Pool::snapshot() const {
  auto stats = new h2pool_stats();
  for (const Endpoint *ep : endpoint_order_) {
    StatValues v{};
    const Counters &c = ep->counters;
    v[H2POOL_STAT_CONNECTIONS_CREATED] = c.created;
    v[H2POOL_STAT_CONNECTIONS_REUSED] = c.reused;
    v[H2POOL_STAT_CONNECTIONS_CLOSED] = c.closed;
    v[H2POOL_STAT_REQUESTS_COMPLETED] = c.completed;
    v[H2POOL_STAT_REQUESTS_FAILED] = c.failed;
    v[H2POOL_STAT_REQUESTS_RETRIED] = c.retried;
    v[H2POOL_STAT_REQUESTS_QUEUED] = ep->pending.size();
    v[H2POOL_STAT_TLS_HANDSHAKES] = c.tls_handshakes;
    v[H2POOL_STAT_TLS_RESUMED] = c.tls_resumed;
    uint64_t peak = c.peak_streams;
    for (const auto &conn : ep->connections) {
      if (conn->state() == Connection::State::closed)
        continue;
      ++v[H2POOL_STAT_CONNECTIONS_OPEN];
      if (conn->active_streams() == 0)
        ++v[H2POOL_STAT_CONNECTIONS_IDLE];
      v[H2POOL_STAT_STREAMS_ACTIVE] += conn->active_streams();
      peak = std::max<uint64_t>(peak, conn->peak_streams());
    }
    v[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION] = peak;
    for (size_t i = 0; i < kStatCount; ++i) {
      if (i == H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION)
        stats->total[i] = std::max(stats->total[i], v[i]);
      else
        stats->total[i] += v[i];
    }
    stats->endpoint_names.push_back(ep->name);
    stats->endpoints.push_back(v);
  }
  return stats;
}

} // namespace h2pool_core
