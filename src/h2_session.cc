#include "h2_session.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

#include "connection.h"

namespace h2pool_core {
namespace {

// Output we let pile up in the socket buffer before we stop asking nghttp2
// for more; the write callback resumes below the low-water mark.
constexpr size_t kOutputHighWater = 1u << 20;
// Full read buffers handled per readiness event before other connections
// get their turn.
constexpr int kMaxReadRounds = 4;
// Likewise for writes of large uploads (each round up to the high-water
// mark of output).
constexpr int kMaxWriteRounds = 4;
constexpr uint32_t kMaxStreamsWithoutServerLimit = 1000;
// The payload of the PINGs that measure the bandwidth-delay product, which
// tells their ACKs from those of the health and stale checks (all zeros).
constexpr uint8_t kProbePayload[8] = {'h', '2', 'p', 'o', 'o', 'l', 'B', 'D'};

// --- nghttp2 trampolines ---------------------------------------------------

// Nothing may unwind through nghttp2's C frames. An exception (memory
// exhausted while buffering, or one thrown by a caller's streaming callback)
// becomes a callback failure, which ends the session; the session then
// reports why.
template <typename Fn> auto no_throw(H2Session *s, Fn &&fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc &) {
    s->note_callback_failure(H2POOL_ERR_NOMEM);
  } catch (...) {
    s->note_callback_failure(H2POOL_ERR_INTERNAL);
  }
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int on_begin_headers_cb(nghttp2_session *, const nghttp2_frame *frame,
                        void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] { return s->on_begin_headers(frame); });
}

int on_header_cb(nghttp2_session *, const nghttp2_frame *frame,
                 const uint8_t *name, size_t namelen, const uint8_t *value,
                 size_t valuelen, uint8_t, void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(
      s, [&] { return s->on_header(frame, name, namelen, value, valuelen); });
}

int on_frame_recv_cb(nghttp2_session *, const nghttp2_frame *frame,
                     void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] { return s->on_frame_recv(frame); });
}

int on_data_chunk_recv_cb(nghttp2_session *, uint8_t, int32_t stream_id,
                          const uint8_t *data, size_t len, void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] { return s->on_data_chunk(stream_id, data, len); });
}

int on_stream_close_cb(nghttp2_session *, int32_t stream_id,
                       uint32_t error_code, void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] { return s->on_stream_close(stream_id, error_code); });
}

int on_frame_send_cb(nghttp2_session *, const nghttp2_frame *frame,
                     void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] { return s->on_frame_sent(frame); });
}

int on_invalid_frame_recv_cb(nghttp2_session *, const nghttp2_frame *frame,
                             int lib_error_code, void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s,
                  [&] { return s->on_invalid_frame(frame, lib_error_code); });
}

int error_cb(nghttp2_session *, int, const char *msg, size_t len,
             void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] {
    s->on_nghttp2_error(msg, len);
    return 0;
  });
}

ssize_t read_body_cb(nghttp2_session *, int32_t stream_id, uint8_t *buf,
                     size_t length, uint32_t *data_flags, nghttp2_data_source *,
                     void *user_data) {
  auto s = static_cast<H2Session *>(user_data);
  return no_throw(s, [&] {
    return s->read_request_body(stream_id, buf, length, data_flags);
  });
}

// The callbacks are the same for every session: build them once.
nghttp2_session_callbacks *shared_callbacks() {
  static CallbacksPtr callbacks = [] {
    nghttp2_session_callbacks *cbs = nullptr;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
      return CallbacksPtr{};
    nghttp2_session_callbacks_set_on_begin_headers_callback(
        cbs, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           on_stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send_cb);
    nghttp2_session_callbacks_set_error_callback2(cbs, error_cb);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
        cbs, on_invalid_frame_recv_cb);
    return CallbacksPtr(cbs);
  }();
  return callbacks.get();
}

nghttp2_option *shared_options() {
  static OptionPtr options = [] {
    nghttp2_option *opt = nullptr;
    if (nghttp2_option_new(&opt) != 0)
      return OptionPtr{};
    // Until the server's SETTINGS arrive, assume the limit RFC 9113
    // recommends servers allow at least.
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    // Bound what a hostile server can make us buffer or answer.
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    // We return DATA to the flow-control windows ourselves: the
    // connection's at once, a stream's once its bytes are delivered, so a
    // paused response holds back its own stream only.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    // RFC 8336 ORIGIN frames narrow or widen the origins a connection may
    // be shared by (coalesce.h); nghttp2 drops them unless asked to parse.
    nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_ORIGIN);
    return OptionPtr(opt);
  }();
  return options.get();
}

// --- socket and timer trampolines -----------------------------------------

void read_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<H2Session *>(arg)->on_read_event();
}
void write_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<H2Session *>(arg)->on_write_event();
}
void ping_timer_cb(evutil_socket_t, short, void *arg) {
  static_cast<H2Session *>(arg)->on_ping_timer();
}
void ping_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<H2Session *>(arg)->on_ping_timeout();
}
void stale_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<H2Session *>(arg)->on_stale_timeout();
}

Request *stream_request(nghttp2_session *session, int32_t stream_id) {
  return static_cast<Request *>(
      nghttp2_session_get_stream_user_data(session, stream_id));
}

// Header fields are copied by nghttp2_submit_request (no NO_COPY flags): the
// HEADERS frame may be serialised after the request that owned the strings
// was cancelled and freed.
nghttp2_nv make_nv(const std::string &name, const std::string &value) {
  return {reinterpret_cast<uint8_t *>(const_cast<char *>(name.data())),
          reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
          name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

nghttp2_nv make_nv(const char *name, size_t namelen, std::string_view value) {
  return {reinterpret_cast<uint8_t *>(const_cast<char *>(name)),
          reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
          namelen, value.size(), NGHTTP2_NV_FLAG_NONE};
}

const Error &refused_error() {
  static const Error e = [] {
    Error r = make_error(H2POOL_ERR_REFUSED_STREAM);
    r.http2_code = NGHTTP2_REFUSED_STREAM;
    return r;
  }();
  return e;
}

} // namespace

H2Session::H2Session(event_base *base, Connection &conn, const Logger &log,
                     const H2Settings &settings, uint64_t id,
                     const std::string &name,
                     std::unique_ptr<Transport> transport)
    : base_(base), conn_(conn), log_(log), settings_(settings), id_(id),
      name_(name), transport_(std::move(transport)),
      tls_(dynamic_cast<TlsTransport *>(transport_.get()) != nullptr) {
  stream_window_ = settings_.stream_window_bytes;
  connection_window_ = settings_.connection_window_bytes;
  if (settings_.adaptive_window) {
    stream_window_ = std::min(stream_window_, kInitialStreamWindow);
    connection_window_ = std::min(connection_window_, kInitialConnectionWindow);
    // The estimate drives the stream window; the connection's follows at
    // twice it, so the estimator's cap covers both caps.
    uint32_t cap = std::max(settings_.stream_window_bytes,
                            settings_.connection_window_bytes / 2);
    if (stream_window_ < settings_.stream_window_bytes ||
        connection_window_ < settings_.connection_window_bytes)
      bdp_ = std::make_unique<BdpEstimator>(stream_window_, cap);
  }
  peak_stream_window_ = stream_window_;
  ping_timer_.reset(evtimer_new(base_, ping_timer_cb, this));
  ping_timeout_timer_.reset(evtimer_new(base_, ping_timeout_cb, this));
  stale_timer_.reset(evtimer_new(base_, stale_timeout_cb, this));
  update_capacity();
}

H2Session::~H2Session() {
  // The nghttp2 session goes before the socket; nothing here reports to the
  // connection.
  session_.reset();
  read_event_.reset();
  write_event_.reset();
  transport_.reset();
}

void H2Session::update_capacity() {
  // 100 until the server's SETTINGS arrive, as RFC 9113 suggests assuming.
  uint32_t peer = 100;
  if (session_ && settings_received_)
    peer = nghttp2_session_get_remote_settings(
        session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  // A server that sets no limit allows 2^31 streams in principle; beyond a
  // thousand, one connection's streams only queue behind each other in its
  // flow-control window, so spread further load over more connections.
  peer = std::min(peer, kMaxStreamsWithoutServerLimit);
  if (settings_.local_max_streams)
    peer = std::min(peer, settings_.local_max_streams);
  capacity_ = peer;
}

void H2Session::start() {
  evutil_socket_t fd = transport_->fd();
  read_event_.reset(
      event_new(base_, fd, EV_READ | EV_PERSIST, read_event_cb, this));
  write_event_.reset(event_new(base_, fd, EV_WRITE, write_event_cb, this));
  nghttp2_session *session = nullptr;
  if (!read_event_ || !write_event_ || !ping_timer_ || !ping_timeout_timer_ ||
      !stale_timer_ || event_add(read_event_.get(), nullptr) != 0 ||
      !shared_callbacks() ||
      nghttp2_session_client_new3(
          &session, shared_callbacks(), this, shared_options(),
          settings_.allocator ? settings_.allocator->mem() : nullptr) != 0) {
    end(make_error(H2POOL_ERR_NOMEM, "cannot create HTTP/2 session"));
    return;
  }
  session_.reset(session);
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window_},
      // RFC 9218 section 2.1: we signal priorities with the priority
      // header and PRIORITY_UPDATE, never with RFC 7540's PRIORITY frames.
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, iv,
                              sizeof iv / sizeof iv[0]) == 0)
    ++settings_unacked_;
  if (connection_window_ > 65535)
    nghttp2_session_set_local_window_size(session_.get(), NGHTTP2_FLAG_NONE, 0,
                                          int32_t(connection_window_));
  last_read_ms_ = loop_now_ms(base_);
  arm_timer(ping_timer_, settings_.ping_interval_ms);
  flush();
  // Reading ahead, a TLS handshake may have taken the server's first
  // HTTP/2 frames off the socket: look at them now, not on the next
  // readiness.
  if (!ended_ && tls_)
    event_active(read_event_.get(), EV_READ, 0);
}

void H2Session::end(const Error &why) {
  if (ended_)
    return;
  conn_.session_ended(why); // closes us through close()
}

Error H2Session::goaway_error() const {
  Error e;
  e.code = goaway_code_ == NGHTTP2_NO_ERROR ? H2POOL_ERR_CONNECTION_LOST
                                            : H2POOL_ERR_GOAWAY;
  e.http2_code = goaway_code_;
  e.goaway_last_stream_id = goaway_last_stream_id_;
  e.message =
      "server sent GOAWAY(" + std::string(http2_code_name(goaway_code_)) +
      ", last_stream_id=" + std::to_string(goaway_last_stream_id_) + ")";
  if (!goaway_debug_.empty())
    e.message += ": " + goaway_debug_;
  return e;
}

Error H2Session::connection_error() const {
  // The first cause wins: a protocol violation we answered with GOAWAY, or
  // the server's own GOAWAY, explains a close that follows it.
  if (goaway_sent_ && goaway_sent_code_ != NGHTTP2_NO_ERROR) {
    Error e =
        make_error(H2POOL_ERR_PROTOCOL,
                   "server violated HTTP/2 (" +
                       std::string(http2_code_name(goaway_sent_code_)) + ")");
    e.http2_code = goaway_sent_code_;
    if (!last_nghttp2_error_.empty())
      e.message += ": " + last_nghttp2_error_;
    return e;
  }
  if (goaway_received_)
    return goaway_error();
  return make_error(H2POOL_ERR_CONNECTION_LOST,
                    "connection to " + name_ + " lost");
}

void H2Session::classify(const Request &req, StreamEnd *end) const {
  int32_t stream_id = req.stream_id;
  bool above_goaway = goaway_received_ && stream_id > goaway_last_stream_id_;
  if (!req.response_begun && stale_error_.code != H2POOL_OK &&
      stream_id >= stale_first_stream_) {
    // Sent with the stale check's PING or after it, on a connection from
    // which nothing at all arrived since: the connection was gone.
    end->unprocessed = true;
    end->unprocessed_why = &stale_error_;
    return;
  }
  if (req.response_begun) {
    // The server processed it: never sent again. Above the GOAWAY, what
    // ended it was the GOAWAY (nghttp2 closes such streams as refused).
    if (above_goaway && !end->connection_error)
      end->connection_error = &goaway_error_;
    return;
  }
  if (above_goaway) {
    end->unprocessed = true;
    end->unprocessed_why = &goaway_error_;
  } else if (!end->connection_error &&
             end->http2_code == NGHTTP2_REFUSED_STREAM) {
    end->unprocessed = true;
    end->refused = true;
    end->unprocessed_why = &refused_error();
  }
}

void H2Session::on_read_event() {
  if (ended_)
    return;
  if (write_wants_read_) {
    write_wants_read_ = false;
    if (write_out() == WriteResult::closed)
      return;
  }
  on_readable();
}

void H2Session::on_write_event() {
  write_scheduled_ = false;
  if (ended_)
    return;
  if (read_wants_write_) {
    read_wants_write_ = false;
    on_readable(); // flushes, which brings us back here
    return;
  }
  // Bounded rounds: a long upload yields to the other connections.
  for (int round = 0; round < kMaxWriteRounds; ++round) {
    WriteResult w = write_out();
    if (w == WriteResult::closed)
      return;
    if (w == WriteResult::blocked) {
      settle();
      return; // write_out() arranged to be woken
    }
    if (!fill_output())
      return;
    if (out_.empty())
      break;
  }
  if (!out_.empty() && !write_scheduled_) {
    write_scheduled_ = true;
    event_active(write_event_.get(), EV_WRITE, 0);
  }
  settle();
}

void H2Session::on_readable() {
  if (ended_ || !session_)
    return;
  last_read_ms_ = loop_now_ms(base_);
  // What this pass reads arrived by now: first bytes, completions and
  // window samples share this reading.
  ClockPass pass;
  uint8_t fallback[16384];
  bool alive = true;
  Transport::Status st =
      read_rounds(*transport_, kMaxReadRounds, {fallback, sizeof fallback},
                  [&](const uint8_t *data, size_t len) {
                    if (stale_check_) {
                      // Any byte proves the connection is there.
                      stale_check_ = false;
                      evtimer_del(stale_timer_.get());
                    }
                    return alive = feed(data, len);
                  });
  if (!alive)
    return;
  switch (st) {
  case Transport::Status::eof:
  case Transport::Status::error:
    // What nghttp2 made of the last bytes (a GOAWAY for a protocol
    // error, RST_STREAM for a malformed response) is serialised first,
    // so that the close is blamed on what came before it.
    if (fill_output())
      on_transport_closed(st);
    return;
  case Transport::Status::want_write:
    read_wants_write_ = true;
    event_add(write_event_.get(), nullptr);
    break;
  case Transport::Status::want_read:
    break;
  case Transport::Status::ok:
    // Out of rounds with input left: come back on the next loop turn. The
    // socket may look empty while OpenSSL holds records it read ahead, so
    // readiness alone would not bring us back.
    event_active(read_event_.get(), EV_READ, 0);
    break;
  }
  flush();
}

bool H2Session::feed(const uint8_t *data, size_t len) {
  ssize_t rv = nghttp2_session_mem_recv(session_.get(), data, len);
  if (ended_)
    return false;
  if (rv >= 0)
    return true;
  Error e =
      make_error(H2POOL_ERR_PROTOCOL, std::string("HTTP/2 receive failed: ") +
                                          nghttp2_strerror(int(rv)));
  if (rv == NGHTTP2_ERR_NOMEM)
    e.code = H2POOL_ERR_NOMEM;
  if (rv == NGHTTP2_ERR_CALLBACK_FAILURE && callback_failure_)
    e = make_error(callback_failure_,
                   callback_failure_ == H2POOL_ERR_NOMEM
                       ? "out of memory while receiving a response"
                       : "a response callback threw an exception");
  end(e);
  return false;
}

void H2Session::on_transport_closed(Transport::Status st) {
  if (ended_)
    return;
  Error err = connection_error();
  if (err.code == H2POOL_ERR_CONNECTION_LOST && !goaway_received_) {
    if (tls_ && !settings_received_ &&
        !static_cast<TlsTransport *>(transport_.get())->to_proxy()) {
      // TLS 1.3 servers send some handshake alerts (a client certificate
      // they required, for one) only after the client has finished its
      // part, so they surface here, before the server's SETTINGS. The
      // alert itself may be lost to a TCP reset, but a server that
      // accepted TLS sends SETTINGS at once: a close before them is the
      // handshake failing.
      auto tls = static_cast<TlsTransport *>(transport_.get());
      Error t = tls_failure_error(tls->ssl(), tls->last_error(), name_);
      if (t.message.find("closed during") != std::string::npos)
        t.message = "connection to " + name_ +
                    " closed by the server after the TLS handshake, "
                    "before HTTP/2 began (as a server does that rejects "
                    "the client certificate under TLS 1.3)";
      end(t);
      return;
    }
    int sys = transport_->sys_error();
    err.message =
        "connection to " + name_ +
        (st == Transport::Status::eof || sys == 0
             ? " closed by the server"
             : std::string(" failed: ") + evutil_socket_error_to_string(sys));
  }
  end(err);
}

bool H2Session::allows_extended_connect() const {
  // RFC 8441 section 3: only once the server said so in its SETTINGS.
  // Requests are placed only on connections whose SETTINGS have arrived,
  // so "not yet" never reaches here as "no".
  return session_ && settings_received_ &&
         nghttp2_session_get_remote_settings(
             session_.get(), NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1;
}

int H2Session::submit(Request &req) {
  if (!req.protocol().empty() && !allows_extended_connect()) {
    H2POOL_LOG(log_, H2POOL_LOG_INFO,
               "conn %llu: request %llu: %s did not enable extended CONNECT "
               "(SETTINGS_ENABLE_CONNECT_PROTOCOL)",
               (unsigned long long)id_, (unsigned long long)req.id,
               name_.c_str());
    return H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED;
  }
  // Pseudo-headers, content-length and accept-encoding come before the
  // caller's fields. Most requests fit the stack array; only unusually many
  // headers allocate.
  constexpr size_t kInline = 24;
  std::array<nghttp2_nv, kInline> inline_nva;
  std::vector<nghttp2_nv> heap_nva;
  size_t max_fields = 8 + req.headers.size();
  if (max_fields > kInline)
    heap_nva.resize(max_fields);
  nghttp2_nv *nva = max_fields > kInline ? heap_nva.data() : inline_nva.data();
  size_t n = 0;
  static const std::string kHttp = "http", kHttps = "https";
  static const std::string kAcceptEncodingName = "accept-encoding",
                           kAcceptEncodingValue = kAcceptEncoding;
  nva[n++] = make_nv(":method", 7, req.method.view());
  // RFC 9113 section 8.5: a CONNECT request carries only :method and
  // :authority; an extended CONNECT (RFC 8441 section 4) carries :scheme
  // and :path too, and its :protocol.
  bool connect = req.method == "CONNECT" && req.protocol().empty();
  if (!req.protocol().empty())
    nva[n++] = make_nv(":protocol", 9, req.protocol());
  if (!connect)
    nva[n++] =
        make_nv(":scheme", 7, req.url.scheme == Scheme::https ? kHttps : kHttp);
  nva[n++] = make_nv(":authority", 10, req.authority());
  if (!connect)
    nva[n++] = make_nv(":path", 5, req.url.path);
  std::string content_length;
  if (req.add_content_length) {
    content_length = std::to_string(
        req.body_reader ? uint64_t(req.body_content_length) : req.body_size);
    nva[n++] = make_nv("content-length", 14, content_length);
  }
  if (req.add_accept_encoding)
    nva[n++] = make_nv(kAcceptEncodingName, kAcceptEncodingValue);
  // RFC 9218 section 5: only a priority other than the default is worth
  // the bytes; a caller's own field goes as given, alone.
  std::string priority;
  Priority pri{req.urgency, req.incremental};
  if (!req.caller_priority && !pri.is_default()) {
    priority = format_priority(pri);
    nva[n++] = make_nv("priority", 8, priority);
  }
  for (const auto &h : req.headers)
    nva[n++] = make_nv(h.name, h.value);

  nghttp2_data_provider provider{};
  provider.read_callback = read_body_cb;
  bool has_body = req.body_size > 0 || req.body_reader;
  req.reset_for_retry();
  int32_t stream_id = nghttp2_submit_request(
      session_.get(), nullptr, nva, n, has_body ? &provider : nullptr, &req);
  if (stream_id < 0) {
    H2POOL_LOG(log_, H2POOL_LOG_WARN, "conn %llu: cannot submit request: %s",
               (unsigned long long)id_, nghttp2_strerror(stream_id));
    return stream_id == NGHTTP2_ERR_NOMEM ? H2POOL_ERR_NOMEM
                                          : H2POOL_ERR_CONNECTION_LOST;
  }
  req.stream_id = stream_id;
  req.wire_protocol = H2POOL_PROTOCOL_HTTP_2;
  req.connection_id = id_;
  ++req.attempts;
  streams_.push_back(&req);
  ++active_;
  peak_ = std::max(peak_, active_);
  check_if_stale(stream_id);
  return H2POOL_OK;
}

void H2Session::check_if_stale(int32_t stream_id) {
  if (!settings_.stale_after_idle_ms || stale_check_ || !settings_received_)
    return;
  if (loop_now_ms(base_) - last_read_ms_ < settings_.stale_after_idle_ms)
    return;
  // A connection silent for a while may be dead without either end knowing
  // (a NAT or firewall forgot it, the server vanished without a FIN), and
  // TCP would take minutes to say so. The PING goes out with the request,
  // and a live server answers it at once whatever the request costs it.
  stale_check_ = true;
  stale_first_stream_ = stream_id;
  nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, nullptr);
  arm_timer(stale_timer_, settings_.stale_deadline_ms);
}

void H2Session::on_stale_timeout() {
  if (ended_ || !stale_check_)
    return;
  stale_check_ = false;
  stale_error_ = make_error(H2POOL_ERR_CONNECTION_LOST,
                            "nothing from " + name_ + " within " +
                                std::to_string(settings_.stale_deadline_ms) +
                                " ms of a request sent with a PING after " +
                                std::to_string(settings_.stale_after_idle_ms) +
                                " ms of silence");
  end(stale_error_);
}

void H2Session::reset(Request &req, uint32_t code) {
  if (!streams_.contains(&req))
    return;
  streams_.remove(&req);
  if (session_ && req.stream_id > 0) {
    nghttp2_session_set_stream_user_data(session_.get(), req.stream_id,
                                         nullptr);
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, req.stream_id,
                              code);
    flush();
  }
}

void H2Session::end_refused_tunnel(Request &req, int32_t stream_id) {
  // The server answered the tunnel with a complete ordinary response: no
  // tunnel will open, so an upload that waits for the caller's next bytes
  // would keep the stream (and the request) open for nothing. The response
  // is complete, so the request completes now; the reset only stops our
  // side, and is not the server's fault (no local_error).
  streams_.remove(&req);
  nghttp2_session_set_stream_user_data(session_.get(), stream_id, nullptr);
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id,
                            NGHTTP2_CANCEL);
  conn_.stream_closed(req, StreamEnd{});
}

void H2Session::update_priority(Request &req) {
  if (!streams_.contains(&req) || !session_ || req.stream_id <= 0)
    return;
  // nghttp2 sends it only to a server whose SETTINGS had
  // SETTINGS_NO_RFC7540_PRIORITIES=1 (RFC 9218 section 2.1: the others
  // may not know the frame), and otherwise returns 0 having done nothing.
  std::string value = format_priority({req.urgency, req.incremental});
  int rv = nghttp2_submit_priority_update(
      session_.get(), NGHTTP2_FLAG_NONE, req.stream_id,
      reinterpret_cast<const uint8_t *>(value.data()), value.size());
  if (rv != 0) {
    H2POOL_LOG(log_, H2POOL_LOG_WARN,
               "conn %llu: cannot send PRIORITY_UPDATE for stream %d: %s",
               (unsigned long long)id_, req.stream_id, nghttp2_strerror(rv));
    return;
  }
  flush();
}

void H2Session::resume_upload(Request &req) {
  if (!streams_.contains(&req) || !req.upload_deferred || !session_)
    return;
  req.upload_deferred = false;
  nghttp2_session_resume_data(session_.get(), req.stream_id);
  flush();
}

void H2Session::resume_download(Request &req) {
  if (!streams_.contains(&req) || !session_)
    return;
  size_t consumed = 0;
  int rc = resume_body(req, settings_.body_limits, &consumed);
  if (consumed)
    consume_stream(req.stream_id, consumed);
  if (rc != H2POOL_OK)
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, req.stream_id,
                              NGHTTP2_CANCEL);
  flush();
}

void H2Session::consume_stream(int32_t stream_id, size_t len) {
  // A stream nghttp2 already closed has no window left to reopen.
  nghttp2_session_consume_stream(session_.get(), stream_id, len);
}

void H2Session::measure_data(size_t len) {
  if (!bdp_ || settings_unacked_ > 0)
    return;
  // DATA arrives in read passes: the pass's reading is when it arrived.
  if (!bdp_->on_data(len, pass_now_ns()))
    return;
  if (nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, kProbePayload) !=
      0) {
    bdp_.reset(); // out of memory: keep the windows we have
    return;
  }
  bdp_->probe_sent();
}

void H2Session::on_probe_ack() {
  if (!bdp_)
    return;
  uint32_t estimate = bdp_->on_ack(pass_now_ns());
  if (estimate) {
    uint64_t connection =
        std::max<uint64_t>(connection_window_, uint64_t(estimate) * 2);
    raise_windows(std::min(estimate, settings_.stream_window_bytes),
                  uint32_t(std::min<uint64_t>(
                      connection, settings_.connection_window_bytes)));
  }
  if (bdp_->done() || (stream_window_ >= settings_.stream_window_bytes &&
                       connection_window_ >= settings_.connection_window_bytes))
    bdp_.reset();
}

void H2Session::raise_windows(uint32_t stream, uint32_t connection) {
  if (stream > stream_window_) {
    // RFC 9113 section 6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE moves
    // the window of every open stream by the difference, so one frame
    // raises them all.
    nghttp2_settings_entry iv{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream};
    if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, &iv, 1) ==
        0) {
      ++settings_unacked_;
      stream_window_ = stream;
      peak_stream_window_ = std::max(peak_stream_window_, stream);
    }
  }
  if (connection > connection_window_ &&
      nghttp2_session_set_local_window_size(session_.get(), NGHTTP2_FLAG_NONE,
                                            0, int32_t(connection)) == 0)
    connection_window_ = connection;
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG,
             "conn %llu: flow-control windows %u (stream), %u (connection)",
             (unsigned long long)id_, stream_window_, connection_window_);
}

void H2Session::close(const Error &why) {
  if (ended_)
    return;
  ended_ = true;
  evtimer_del(ping_timer_.get());
  evtimer_del(ping_timeout_timer_.get());
  evtimer_del(stale_timer_.get());
  if (session_) {
    if (!goaway_sent_)
      nghttp2_session_terminate_session(session_.get(), NGHTTP2_NO_ERROR);
    const uint8_t *data;
    ssize_t n;
    std::string &out = out_.tail();
    while ((n = nghttp2_session_mem_send(session_.get(), &data)) > 0)
      out.append(reinterpret_cast<const char *>(data), size_t(n));
    // Best effort, never blocking: whatever the socket takes now. (ended_
    // is set, so a write error does not end the session again, and the
    // write event write_out() may arm is deleted below.)
    bool all_sent = write_out() == WriteResult::done;
    // close_notify keeps the TLS session resumable: OpenSSL marks sessions
    // of connections freed without it as bad. (The transport skips it once
    // the connection has failed.)
    if (tls_ && all_sent)
      static_cast<TlsTransport *>(transport_.get())->shutdown();
  }
  out_.clear();
  log_frame_counts();
  if (read_event_)
    event_del(read_event_.get());
  if (write_event_)
    event_del(write_event_.get());
  while (Request *req = streams_.pop_front()) {
    if (session_)
      nghttp2_session_set_stream_user_data(session_.get(), req->stream_id,
                                           nullptr);
    StreamEnd end;
    end.connection_error = &why;
    classify(*req, &end);
    conn_.stream_closed(*req, end);
  }
  active_ = 0;
}

void H2Session::flush() {
  if (!fill_output())
    return;
  // The write itself waits for the end of this loop turn, so that what
  // every callback of the turn queued (responses read, new requests
  // placed, window updates) leaves in one system call.
  if (!out_.empty() && !write_scheduled_) {
    write_scheduled_ = true;
    event_active(write_event_.get(), EV_WRITE, 0);
  }
  settle();
}

bool H2Session::fill_output() {
  if (!session_ || ended_)
    return false;
  // Stop collecting at the high-water mark so that a large upload waits in
  // nghttp2 (its data source pulls on demand), not in memory here.
  std::string &out = out_.tail();
  ClockPass pass(true); // the request heads serialised now leave now
  while (out.size() < kOutputHighWater) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
    if (n < 0) {
      end(make_error(H2POOL_ERR_INTERNAL, std::string("HTTP/2 send failed: ") +
                                              nghttp2_strerror(int(n))));
      return false;
    }
    if (n == 0)
      break;
    out.append(reinterpret_cast<const char *>(data), size_t(n));
  }
  return !ended_;
}

WriteResult H2Session::write_out() {
  Transport::Status st = Transport::Status::ok;
  WriteResult w = write_pending(out_, *transport_, write_event_.get(),
                                &write_wants_read_, &st);
  if (w == WriteResult::closed && !ended_)
    on_transport_closed(st);
  return w;
}

bool H2Session::settle() {
  if (ended_)
    return false;
  if (!session_)
    return true;
  if (!nghttp2_session_want_read(session_.get()) &&
      !nghttp2_session_want_write(session_.get())) {
    end(connection_error());
    return false;
  }
  conn_.settle();
  return !ended_;
}

void H2Session::on_ping_timer() {
  if (ended_ || !session_ || ping_outstanding_)
    return;
  uint64_t idle = loop_now_ms(base_) - last_read_ms_;
  if (idle < settings_.ping_interval_ms) {
    arm_timer(ping_timer_, uint32_t(settings_.ping_interval_ms - idle));
    return;
  }
  // Nothing heard for a whole interval: make the server prove it is there
  // before the pool trusts this connection with more streams.
  ping_outstanding_ = true;
  nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, nullptr);
  arm_timer(ping_timeout_timer_, settings_.ping_timeout_ms);
  flush();
}

void H2Session::on_ping_timeout() {
  if (ended_ || !ping_outstanding_)
    return;
  end(make_error(H2POOL_ERR_CONNECTION_LOST,
                 "no PING ACK from " + name_ + " within " +
                     std::to_string(settings_.ping_timeout_ms) + " ms"));
}

int H2Session::on_invalid_frame(const nghttp2_frame *frame, int lib_error) {
  last_nghttp2_error_ = std::string("invalid ") +
                        (frame->hd.type == NGHTTP2_HEADERS ? "HEADERS"
                         : frame->hd.type == NGHTTP2_DATA  ? "DATA"
                                                           : "frame") +
                        " from the server: " + nghttp2_strerror(lib_error);
  // A malformed response is the stream's error at once: nghttp2 resets the
  // stream, but a close that comes before the reset is sent must not hide
  // it.
  if (frame->hd.stream_id != 0)
    if (Request *req = stream_request(session_.get(), frame->hd.stream_id))
      if (req->local_error().code == H2POOL_OK) {
        req->set_local_error(
            make_error(H2POOL_ERR_PROTOCOL, "malformed response from " + name_ +
                                                ": " + last_nghttp2_error_));
        req->make_rare().local_error.http2_code = NGHTTP2_PROTOCOL_ERROR;
      }
  return 0;
}

int H2Session::on_begin_headers(const nghttp2_frame *frame) {
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  if (Request *req = stream_request(session_.get(), frame->hd.stream_id)) {
    req->in_trailers = req->got_headers; // a block after the final headers
    if (!req->response_begun) {
      // From here the server has acted on the request: it is never sent
      // again, and this connection has proved it serves.
      req->response_begun = true;
      req->times().first_byte =
          std::max(pass_now_ns(), req->times().pretransfer);
      conn_.response_begun();
    }
  }
  return 0;
}

int H2Session::on_header(const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value,
                         size_t valuelen) {
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  Request *req = stream_request(session_.get(), frame->hd.stream_id);
  if (!req)
    return 0;
  req->add_header_bytes(namelen + valuelen + 32);
  req->add_header_field();
  if (req->header_bytes > settings_.max_response_header_bytes ||
      req->header_fields > settings_.max_response_header_fields) {
    // Beyond the limits a server is broken or hostile, and buffering more
    // only helps it exhaust our memory.
    req->set_local_error(make_error(
        H2POOL_ERR_RESPONSE_TOO_LARGE,
        "response headers exceed " +
            std::to_string(settings_.max_response_header_bytes) + " bytes or " +
            std::to_string(settings_.max_response_header_fields) + " fields"));
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (req->in_trailers) {
    if (namelen > 0 && name[0] != ':')
      req->resp().make_rare().trailers.add(
          {reinterpret_cast<const char *>(name), namelen},
          {reinterpret_cast<const char *>(value), valuelen});
    return 0;
  }
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
    int status = 0;
    for (size_t i = 0; i < valuelen; ++i)
      status = status * 10 + (value[i] - '0'); // nghttp2 checked the digits
    if (status < 100) {
      // Three digits, so nghttp2 lets it through, but no such status
      // exists (RFC 9110 section 15): fail before any body byte is handed
      // on as if it belonged to a response.
      req->set_local_error(make_error(
          H2POOL_ERR_PROTOCOL,
          "invalid :status " +
              std::string(reinterpret_cast<const char *>(value), valuelen) +
              " from " + name_));
      req->make_rare().local_error.http2_code = NGHTTP2_PROTOCOL_ERROR;
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    // 1xx responses are interim: the final response follows in a later
    // HEADERS frame on the same stream.
    if (status >= 200 || status == 101) {
      req->resp().status = status;
      req->got_headers = true;
    }
    return 0;
  }
  if (namelen > 0 && name[0] == ':')
    return 0;
  if (!req->got_headers)
    return 0; // a field of an interim (1xx) response
  // Typical responses carry a handful of fields; growing from empty would
  // reallocate three or four times per response. Reserved only now, so a
  // stream waiting for its response holds no header storage.
  h2pool_response &resp = req->resp();
  if (resp.headers.empty())
    resp.headers.reserve(256, 8);
  resp.headers.add({reinterpret_cast<const char *>(name), namelen},
                   {reinterpret_cast<const char *>(value), valuelen});
  return 0;
}

void H2Session::log_frame_counts() const {
  if (!log_.enabled(H2POOL_LOG_INFO))
    return;
  static const char *const names[kFrameTypes] = {
      "DATA",         "HEADERS", "PRIORITY", "RST_STREAM",    "SETTINGS",
      "PUSH_PROMISE", "PING",    "GOAWAY",   "WINDOW_UPDATE", "CONTINUATION"};
  auto list = [](const uint32_t *counts) {
    std::string out;
    for (int i = 0; i < kFrameTypes; ++i)
      if (counts[i])
        out += (out.empty() ? "" : ", ") + std::string(names[i]) + " " +
               std::to_string(counts[i]);
    return out.empty() ? std::string("none") : out;
  };
  H2POOL_LOG(log_, H2POOL_LOG_INFO, "conn %llu: frames received: %s; sent: %s",
             (unsigned long long)id_, list(frames_received_).c_str(),
             list(frames_sent_).c_str());
}

int H2Session::on_frame_recv(const nghttp2_frame *frame) {
  if (frame->hd.type < kFrameTypes)
    ++frames_received_[frame->hd.type];
  switch (frame->hd.type) {
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
      if (settings_unacked_ > 0)
        --settings_unacked_;
      break;
    }
    if (!settings_received_) {
      settings_received_ = true;
      update_capacity();
      H2POOL_LOG(log_, H2POOL_LOG_DEBUG,
                 "conn %llu: server allows %u concurrent streams",
                 (unsigned long long)id_,
                 nghttp2_session_get_remote_settings(
                     session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
      conn_.session_ready();
      break;
    }
    update_capacity();
    conn_.session_changed();
    break;
  case NGHTTP2_HEADERS:
  case NGHTTP2_DATA: {
    Request *req = stream_request(session_.get(), frame->hd.stream_id);
    if (!req)
      break;
    if (frame->hd.type == NGHTTP2_HEADERS && misdirected(*req)) {
      nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                                frame->hd.stream_id, NGHTTP2_CANCEL);
      break;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && req->got_headers &&
        !req->headers_delivered && req->local_error().code == H2POOL_OK &&
        begin_body(*req, settings_.body_limits) != H2POOL_OK)
      nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                                frame->hd.stream_id, NGHTTP2_CANCEL);
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && req->got_headers) {
      req->end_stream = true;
      if (!req->protocol().empty() && !req->tunnel_open() &&
          !nghttp2_session_get_stream_local_close(session_.get(),
                                                  frame->hd.stream_id))
        end_refused_tunnel(*req, frame->hd.stream_id); // may free req
    }
    break;
  }
  case NGHTTP2_PING:
    if ((frame->hd.flags & NGHTTP2_FLAG_ACK) &&
        std::memcmp(frame->ping.opaque_data, kProbePayload,
                    sizeof kProbePayload) == 0) {
      on_probe_ack();
      break;
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && ping_outstanding_) {
      ping_outstanding_ = false;
      evtimer_del(ping_timeout_timer_.get());
      arm_timer(ping_timer_, settings_.ping_interval_ms);
    }
    break;
  case NGHTTP2_ORIGIN:
    if (frame->hd.stream_id == 0)
      conn_.session_origin(
          *static_cast<const nghttp2_ext_origin *>(frame->ext.payload));
    break;
  case NGHTTP2_GOAWAY:
    goaway_received_ = true;
    goaway_last_stream_id_ = frame->goaway.last_stream_id;
    goaway_code_ = frame->goaway.error_code;
    goaway_debug_.assign(
        reinterpret_cast<const char *>(frame->goaway.opaque_data),
        std::min<size_t>(frame->goaway.opaque_data_len, 256));
    goaway_error_ = goaway_error();
    // Streams above last_stream_id were never processed: say so whatever
    // the code, so a caller that is not retried can tell.
    goaway_error_.code = H2POOL_ERR_GOAWAY;
    H2POOL_LOG(log_, H2POOL_LOG_INFO,
               "conn %llu: GOAWAY(%s, last_stream_id=%d)",
               (unsigned long long)id_, http2_code_name(goaway_code_),
               goaway_last_stream_id_);
    conn_.session_goaway();
    break;
  default:
    break;
  }
  return 0;
}

bool H2Session::misdirected(Request &req) {
  // RFC 9110 section 15.5.20: 421 on a connection shared with another
  // origin means the server will not serve this one here; the request
  // may go again on a connection of its own, whatever its method. Nothing
  // of this response reaches the caller (local_error keeps its body out),
  // unless the request cannot be sent again.
  if (!req.coalesced || !req.got_headers || !req.response ||
      req.response->status != 421 || req.headers_delivered ||
      req.local_error().code != H2POOL_OK || !req.body_replayable())
    return false;
  req.misdirected = true;
  req.set_local_error(
      make_error(H2POOL_ERR_STREAM_RESET,
                 "421 Misdirected Request on a shared connection"));
  return true;
}

int H2Session::on_data_chunk(int32_t stream_id, const uint8_t *data,
                             size_t len) {
  measure_data(len);
  Request *req = stream_request(session_.get(), stream_id);
  size_t delivered = len; // bytes nobody holds back
  int rc = H2POOL_OK;
  if (req && req->local_error().code == H2POOL_OK && req->got_headers)
    rc = accept_body(*req, data, len, settings_.body_limits, &delivered);
  // The connection's window reopens at once, whatever happens to the
  // bytes: only the stream's stays closed behind a paused response, so the
  // connection's other streams keep flowing. In the usual case, both in
  // one call (which fails for a stream nghttp2 has closed; the connection
  // still needs its bytes back).
  if (delivered < len) {
    nghttp2_session_consume_connection(session_.get(), len);
    if (delivered)
      consume_stream(stream_id, delivered);
  } else if (nghttp2_session_consume(session_.get(), stream_id, len) != 0) {
    nghttp2_session_consume_connection(session_.get(), len);
  }
  if (rc != H2POOL_OK)
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id,
                              NGHTTP2_CANCEL);
  return 0;
}

int H2Session::on_stream_close(int32_t stream_id, uint32_t error_code) {
  if (active_ > 0)
    --active_;
  Request *req = stream_request(session_.get(), stream_id);
  if (req && streams_.contains(req)) {
    streams_.remove(req);
    StreamEnd end;
    end.http2_code = error_code;
    if (!req->end_stream)
      classify(*req, &end);
    conn_.stream_closed(*req, end);
  }
  conn_.session_changed();
  return 0;
}

ssize_t H2Session::read_request_body(int32_t stream_id, uint8_t *buf,
                                     size_t length, uint32_t *data_flags) {
  Request *req = stream_request(session_.get(), stream_id);
  if (!req)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  bool eof = false;
  int64_t n = h2pool_core::read_request_body(*req, buf, length, &eof);
  if (n == kBodyWait)
    return NGHTTP2_ERR_DEFERRED;
  if (n == kBodyFailed)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (eof) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (req->body_trailers())
      send_request_trailers(*req, stream_id, data_flags);
  }
  return ssize_t(n);
}

void H2Session::send_request_trailers(Request &req, int32_t stream_id,
                                      uint32_t *data_flags) {
  std::vector<HeaderField> trailers;
  req.body_trailers()(req.user_data, &trailers);
  if (trailers.empty())
    return;
  std::vector<nghttp2_nv> nva;
  nva.reserve(trailers.size());
  for (const auto &t : trailers)
    nva.push_back(make_nv(t.name, t.value));
  // nghttp2 sends the trailer HEADERS (with END_STREAM) after this last
  // DATA frame, which must then not end the stream itself.
  if (nghttp2_submit_trailer(session_.get(), stream_id, nva.data(),
                             nva.size()) == 0)
    *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
}

int H2Session::on_frame_sent(const nghttp2_frame *frame) {
  if (frame->hd.type < kFrameTypes)
    ++frames_sent_[frame->hd.type];
  if (frame->hd.type == NGHTTP2_HEADERS &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    // nghttp2 has serialised the request's HEADERS into the buffer that
    // flush() writes to the socket in the same pass.
    if (Request *req = stream_request(session_.get(), frame->hd.stream_id))
      req->times().pretransfer = std::max(pass_now_ns(), req->times().placed);
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    // nghttp2 resets a stream itself when the response breaks HTTP/2's
    // message rules (bad pseudo-headers, content-length mismatch, ...).
    // That is the server's fault, but not a reset *by* the server.
    Request *req = stream_request(session_.get(), frame->hd.stream_id);
    if (req && req->local_error().code == H2POOL_OK) {
      req->set_local_error(make_error(H2POOL_ERR_PROTOCOL,
                                      "malformed response from " + name_ +
                                          (last_nghttp2_error_.empty()
                                               ? std::string()
                                               : ": " + last_nghttp2_error_)));
      req->make_rare().local_error.http2_code = frame->rst_stream.error_code;
    }
  }
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    goaway_sent_ = true;
    goaway_sent_code_ = frame->goaway.error_code;
  }
  return 0;
}

void H2Session::on_nghttp2_error(const char *msg, size_t len) {
  last_nghttp2_error_.assign(msg, std::min<size_t>(len, 200));
  H2POOL_LOG(log_, H2POOL_LOG_INFO, "conn %llu: %s", (unsigned long long)id_,
             last_nghttp2_error_.c_str());
}

} // namespace h2pool_core
