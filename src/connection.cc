#include "connection.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>

namespace h2pool_core {
namespace {

// Output we let pile up in the socket buffer before we stop asking nghttp2
// for more; the write callback resumes below the low-water mark.
constexpr size_t kOutputHighWater = 1u << 20;
// Output buffer capacity kept once everything is written; more is freed.
constexpr size_t kKeptOutputCapacity = 64u << 10;
// Full read buffers handled per readiness event before other connections
// get their turn.
constexpr int kMaxReadRounds = 4;
// Likewise for writes of large uploads (each round up to the high-water
// mark of output).
constexpr int kMaxWriteRounds = 4;
constexpr uint32_t kMaxStreamsWithoutServerLimit = 1000;

// --- nghttp2 trampolines ---------------------------------------------------

// Nothing may unwind through nghttp2's C frames. An exception (memory
// exhausted while buffering, or one thrown by a caller's streaming callback)
// becomes a callback failure, which ends the session; the connection then
// reports why.
template <typename Fn>
auto no_throw(Connection *conn, Fn &&fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc &) {
    conn->note_callback_failure(H2POOL_ERR_NOMEM);
  } catch (...) {
    conn->note_callback_failure(H2POOL_ERR_INTERNAL);
  }
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int on_begin_headers_cb(nghttp2_session *, const nghttp2_frame *frame,
                        void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn, [&] { return conn->on_begin_headers(frame); });
}

int on_header_cb(nghttp2_session *, const nghttp2_frame *frame,
                 const uint8_t *name, size_t namelen, const uint8_t *value,
                 size_t valuelen, uint8_t, void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn, [&] {
    return conn->on_header(frame, name, namelen, value, valuelen);
  });
}

int on_frame_recv_cb(nghttp2_session *, const nghttp2_frame *frame,
                     void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn, [&] { return conn->on_frame_recv(frame); });
}

int on_data_chunk_recv_cb(nghttp2_session *, uint8_t, int32_t stream_id,
                          const uint8_t *data, size_t len, void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn,
                  [&] { return conn->on_data_chunk(stream_id, data, len); });
}

int on_stream_close_cb(nghttp2_session *, int32_t stream_id,
                       uint32_t error_code, void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn,
                  [&] { return conn->on_stream_close(stream_id, error_code); });
}

int on_frame_send_cb(nghttp2_session *, const nghttp2_frame *frame,
                     void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn, [&] { return conn->on_frame_sent(frame); });
}

int on_invalid_frame_recv_cb(nghttp2_session *, const nghttp2_frame *frame,
                             int lib_error_code, void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return conn->on_invalid_frame(frame, lib_error_code);
}

int error_cb(nghttp2_session *, int, const char *msg, size_t len,
             void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  conn->on_nghttp2_error(msg, len);
  return 0;
}

ssize_t read_body_cb(nghttp2_session *, int32_t stream_id, uint8_t *buf,
                     size_t length, uint32_t *data_flags, nghttp2_data_source *,
                     void *user_data) {
  auto conn = static_cast<Connection *>(user_data);
  return no_throw(conn, [&] {
    return conn->read_request_body(stream_id, buf, length, data_flags);
  });
}

// The callbacks are the same for every connection: build them once.
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
    // We return DATA to the flow-control windows ourselves, once the bytes
    // are delivered, so a paused response holds its server back.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    return OptionPtr(opt);
  }();
  return options.get();
}

// --- socket and timer trampolines -----------------------------------------

void read_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_read_event();
}
void write_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_write_event();
}
void tcp_connect_cb(evutil_socket_t, short what, void *arg) {
  static_cast<Connection *>(arg)->on_tcp_connect_event(what);
}
void connect_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_connect_timeout();
}
void settings_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_settings_timeout();
}
void idle_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_idle_timeout();
}
void lifetime_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_lifetime_timeout();
}
void ping_timer_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_ping_timer();
}
void ping_timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<Connection *>(arg)->on_ping_timeout();
}

uint64_t now_ms(event_base *base) {
  timeval tv;
  event_base_gettimeofday_cached(base, &tv);
  return uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
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

nghttp2_nv make_nv(const char *name, size_t namelen, const std::string &value) {
  return {reinterpret_cast<uint8_t *>(const_cast<char *>(name)),
          reinterpret_cast<uint8_t *>(const_cast<char *>(value.data())),
          namelen, value.size(), NGHTTP2_NV_FLAG_NONE};
}

} // namespace

Connection::Connection(event_base *base, ConnectionOwner &owner,
                       const Logger &log, const ConnectionSettings &settings,
                       uint64_t id, std::string name, const TlsTarget *tls)
    : base_(base), owner_(owner), log_(log), settings_(settings), id_(id),
      name_(std::move(name)), tls_(tls) {
  connect_timer_.reset(evtimer_new(base_, connect_timeout_cb, this));
  settings_timer_.reset(evtimer_new(base_, settings_timeout_cb, this));
  idle_timer_.reset(evtimer_new(base_, idle_timeout_cb, this));
  lifetime_timer_.reset(evtimer_new(base_, lifetime_timeout_cb, this));
  ping_timer_.reset(evtimer_new(base_, ping_timer_cb, this));
  ping_timeout_timer_.reset(evtimer_new(base_, ping_timeout_cb, this));
  update_capacity();
}

Connection::~Connection() {
  // The session goes before the socket; timers last. Nothing here calls
  // back into the owner.
  session_.reset();
  read_event_.reset();
  write_event_.reset();
  transport_.reset();
}

void Connection::update_capacity() {
  // 100 until the server's SETTINGS arrive, as RFC 9113 suggests assuming.
  uint32_t peer = 100;
  if (session_ && state_ != State::handshaking)
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

void Connection::arm(EventPtr &timer, uint32_t ms) {
  if (!timer || ms == 0)
    return;
  timeval tv = ms_to_timeval(ms);
  evtimer_add(timer.get(), &tv);
}

void Connection::connect(std::vector<Address> addresses) {
  addresses_ = std::move(addresses);
  next_address_ = 0;
  state_ = State::connecting;
  arm(lifetime_timer_, settings_.max_lifetime_ms);
  try_next_address();
}

void Connection::try_next_address() {
  while (next_address_ < addresses_.size()) {
    const Address &addr = addresses_[next_address_++];
    current_address_ = addr.to_string();
    evutil_socket_t fd =
        ::socket(addr.storage.ss_family,
                 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
      last_connect_error_ = current_address_ + ": " + strerror(errno);
      continue;
    }
    H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: connecting to %s",
               (unsigned long long)id_, current_address_.c_str());
    if (::connect(fd, addr.sa(), addr.length) == 0) {
      on_tcp_connected(fd);
      return;
    }
    if (errno != EINPROGRESS) {
      last_connect_timed_out_ = false;
      last_connect_error_ = current_address_ + ": " + strerror(errno);
      ::close(fd);
      continue;
    }
    // Connecting ourselves (rather than through libevent's helpers) tells the
    // TCP phase apart from the TLS handshake, so each gets its own timeout
    // and its own error.
    connect_fd_ = fd;
    connect_event_.reset(event_new(base_, fd, EV_WRITE, tcp_connect_cb, this));
    timeval tv = ms_to_timeval(settings_.connect_timeout_ms);
    if (!connect_event_ || event_add(connect_event_.get(), &tv) != 0) {
      connect_event_.reset();
      connect_fd_ = -1;
      ::close(fd);
      last_connect_error_ = current_address_ + ": cannot watch the socket";
      continue;
    }
    return;
  }
  Error err =
      make_error(H2POOL_ERR_CONNECT, "cannot connect to " + name_ +
                                         (last_connect_error_.empty()
                                              ? std::string()
                                              : ": " + last_connect_error_));
  if (last_connect_timed_out_)
    err.code = H2POOL_ERR_CONNECT_TIMEOUT;
  fail(err);
}

void Connection::on_tcp_connect_event(short what) {
  evutil_socket_t fd = connect_fd_;
  connect_event_.reset();
  connect_fd_ = -1;
  if (state_ == State::closed) {
    ::close(fd);
    return;
  }
  if (what & EV_TIMEOUT) {
    last_connect_timed_out_ = true;
    last_connect_error_ = current_address_ + ": connect timed out after " +
                          std::to_string(settings_.connect_timeout_ms) + " ms";
    ::close(fd);
    try_next_address();
    return;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    last_connect_timed_out_ = false;
    last_connect_error_ = current_address_ + ": " + strerror(err);
    ::close(fd);
    try_next_address();
    return;
  }
  on_tcp_connected(fd);
}

void Connection::attach_socket(evutil_socket_t fd) {
  state_ = State::connecting;
  current_address_ = "attached socket";
  arm(lifetime_timer_, settings_.max_lifetime_ms);
  on_tcp_connected(fd);
}

void Connection::on_tcp_connected(evutil_socket_t fd) {
  int one = 1;
  // Requests are small and latency-bound; Nagle would hold them back.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  evutil_make_socket_nonblocking(fd);
  if (tls_) {
    SSL *ssl = tls_->context->new_ssl(tls_->host, tls_->host_is_ip,
                                      tls_->sessions, this);
    if (!ssl) {
      ::close(fd);
      fail(make_error(H2POOL_ERR_TLS_CONFIG, "cannot set up TLS for " +
                                                 tls_->host + ": " +
                                                 openssl_error_string()));
      return;
    }
    // From here the transport owns the SSL object and the socket.
    auto tls = std::make_unique<TlsTransport>(fd, ssl);
    tls_transport_ = tls.get();
    transport_ = std::move(tls);
  } else {
    transport_ = std::make_unique<PlainTransport>(fd);
  }
  read_event_.reset(
      event_new(base_, fd, EV_READ | EV_PERSIST, read_event_cb, this));
  write_event_.reset(event_new(base_, fd, EV_WRITE, write_event_cb, this));
  if (!read_event_ || !write_event_ ||
      event_add(read_event_.get(), nullptr) != 0) {
    fail(make_error(H2POOL_ERR_NOMEM, "cannot watch the socket"));
    return;
  }
  if (tls_) {
    state_ = State::tls_handshaking;
    arm(connect_timer_, settings_.tls_handshake_timeout_ms);
    continue_handshake();
    return;
  }
  start_session();
}

void Connection::on_tls_session(SSL_SESSION *session) {
  if (tls_ && tls_->sessions)
    tls_->sessions->store(session);
  else
    SSL_SESSION_free(session);
}

Error Connection::tls_failure() {
  SSL *ssl = tls_transport_ ? tls_transport_->ssl() : nullptr;
  long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK)
    return make_error(H2POOL_ERR_TLS_VERIFY,
                      "certificate of " + name_ + " failed verification: " +
                          X509_verify_cert_error_string(verify));
  // The first error OpenSSL queued (with a library set) says most.
  unsigned long ssl_error = tls_transport_ ? tls_transport_->last_error() : 0;
  if (ssl_error != 0 && ERR_GET_LIB(ssl_error) == ERR_LIB_SSL &&
      ERR_GET_REASON(ssl_error) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL)
    return make_error(H2POOL_ERR_TLS_ALPN,
                      name_ +
                          " refused HTTP/2 in ALPN (no_application_protocol "
                          "alert)");
  if (ssl_error != 0)
    return make_error(H2POOL_ERR_TLS_HANDSHAKE,
                      "TLS handshake with " + name_ +
                          " failed: " + openssl_error_string(ssl_error));
  return make_error(H2POOL_ERR_TLS_HANDSHAKE,
                    "connection to " + name_ +
                        " closed during the TLS handshake");
}

void Connection::on_connect_timeout() {
  if (state_ != State::tls_handshaking)
    return;
  fail(make_error(H2POOL_ERR_TLS_HANDSHAKE_TIMEOUT,
                  "TLS handshake with " + name_ + " did not finish within " +
                      std::to_string(settings_.tls_handshake_timeout_ms) +
                      " ms"));
}

void Connection::continue_handshake() {
  if (state_ != State::tls_handshaking)
    return;
  Transport::Status st = tls_transport_->handshake();
  if (st == Transport::Status::want_read)
    return; // the read event is always armed
  if (st == Transport::Status::want_write) {
    event_add(write_event_.get(), nullptr);
    return;
  }
  evtimer_del(connect_timer_.get());
  if (st != Transport::Status::ok) {
    fail(tls_failure());
    return;
  }
  SSL *ssl = tls_transport_->ssl();
  const unsigned char *proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  if (len != 2 || memcmp(proto, "h2", 2) != 0) {
    // Never send HTTP/2 frames to a server that did not agree to them.
    std::string chosen =
        len ? "selected '" +
                  std::string(reinterpret_cast<const char *>(proto), len) + "'"
            : std::string("selected no protocol");
    fail(make_error(H2POOL_ERR_TLS_ALPN,
                    name_ + " did not select HTTP/2 in ALPN (" + chosen + ")"));
    return;
  }
  tls_resumed_ = SSL_session_reused(ssl) == 1;
  owner_.on_tls_established(*this);
  start_session();
  // Reading ahead, the handshake may have taken the server's first HTTP/2
  // frames off the socket too: look at them now, not on the next readiness.
  if (state_ != State::closed)
    event_active(read_event_.get(), EV_READ, 0);
}

void Connection::on_transport_closed(Transport::Status st) {
  if (state_ == State::closed)
    return;
  Error err = connection_error();
  if (err.code == H2POOL_ERR_CONNECTION_LOST) {
    if (tls_ && state_ == State::handshaking) {
      // TLS 1.3 servers send some handshake alerts (a client certificate
      // they required, for one) only after the client has finished its
      // part, so they surface here, before the server's SETTINGS. The
      // alert itself may be lost to a TCP reset, but a server that
      // accepted TLS sends SETTINGS at once: a close before them is the
      // handshake failing.
      Error tls = tls_failure();
      if (tls.message.find("closed during") != std::string::npos)
        tls.message = "connection to " + name_ +
                      " closed by the server after the TLS handshake, "
                      "before HTTP/2 began (as a server does that rejects "
                      "the client certificate under TLS 1.3)";
      close(tls);
      return;
    }
    int sys = transport_ ? transport_->sys_error() : 0;
    err.message =
        "connection to " + name_ +
        (st == Transport::Status::eof || sys == 0
             ? " closed by the server"
             : std::string(" failed: ") + evutil_socket_error_to_string(sys));
  }
  close(err);
}

void Connection::start_session() {
  nghttp2_session *session = nullptr;
  if (!shared_callbacks() ||
      nghttp2_session_client_new3(
          &session, shared_callbacks(), this, shared_options(),
          settings_.allocator ? settings_.allocator->mem() : nullptr) != 0) {
    fail(make_error(H2POOL_ERR_NOMEM, "cannot create HTTP/2 session"));
    return;
  }
  session_.reset(session);
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.stream_window_bytes},
  };
  nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, iv,
                          sizeof iv / sizeof iv[0]);
  if (settings_.connection_window_bytes > 65535)
    nghttp2_session_set_local_window_size(
        session_.get(), NGHTTP2_FLAG_NONE, 0,
        int32_t(settings_.connection_window_bytes));
  state_ = State::handshaking;
  arm(settings_timer_, settings_.settings_timeout_ms);
  last_read_ms_ = now_ms(base_);
  arm(ping_timer_, settings_.ping_interval_ms);
  flush();
}

void Connection::fail(const Error &why) { close(why); }

int Connection::submit(Request &req) {
  if (!has_free_slot())
    return H2POOL_ERR_INTERNAL;
  // Pseudo-headers, content-length and accept-encoding come before the
  // caller's fields. Most requests fit the stack array; only unusually many
  // headers allocate.
  constexpr size_t kInline = 24;
  std::array<nghttp2_nv, kInline> inline_nva;
  std::vector<nghttp2_nv> heap_nva;
  size_t max_fields = 6 + req.headers.size();
  if (max_fields > kInline)
    heap_nva.resize(max_fields);
  nghttp2_nv *nva = max_fields > kInline ? heap_nva.data() : inline_nva.data();
  size_t n = 0;
  static const std::string kHttp = "http", kHttps = "https";
  static const std::string kAcceptEncoding = "accept-encoding",
                           kGzipDeflate = "gzip, deflate";
  nva[n++] = make_nv(":method", 7, req.method);
  nva[n++] =
      make_nv(":scheme", 7, req.url.scheme == Scheme::https ? kHttps : kHttp);
  nva[n++] = make_nv(":authority", 10, req.authority);
  nva[n++] = make_nv(":path", 5, req.url.path);
  std::string content_length;
  if (req.add_content_length) {
    content_length = std::to_string(
        req.body_reader ? uint64_t(req.body_content_length) : req.body_size);
    nva[n++] = make_nv("content-length", 14, content_length);
  }
  if (req.add_accept_encoding)
    nva[n++] = make_nv(kAcceptEncoding, kGzipDeflate);
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
    if (stream_id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
      drain();
    return stream_id == NGHTTP2_ERR_NOMEM ? H2POOL_ERR_NOMEM
                                          : H2POOL_ERR_CONNECTION_LOST;
  }
  req.response.stream_id = stream_id;
  req.response.connection_id = id_;
  ++req.attempts;
  streams_.push_back(&req);
  ++active_;
  ++streams_opened_;
  peak_ = std::max(peak_, active_);
  evtimer_del(idle_timer_.get());
  if (settings_.max_streams_per_connection &&
      streams_opened_ >= settings_.max_streams_per_connection)
    drain();
  return H2POOL_OK;
}

void Connection::reset(Request &req, uint32_t code) {
  if (!streams_.contains(&req))
    return;
  streams_.remove(&req);
  if (session_ && !req.pending_raw.empty())
    nghttp2_session_consume_connection(session_.get(), req.pending_raw.size());
  if (session_ && req.response.stream_id > 0) {
    nghttp2_session_set_stream_user_data(session_.get(), req.response.stream_id,
                                         nullptr);
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                              req.response.stream_id, code);
    flush();
  }
}

void Connection::drain() {
  if (state_ == State::closed || state_ == State::draining)
    return;
  state_ = State::draining;
  owner_.on_connection_changed(*this);
  settle();
}

void Connection::resume_upload(Request &req) {
  if (!streams_.contains(&req) || !req.upload_deferred || !session_)
    return;
  req.upload_deferred = false;
  nghttp2_session_resume_data(session_.get(), req.response.stream_id);
  flush();
}

void Connection::resume_download(Request &req) {
  if (!streams_.contains(&req) || !session_)
    return;
  size_t consumed = 0;
  int rc = resume_body(req, settings_.body_limits, &consumed);
  if (consumed)
    consume(req.response.stream_id, consumed);
  if (rc != H2POOL_OK)
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                              req.response.stream_id, NGHTTP2_CANCEL);
  flush();
}

void Connection::consume(int32_t stream_id, size_t len) {
  // A stream nghttp2 already closed has no window left to reopen; the
  // connection's still needs the bytes back.
  if (nghttp2_session_consume(session_.get(), stream_id, len) != 0)
    nghttp2_session_consume_connection(session_.get(), len);
}

void Connection::close(const Error &why, bool clean) {
  if (state_ == State::closed)
    return;
  if (connect_event_) {
    connect_event_.reset();
    ::close(connect_fd_);
    connect_fd_ = -1;
  }
  state_ = State::closed;
  evtimer_del(connect_timer_.get());
  evtimer_del(settings_timer_.get());
  evtimer_del(idle_timer_.get());
  evtimer_del(lifetime_timer_.get());
  evtimer_del(ping_timer_.get());
  evtimer_del(ping_timeout_timer_.get());
  if (session_ && transport_) {
    if (!goaway_sent_)
      nghttp2_session_terminate_session(session_.get(), NGHTTP2_NO_ERROR);
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_.get(), &data)) > 0)
      out_.append(reinterpret_cast<const char *>(data), size_t(n));
    // Best effort, never blocking: whatever the socket takes now. (The
    // state is already closed, so a write error does not close again, and
    // the write event write_out() may arm is deleted below.)
    bool all_sent = write_out() == WriteResult::done;
    // close_notify on an orderly close keeps the session resumable: OpenSSL
    // marks sessions of connections freed without it as bad.
    if (tls_transport_ && all_sent && clean)
      tls_transport_->shutdown();
  }
  out_.clear();
  out_off_ = 0;
  if (read_event_)
    event_del(read_event_.get());
  if (write_event_)
    event_del(write_event_.get());
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: closed: %s",
             (unsigned long long)id_, why.message.c_str());
  while (Request *req = streams_.pop_front()) {
    if (session_)
      nghttp2_session_set_stream_user_data(session_.get(),
                                           req->response.stream_id, nullptr);
    StreamEnd end;
    end.connection_error = &why;
    owner_.on_stream_closed(*this, *req, end);
  }
  active_ = 0;
  owner_.on_connection_closed(*this, why);
}

void Connection::flush() {
  if (!fill_output())
    return;
  // The write itself waits for the end of this loop turn, so that what
  // every callback of the turn queued (responses read, new requests
  // placed, window updates) leaves in one system call.
  if (out_off_ < out_.size() && !write_scheduled_) {
    write_scheduled_ = true;
    event_active(write_event_.get(), EV_WRITE, 0);
  }
  settle();
}

bool Connection::fill_output() {
  if (!session_ || !transport_ || state_ == State::closed)
    return false;
  if (out_off_ > 0) {
    // Drop what was sent, so the buffer only holds what still has to go.
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  // Stop collecting at the high-water mark so that a large upload waits in
  // nghttp2 (its data source pulls on demand), not in memory here.
  while (out_.size() < kOutputHighWater) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
    if (n < 0) {
      close(
          make_error(H2POOL_ERR_INTERNAL, std::string("HTTP/2 send failed: ") +
                                              nghttp2_strerror(int(n))));
      return false;
    }
    if (n == 0)
      break;
    out_.append(reinterpret_cast<const char *>(data), size_t(n));
  }
  return true;
}

Connection::WriteResult Connection::write_out() {
  while (out_off_ < out_.size()) {
    Transport::Result r = transport_->write(
        reinterpret_cast<const uint8_t *>(out_.data()) + out_off_,
        out_.size() - out_off_);
    out_off_ += r.bytes;
    switch (r.status) {
    case Transport::Status::ok:
      continue;
    case Transport::Status::want_write:
      event_add(write_event_.get(), nullptr);
      return WriteResult::blocked;
    case Transport::Status::want_read:
      write_wants_read_ = true; // the read event is always armed
      return WriteResult::blocked;
    default:
      on_transport_closed(r.status);
      return WriteResult::closed;
    }
  }
  out_.clear();
  out_off_ = 0;
  // A bulk upload grows the buffer to the high-water mark; an idle
  // connection should not keep that.
  if (out_.capacity() > kKeptOutputCapacity)
    std::string().swap(out_);
  return WriteResult::done;
}

bool Connection::settle() {
  if (state_ == State::closed)
    return false;
  if (!session_)
    return true;
  bool want_read = nghttp2_session_want_read(session_.get());
  bool want_write = nghttp2_session_want_write(session_.get());
  if (!want_read && !want_write) {
    close(connection_error());
    return false;
  }
  if (state_ == State::draining && active_ == 0) {
    close(goaway_received_
              ? connection_error()
              : make_error(H2POOL_ERR_CONNECTION_LOST, "connection drained"));
    return false;
  }
  if (state_ == State::ready && active_ == 0 && settings_.idle_timeout_ms &&
      !evtimer_pending(idle_timer_.get(), nullptr))
    arm(idle_timer_, settings_.idle_timeout_ms);
  return true;
}

Error Connection::goaway_error() const {
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

Error Connection::connection_error() const {
  if (goaway_received_)
    return goaway_error();
  Error e;
  if (goaway_sent_ && goaway_sent_code_ != NGHTTP2_NO_ERROR) {
    e.code = H2POOL_ERR_PROTOCOL;
    e.http2_code = goaway_sent_code_;
    e.message = "server violated HTTP/2 (" +
                std::string(http2_code_name(goaway_sent_code_)) + ")";
    if (!last_nghttp2_error_.empty())
      e.message += ": " + last_nghttp2_error_;
    return e;
  }
  e.code = H2POOL_ERR_CONNECTION_LOST;
  e.message = "connection to " + name_ + " lost";
  return e;
}

void Connection::on_read_event() {
  if (state_ == State::closed)
    return;
  if (state_ == State::tls_handshaking) {
    continue_handshake();
    return;
  }
  if (write_wants_read_) {
    write_wants_read_ = false;
    if (write_out() == WriteResult::closed)
      return;
  }
  on_readable();
}

void Connection::on_write_event() {
  write_scheduled_ = false;
  if (state_ == State::closed)
    return;
  if (state_ == State::tls_handshaking) {
    continue_handshake();
    return;
  }
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

void Connection::on_readable() {
  if (state_ == State::closed || !session_ || !transport_)
    return;
  last_read_ms_ = now_ms(base_);
  ReadBuffer buf = thread_read_buffer();
  uint8_t fallback[16384];
  if (buf.size == 0)
    buf = {fallback, sizeof fallback};
  // Bounded rounds, so that one connection streaming a large body does not
  // starve the others of the loop thread.
  bool drained = false;
  for (int round = 0; round < kMaxReadRounds && !drained; ++round) {
    size_t filled = 0;
    Transport::Status st = Transport::Status::ok;
    while (filled < buf.size) {
      Transport::Result r =
          transport_->read(buf.data + filled, buf.size - filled);
      filled += r.bytes;
      st = r.status;
      if (st != Transport::Status::ok)
        break;
      if (transport_->short_read_drains() && filled < buf.size) {
        st = Transport::Status::want_read; // the socket is empty
        break;
      }
    }
    if (filled > 0 && !feed(buf.data, filled))
      return;
    if (st == Transport::Status::eof || st == Transport::Status::error) {
      on_transport_closed(st);
      return;
    }
    if (st == Transport::Status::want_write) {
      read_wants_write_ = true;
      event_add(write_event_.get(), nullptr);
      drained = true;
    }
    drained = drained || st == Transport::Status::want_read;
  }
  // Out of rounds with input left: come back on the next loop turn. The
  // socket may look empty while OpenSSL holds records it read ahead, so
  // readiness alone would not bring us back.
  if (!drained)
    event_active(read_event_.get(), EV_READ, 0);
  flush();
}

bool Connection::feed(const uint8_t *data, size_t len) {
  ssize_t rv = nghttp2_session_mem_recv(session_.get(), data, len);
  if (state_ == State::closed)
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
  close(e);
  return false;
}

void Connection::on_settings_timeout() {
  if (state_ != State::handshaking)
    return;
  close(make_error(H2POOL_ERR_SETTINGS_TIMEOUT,
                   "no SETTINGS from " + name_ + " within " +
                       std::to_string(settings_.settings_timeout_ms) + " ms"));
}

void Connection::on_idle_timeout() {
  if (state_ == State::ready && active_ == 0)
    close(make_error(H2POOL_ERR_CONNECTION_LOST, "idle connection closed"),
          /*clean=*/true);
}

void Connection::on_lifetime_timeout() {
  if (is_pending())
    return; // a connection still starting up gets no extra lifetime check
  drain();
}

void Connection::on_ping_timer() {
  if (state_ == State::closed || !session_ || ping_outstanding_)
    return;
  uint64_t idle = now_ms(base_) - last_read_ms_;
  if (idle < settings_.ping_interval_ms) {
    arm(ping_timer_, uint32_t(settings_.ping_interval_ms - idle));
    return;
  }
  // Nothing heard for a whole interval: make the server prove it is there
  // before the pool trusts this connection with more streams.
  ping_outstanding_ = true;
  nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, nullptr);
  arm(ping_timeout_timer_, settings_.ping_timeout_ms);
  flush();
}

void Connection::on_ping_timeout() {
  if (state_ == State::closed || !ping_outstanding_)
    return;
  close(make_error(H2POOL_ERR_CONNECTION_LOST,
                   "no PING ACK from " + name_ + " within " +
                       std::to_string(settings_.ping_timeout_ms) + " ms"));
}

int Connection::on_invalid_frame(const nghttp2_frame *frame, int lib_error) {
  last_nghttp2_error_ = std::string("invalid ") +
                        (frame->hd.type == NGHTTP2_HEADERS ? "HEADERS"
                         : frame->hd.type == NGHTTP2_DATA  ? "DATA"
                                                           : "frame") +
                        " from the server: " + nghttp2_strerror(lib_error);
  return 0;
}

int Connection::on_begin_headers(const nghttp2_frame *frame) {
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  if (Request *req = stream_request(session_.get(), frame->hd.stream_id))
    req->in_trailers = req->got_headers; // a block after the final headers
  return 0;
}

int Connection::on_header(const nghttp2_frame *frame, const uint8_t *name,
                          size_t namelen, const uint8_t *value,
                          size_t valuelen) {
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  Request *req = stream_request(session_.get(), frame->hd.stream_id);
  if (!req)
    return 0;
  req->header_bytes += namelen + valuelen + 32;
  ++req->header_fields;
  if (req->header_bytes > settings_.max_response_header_bytes ||
      req->header_fields > settings_.max_response_header_fields) {
    // Beyond the limits a server is broken or hostile, and buffering more
    // only helps it exhaust our memory.
    req->local_error = make_error(
        H2POOL_ERR_RESPONSE_TOO_LARGE,
        "response headers exceed " +
            std::to_string(settings_.max_response_header_bytes) + " bytes or " +
            std::to_string(settings_.max_response_header_fields) + " fields");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (req->in_trailers) {
    if (namelen > 0 && name[0] != ':')
      req->response.trailers.add(
          {reinterpret_cast<const char *>(name), namelen},
          {reinterpret_cast<const char *>(value), valuelen});
    return 0;
  }
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
    int status = 0;
    for (size_t i = 0; i < valuelen; ++i)
      status = status * 10 + (value[i] - '0'); // nghttp2 checked the digits
    // 1xx responses are interim: the final response follows in a later
    // HEADERS frame on the same stream.
    if (status >= 200 || status == 101) {
      req->response.status = status;
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
  if (req->response.headers.empty())
    req->response.headers.reserve(256, 8);
  req->response.headers.add({reinterpret_cast<const char *>(name), namelen},
                            {reinterpret_cast<const char *>(value), valuelen});
  return 0;
}

int Connection::on_frame_recv(const nghttp2_frame *frame) {
  switch (frame->hd.type) {
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK)
      break;
    if (state_ == State::handshaking) {
      evtimer_del(settings_timer_.get());
      state_ = State::ready;
      was_ready_ = true;
      H2POOL_LOG(log_, H2POOL_LOG_DEBUG,
                 "conn %llu: ready, server allows %u concurrent streams",
                 (unsigned long long)id_,
                 nghttp2_session_get_remote_settings(
                     session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
    }
    update_capacity();
    owner_.on_connection_changed(*this);
    break;
  case NGHTTP2_HEADERS:
  case NGHTTP2_DATA: {
    Request *req = stream_request(session_.get(), frame->hd.stream_id);
    if (!req)
      break;
    if (frame->hd.type == NGHTTP2_HEADERS && req->got_headers &&
        !req->headers_delivered && req->local_error.code == H2POOL_OK &&
        begin_body(*req, settings_.body_limits) != H2POOL_OK)
      nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE,
                                frame->hd.stream_id, NGHTTP2_CANCEL);
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && req->got_headers)
      req->end_stream = true;
    break;
  }
  case NGHTTP2_PING:
    if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && ping_outstanding_) {
      ping_outstanding_ = false;
      evtimer_del(ping_timeout_timer_.get());
      arm(ping_timer_, settings_.ping_interval_ms);
    }
    break;
  case NGHTTP2_GOAWAY:
    goaway_received_ = true;
    goaway_last_stream_id_ = frame->goaway.last_stream_id;
    goaway_code_ = frame->goaway.error_code;
    goaway_debug_.assign(
        reinterpret_cast<const char *>(frame->goaway.opaque_data),
        std::min<size_t>(frame->goaway.opaque_data_len, 256));
    H2POOL_LOG(log_, H2POOL_LOG_INFO,
               "conn %llu: GOAWAY(%s, last_stream_id=%d)",
               (unsigned long long)id_, http2_code_name(goaway_code_),
               goaway_last_stream_id_);
    if (state_ == State::ready || state_ == State::handshaking)
      state_ = State::draining;
    owner_.on_connection_changed(*this);
    break;
  default:
    break;
  }
  return 0;
}

int Connection::on_data_chunk(int32_t stream_id, const uint8_t *data,
                              size_t len) {
  Request *req = stream_request(session_.get(), stream_id);
  if (!req || req->local_error.code != H2POOL_OK) {
    consume(stream_id, len);
    return 0;
  }
  size_t consumed = 0;
  int rc = accept_body(*req, data, len, settings_.body_limits, &consumed);
  if (consumed)
    consume(stream_id, consumed);
  if (rc != H2POOL_OK)
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id,
                              NGHTTP2_CANCEL);
  return 0;
}

int Connection::on_stream_close(int32_t stream_id, uint32_t error_code) {
  if (active_ > 0)
    --active_;
  Request *req = stream_request(session_.get(), stream_id);
  if (req && streams_.contains(req)) {
    streams_.remove(req);
    // Bytes held for a paused response stay with the request, but the
    // connection's window must not stay closed behind them.
    if (!req->pending_raw.empty())
      nghttp2_session_consume_connection(session_.get(),
                                         req->pending_raw.size());
    StreamEnd end;
    end.http2_code = error_code;
    owner_.on_stream_closed(*this, *req, end);
  }
  if (state_ == State::ready)
    owner_.on_connection_changed(*this);
  return 0;
}

ssize_t Connection::read_request_body(int32_t stream_id, uint8_t *buf,
                                      size_t length, uint32_t *data_flags) {
  Request *req = stream_request(session_.get(), stream_id);
  if (!req)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (!req->body_reader) {
    size_t n = std::min(length, req->body_size - req->body_offset);
    if (n)
      memcpy(buf, req->body_data + req->body_offset, n);
    req->body_offset += n;
    if (req->body_offset == req->body_size)
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return ssize_t(n);
  }
  int eof = 0;
  int64_t n = req->body_reader(buf, length, &eof, req->user_data);
  if (n == H2POOL_BODY_WAIT || (n == 0 && !eof)) {
    req->upload_deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (n < 0 || uint64_t(n) > length) {
    req->local_error = make_error(
        H2POOL_ERR_BODY_SOURCE,
        n < 0 ? "body read callback aborted the upload"
              : "body read callback returned more bytes than asked for");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  req->body_offset += size_t(n);
  if (eof) {
    req->body_eof = true;
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return ssize_t(n);
}

int Connection::on_frame_sent(const nghttp2_frame *frame) {
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    // nghttp2 resets a stream itself when the response breaks HTTP/2's
    // message rules (bad pseudo-headers, content-length mismatch, ...).
    // That is the server's fault, but not a reset *by* the server.
    Request *req = stream_request(session_.get(), frame->hd.stream_id);
    if (req && req->local_error.code == H2POOL_OK) {
      req->local_error = make_error(H2POOL_ERR_PROTOCOL,
                                    "malformed response from " + name_ +
                                        (last_nghttp2_error_.empty()
                                             ? std::string()
                                             : ": " + last_nghttp2_error_));
      req->local_error.http2_code = frame->rst_stream.error_code;
    }
  }
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    goaway_sent_ = true;
    goaway_sent_code_ = frame->goaway.error_code;
  }
  return 0;
}

void Connection::on_nghttp2_error(const char *msg, size_t len) {
  last_nghttp2_error_.assign(msg, std::min<size_t>(len, 200));
  H2POOL_LOG(log_, H2POOL_LOG_INFO, "conn %llu: %s", (unsigned long long)id_,
             last_nghttp2_error_.c_str());
}

} // namespace h2pool_core
