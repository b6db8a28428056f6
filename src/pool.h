// The pool proper: endpoints, their pending queues and connections, stream
// placement, retries and statistics. Runs entirely on the loop thread.
//
// Placement policy: a request goes to the busiest connection of its endpoint
// that still has a free stream slot (so lightly used connections can go idle
// and age out); with no free slot anywhere it waits in the endpoint's queue,
// and a new connection is opened while the queue holds more requests than
// the connections being set up are expected to take, up to the per-endpoint
// limit.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "connection.h"
#include "id_map.h"
#include "log.h"
#include "loop.h"
#include "resolver.h"
#include "session_alloc.h"
#include "stats.h"

namespace h2pool_core {

class Pool final : public ConnectionOwner {
public:
  // `waiting` counts accepted requests that have no stream yet; the API
  // checks it against max_pending_requests on the callers' threads.
  // `tls` may be null: the context is then built on the first https://
  // request. (Loading the system trust store costs tens of milliseconds,
  // which pools that only speak h2c should not pay.)
  // Completed requests go back to `cache`, which must outlive the pool.
  Pool(event_base *base, const Config &config, const Logger &log,
       Resolver &resolver, std::atomic<uint64_t> &waiting,
       std::unique_ptr<TlsContext> tls, RequestCache &cache);
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

  // Loop thread, from h2pool_request_resume_upload() and friends.
  void resume_upload(uint64_t id);
  void pause_download(uint64_t id);
  void resume_download(uint64_t id);

  void on_request_timeout(Request &req);
  void on_header_timeout(Request &req);

  // ConnectionOwner.
  void on_tls_established(Connection &conn) override;
  void on_connection_changed(Connection &conn) override;
  void on_stream_closed(Connection &conn, Request &req,
                        const StreamEnd &end) override;
  void on_connection_closed(Connection &conn, const Error &why) override;

private:
  struct Counters {
    uint64_t created = 0, reused = 0, closed = 0;
    uint64_t completed = 0, failed = 0, retried = 0;
    uint64_t peak_streams = 0;
    uint64_t tls_handshakes = 0, tls_resumed = 0;
  };
  struct Endpoint {
    std::string name;
    std::string host;
    uint16_t port = 0;
    bool https = false;
    TlsSessionCache tls_sessions;
    TlsTarget tls; // context null for http:// endpoints
    RequestList pending;
    std::vector<std::unique_ptr<Connection>> connections;
    Counters counters;
    bool dirty = false; // needs a dispatch pass
    // A connection failed during setup and none has succeeded since: open
    // no more until the ones under way resolve it, so an unreachable server
    // costs one failed connection per wave of requests, not one per request.
    bool setup_failing = false;
  };

  Endpoint &endpoint_for(Request &req);
  // The TLS context, built on first use; null (with `*why`) if it cannot be.
  const TlsContext *tls_context(std::string *why);
  Endpoint &endpoint_of(const Connection &conn);
  void accept(std::unique_ptr<Request> req);
  void cancel(uint64_t id);
  void abort(Request &req, const Error &err);
  void retry(Endpoint &ep, Request &req);
  void finish(Request &req, const Error *err);
  // Completes a request whose response ended: checks the decoder, then
  // finishes with success or the decoding error.
  void complete(Request &req);
  Request *find(uint64_t id);
  // The connection carrying `req`, or null if it is not in flight.
  Connection *connection_of(Request &req);
  void mark_dirty(Endpoint &ep);
  void dispatch_dirty();
  void dispatch(Endpoint &ep);
  // The busiest connection of `ep` with a free stream slot, other than the
  // one with id `except_id`; null if none.
  Connection *busiest_with_room(Endpoint &ep, uint64_t except_id);
  // Opens a stream for `req` on `conn`; false (conn is then draining) if
  // the connection could not take it.
  bool place(Endpoint &ep, Connection &conn, Request &req);
  void open_connection(Endpoint &ep);
  void fail_pending(Endpoint &ep, const Error &err);
  void reap();

  event_base *base_;
  Config config_;
  const Logger &log_;
  Resolver &resolver_;
  std::atomic<uint64_t> &waiting_;
  std::unique_ptr<TlsContext> tls_;
  RequestCache &cache_;
  // Every nghttp2 session of this pool allocates here. Declared before
  // anything that holds connections, so it outlives their sessions.
  SessionAllocator session_alloc_;
  ConnectionSettings connection_settings_;
  const timeval *default_timeout_ = nullptr; // libevent common timeout
  const timeval *header_timeout_ = nullptr;  // likewise; null: no limit

  std::unordered_map<std::string, std::unique_ptr<Endpoint>> endpoints_;
  std::vector<Endpoint *> endpoint_order_; // creation order, for stats
  Endpoint *last_endpoint_ = nullptr;      // where the last request went
  // Every accepted request that has not finished, by id. The pool owns
  // them: accept() takes them in, finish() hands each to cache_ exactly
  // once, and the destructor frees any left.
  IdMap<Request> requests_;
  std::unordered_map<const Connection *, Endpoint *> connection_endpoint_;
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
  bool closing_ = false;
};

} // namespace h2pool_core
