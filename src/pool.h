// The pool proper: endpoints and their connections, stream placement,
// retries and their pacing, statistics. Runs entirely on the loop thread.
//
// Placement: a request goes to the busiest connection of its endpoint that
// still has a free stream slot (so lightly used connections can go idle
// and age out); with no free slot anywhere it waits in the endpoint's
// queue, and a new connection is opened while the queue holds more
// requests than the connections being set up are expected to take, as far
// as the endpoint allows (Endpoint::may_open).
//
// Failure is paced:
//  - A connection that closes before it served anything is a failed
//    connection: the endpoint backs off before the next one, and every
//    request that waited on it counts it; past max_retries such failures a
//    request fails with what the server did. A connection that fails during
//    setup with nothing else under way fails the requests waiting at once.
//  - A request the server provably did not process (REFUSED_STREAM, or a
//    stream above a GOAWAY's last stream id) goes again whatever its
//    method; a refused one after a jittered delay and only within the
//    endpoint's retry budget, both bounded by its deadline.
//  - A request whose response has begun is never sent again.
//
// Coalescing (coalesce.h): an https:// endpoint with no connection of its
// own that has room may place requests on a ready HTTP/2 connection of
// another endpoint (same port, HTTP version and TLS settings, no proxy)
// whose certificate covers its host, when its host resolves to that
// connection's address or the connection's ORIGIN frames list it. Its
// own lookup runs first (opening nothing meanwhile) when such a
// connection exists. A 421 on a shared connection sends the request again
// on a connection of its own origin.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backoff.h"
#include "config.h"
#include "connection.h"
#include "endpoint.h"
#include "id_map.h"
#include "log.h"
#include "loop.h"
#include "pool_observer.h"
#include "proxy.h"
#include "resolver.h"
#include "session_alloc.h"
#include "stats.h"

namespace h2pool_core {

class Pool final : public ConnectionOwner, public EndpointListener {
public:
  // `waiting` counts accepted requests that have no stream yet; the API
  // checks it against max_pending_requests on the callers' threads.
  // `tls` may be null: the context is then built on the first https://
  // request. (Loading the system trust store costs tens of milliseconds,
  // which pools that only speak h2c should not pay.)
  // Completed requests go back to `cache`, which must outlive the pool.
  // `observer` (may be null) is told of every connection's life; tests only.
  Pool(event_base *base, const Config &config, const Logger &log,
       Resolver &resolver, std::atomic<uint64_t> &waiting,
       std::shared_ptr<TlsContextSlot> tls, RequestCache &cache,
       PoolObserver *observer = nullptr);
  ~Pool();
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;

  // Takes a batch from the submission queue.
  void handle(Loop::Batch &batch);
  // Completes every outstanding request with H2POOL_ERR_POOL_CLOSED and closes
  // every connection.
  void shutdown();
  // Builds a snapshot of the statistics.
  h2pool_stats *snapshot() const;
  // Before the first request: this is loop `index` of `count` in one
  // h2pool (h2pool_config_set_loop_threads), so its connection ids are
  // those equal to `index` modulo `count`, unique across the loops.
  void set_id_space(uint32_t index, uint32_t count) {
    next_connection_id_ = index;
    connection_id_step_ = count;
  }

  // Loop thread, from h2pool_request_resume_upload() and friends.
  void resume_upload(uint64_t id);
  void pause_download(uint64_t id);
  void resume_download(uint64_t id);
  // From h2pool_request_set_priority(): re-queues a waiting request by its
  // new urgency, or tells the server of a request on a stream.
  void set_priority(uint64_t id, Priority p);
  // From h2pool_close_idle_connections(): drains every ready connection
  // that carries no stream, which closes it with GOAWAY at once.
  void close_idle_connections();

  // Where completed requests and their responses are recycled (loop
  // thread, for Request::resp()).
  RequestCache &cache() { return cache_; }

  // Request timers.
  void on_request_timeout(Request &req);
  void on_phase_timeout(Request &req);

  // ConnectionOwner.
  void on_connection_state(Connection &conn, Connection::State from,
                           Connection::State to) override;
  void on_tls_established(Connection &conn) override;
  void on_connection_changed(Connection &conn) override;
  void on_connection_useful(Connection &conn) override;
  void on_stream_closed(Connection &conn, Request &req,
                        const StreamEnd &end) override;
  void on_connection_closed(Connection &conn, const Error &why) override;

  // EndpointListener.
  void on_backoff_done(Endpoint &ep) override;
  void on_endpoint_unused(Endpoint &ep) override;

private:
  Endpoint &endpoint_for(Request &req);
  // The TLS context, built on first use; null (with `*why`) if it cannot be.
  const TlsContext *tls_context(std::string *why);
  void accept(std::unique_ptr<Request> req);
  void cancel(uint64_t id);
  // Takes `req` out of wherever it waits or runs, then finishes it.
  void abort(Request &req, const Error &err);
  void finish(Request &req, const Error *err);
  // Completes a request whose response ended: checks the decoder, then
  // finishes with success or the decoding error.
  void complete(Request &req);
  Request *find(uint64_t id);
  // The connection carrying `req`, or null if it is not in flight.
  Connection *connection_of(Request &req);

  // The server did not process `req` on `conn`: sends it again, paced, or
  // finishes it.
  void retry_unprocessed(Endpoint &ep, Connection &conn, Request &req,
                         const StreamEnd &end);
  // Counts the failure of connection `conn_id` against `req`, once per
  // connection. False once more than max_retries connections failed it.
  bool charge(Request &req, uint64_t conn_id);
  // `why`, saying that the request gave up after failed connections.
  static Error gave_up(const Request &req, const Error &why);
  // Back to the front of the queue, at once.
  void requeue(Endpoint &ep, Request &req);
  // Back to the queue after `delay_ms`.
  void retry_after(Endpoint &ep, Request &req, uint32_t delay_ms);
  // Waits for the endpoint's retry budget.
  void throttle(Endpoint &ep, Request &req);
  // Sends throttled requests on their way while the budget has retries.
  void release_throttled(Endpoint &ep);
  // Every request waiting on `ep` (queued, retrying or throttled), in
  // submission order as far as the lists keep it.
  std::vector<Request *> waiting_requests(Endpoint &ep) const;
  void fail_waiting(Endpoint &ep, const Error &err);
  // `req` waited for `conn` (still being set up, or failed doing so): its
  // timings report that connection's phases.
  void note_waited_for(Request &req, const Connection &conn);

  void mark_dirty(Endpoint &ep);
  void dispatch_dirty();
  // Re-evaluates an endpoint after any change: places queued requests,
  // releases or fails throttled ones, opens connections, starts or stops
  // the endpoint's linger timer.
  void dispatch(Endpoint &ep);
  void place_queued(Endpoint &ep);
  // The busiest connection of `ep` with a free stream slot, other than the
  // one with id `except_id`; null if none. Without one of its own, the
  // busiest connection of another endpoint it may share (may_share).
  Connection *busiest_with_room(Endpoint &ep, uint64_t except_id);

  // Coalescing.
  // Whether `ep` may use other endpoints' connections at all.
  bool may_coalesce(const Endpoint &ep) const;
  // Whether requests of `ep` may go on `conn` (a connection of another
  // endpoint) now. `need_lookup`, if not null, is set when only the
  // answer of ep's lookup is missing to decide.
  bool may_share(const Endpoint &ep, const Connection &conn,
                 bool *need_lookup) const;
  // Starts ep's lookup if a connection it may share waits for its answer.
  // True while the lookup runs: ep then opens no connection of its own.
  bool look_up_for_sharing(Endpoint &ep);
  // The server answered 421 to `req` on `conn`, shared with ep's origin:
  // the request goes again, on a connection of its own origin.
  void retry_misdirected(Endpoint &ep, Connection &conn, Request &req);
  // Opens a stream for `req` on `conn`; false (conn is then draining) if
  // the connection could not take it. True also when the request itself
  // cannot go on this server (an extended CONNECT it does not allow): it
  // is then finished with that error.
  bool place(Endpoint &ep, Connection &conn, Request &req);
  void open_connection(Endpoint &ep);
  void reap();
  void observe(const Endpoint &ep, const Connection &conn,
               PoolObserver::Event event) {
    if (observer_)
      observer_->on_connection_event(ep.name(), conn.id(), event);
  }
  // How long an unused endpoint is remembered.
  uint32_t linger_ms() const;

  event_base *base_;
  Config config_;
  const Logger &log_;
  Resolver &resolver_;
  std::atomic<uint64_t> &waiting_;
  std::shared_ptr<TlsContextSlot> tls_; // shared by the pool's loops
  RequestCache &cache_;
  PoolObserver *observer_;
  // Every nghttp2 session of this pool allocates here. Declared before
  // anything that holds connections, so it outlives their sessions.
  SessionAllocator session_alloc_;
  ConnectionSettings connection_settings_;
  BackoffPolicy reconnect_backoff_;
  BackoffPolicy retry_backoff_;
  mutable Rng rng_;
  // The requests' timeouts, response-header timeouts and retry delays.
  DeadlineQueue deadlines_;

  // Which origins go through which proxy; fixed for the pool's life, so
  // an origin's endpoint always has the same route.
  ProxyRules proxies_;
  std::unordered_map<std::string, std::unique_ptr<Endpoint>> endpoints_;
  std::vector<Endpoint *> endpoint_order_; // creation order, for stats
  // Ready HTTP/2 connections with a verified certificate: those other
  // endpoints may share.
  std::vector<Connection *> shareable_;
  Endpoint *last_endpoint_ = nullptr; // where the last request went
  // Counters of endpoints that have been evicted, so pool-wide totals
  // never go backwards.
  Endpoint::Counters retired_;
  // Every accepted request that has not finished, by id. The pool owns
  // them: accept() takes them in, finish() hands each to cache_ exactly
  // once, and the destructor frees any left.
  IdMap<Request> requests_;
  std::vector<Endpoint *> dirty_;
  // Buffers handed back and forth with dirty_ and dispatch()'s work lists,
  // so that dispatch passes reuse their capacity instead of allocating.
  std::vector<Endpoint *> spare_dirty_;
  std::vector<Connection *> spare_touched_;
  std::vector<Request *> spare_deferred_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  EventPtr dispatch_event_;
  EventPtr reap_event_;
  uint64_t next_connection_id_ = 0;
  uint64_t connection_id_step_ = 1;
  bool closing_ = false;
};

} // namespace h2pool_core
