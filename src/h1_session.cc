#include "h1_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <new>

#include "connection.h"
#include "headers.h"
#include "priority.h"

namespace h2pool_core {
namespace {

// Output (request head and body) queued before the body source is asked for
// more; a large upload waits in its source, not in memory here.
constexpr size_t kOutputHighWater = 1u << 20;
// Body bytes asked of the source at a time (one chunk, when chunked).
constexpr size_t kBodyPiece = 64u << 10;
constexpr int kMaxReadRounds = 4;
constexpr int kMaxWriteRounds = 4;
// Per-field overhead counted against the header limit, as RFC 7541 counts
// it for HTTP/2, so that both protocols share one limit.
constexpr size_t kFieldOverhead = 32;

H1Session *session_of(http_parser *p) {
  return static_cast<H1Session *>(p->data);
}

// Nothing may unwind through http-parser's C frames (a caller's on_data or
// on_headers callback may throw): an exception fails the callback, and the
// session reports why.
template <typename Fn> int no_throw(http_parser *p, Fn &&fn) {
  try {
    return fn(session_of(p));
  } catch (const std::bad_alloc &) {
    session_of(p)->note_callback_failure(H2POOL_ERR_NOMEM);
  } catch (...) {
    session_of(p)->note_callback_failure(H2POOL_ERR_INTERNAL);
  }
  return -1;
}

int on_status_cb(http_parser *p, const char *at, size_t len) {
  return no_throw(p, [&](H1Session *s) { return s->on_status(at, len); });
}
int on_header_field_cb(http_parser *p, const char *at, size_t len) {
  return no_throw(p, [&](H1Session *s) { return s->on_header_field(at, len); });
}
int on_header_value_cb(http_parser *p, const char *at, size_t len) {
  return no_throw(p, [&](H1Session *s) { return s->on_header_value(at, len); });
}
int on_headers_complete_cb(http_parser *p) {
  return no_throw(p, [&](H1Session *s) { return s->on_headers_complete(); });
}
int on_body_cb(http_parser *p, const char *at, size_t len) {
  return no_throw(p, [&](H1Session *s) { return s->on_body(at, len); });
}
int on_chunk_header_cb(http_parser *p) {
  return no_throw(p, [&](H1Session *s) { return s->on_chunk_header(); });
}
int on_message_complete_cb(http_parser *p) {
  return no_throw(p, [&](H1Session *s) { return s->on_message_complete(); });
}

const http_parser_settings &parser_settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_status = on_status_cb;
    s.on_header_field = on_header_field_cb;
    s.on_header_value = on_header_value_cb;
    s.on_headers_complete = on_headers_complete_cb;
    s.on_body = on_body_cb;
    s.on_chunk_header = on_chunk_header_cb;
    s.on_message_complete = on_message_complete_cb;
    return s;
  }();
  return settings;
}

void read_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<H1Session *>(arg)->on_read_event();
}
void write_event_cb(evutil_socket_t, short, void *arg) {
  static_cast<H1Session *>(arg)->on_write_event();
}
void continue_timer_cb(evutil_socket_t, short, void *arg) {
  static_cast<H1Session *>(arg)->on_continue_timeout();
}

// RFC 9110 section 9.3: methods whose requests carry content by definition
// get "content-length: 0" when they have none, which servers may require.
bool expects_content(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

const HeaderField *find_field(const Request &req, std::string_view name) {
  for (const auto &h : req.headers)
    if (h.name == name) // request field names are stored lower case
      return &h;
  return nullptr;
}

void append_hex(std::string &out, uint64_t n) {
  char buf[17];
  int i = 16;
  buf[i] = '\0';
  do {
    buf[--i] = "0123456789abcdef"[n & 15];
    n >>= 4;
  } while (n);
  out.append(buf + i, size_t(16 - i));
}

} // namespace

H1Session::H1Session(event_base *base, Connection &conn, const Logger &log,
                     const H1Settings &settings, uint64_t id,
                     const std::string &name,
                     std::unique_ptr<Transport> transport)
    : base_(base), conn_(conn), log_(log), settings_(settings), id_(id),
      name_(name), transport_(std::move(transport)),
      tls_(dynamic_cast<TlsTransport *>(transport_.get()) != nullptr) {
  capacity_ = 1;
  continue_timer_.reset(evtimer_new(base_, continue_timer_cb, this));
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
}

H1Session::~H1Session() {
  continue_timer_.reset();
  read_event_.reset();
  write_event_.reset();
  transport_.reset();
}

void H1Session::start() {
  evutil_socket_t fd = transport_->fd();
  read_event_.reset(
      event_new(base_, fd, EV_READ | EV_PERSIST, read_event_cb, this));
  write_event_.reset(event_new(base_, fd, EV_WRITE, write_event_cb, this));
  // Read while idle too: that is how a server's close of a kept-alive
  // connection is noticed before a request is sent into it.
  if (!read_event_ || !write_event_ || !continue_timer_ ||
      event_add(read_event_.get(), nullptr) != 0) {
    end(make_error(H2POOL_ERR_NOMEM, "cannot watch the socket"));
    return;
  }
  // HTTP/1.1 has no handshake of its own: ready at once.
  conn_.session_ready();
}

void H1Session::end(const Error &why) {
  if (ended_)
    return;
  conn_.session_ended(why); // closes us through close()
}

void H1Session::finish(const std::string &why) {
  if (ended_)
    return;
  conn_.session_finished(make_error(H2POOL_ERR_CONNECTION_LOST, why));
}

void H1Session::fail(int code, const std::string &message) {
  if (ended_)
    return;
  Error e = make_error(code, message);
  if (Request *req = current_.front())
    if (req->local_error().code == H2POOL_OK)
      req->set_local_error(e);
  end(e);
}

int H1Session::submit(Request &req) {
  // Extended CONNECT (RFC 8441) is HTTP/2's; HTTP/1.1 would need Upgrade,
  // which the caller did not ask for.
  if (!req.protocol().empty())
    return H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED;
  if (ended_ || !current_.empty())
    return H2POOL_ERR_INTERNAL;
  req.reset_for_retry();
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  event_ = Event::none;
  framing_ = Framing::lines;
  prev_cr_ = false;
  line_start_ = true;
  body_after_line_ = false;
  field_.clear();
  value_.clear();
  in_value_ = false;
  close_after_ = false;

  bool has_body = req.body_size > 0 || req.body_reader;
  bool caller_length = find_field(req, "content-length") != nullptr;
  chunked_upload_ =
      req.body_reader && req.body_content_length < 0 && !caller_length;
  check_length_ = req.add_content_length;
  declared_length_ =
      req.body_reader ? uint64_t(std::max<int64_t>(req.body_content_length, 0))
                      : req.body_size;

  // The head. Field names are lower case (as the caller's were stored);
  // HTTP/1.1 names are case-insensitive.
  std::string &out = out_.tail();
  out += req.method.view();
  out += ' ';
  out += req.method == "CONNECT" ? req.authority() : req.url.path;
  out += " HTTP/1.1\r\nhost: ";
  out += req.authority();
  out += "\r\n";
  if (chunked_upload_) {
    out += "transfer-encoding: chunked\r\n";
  } else if (req.add_content_length) {
    out += "content-length: ";
    out += std::to_string(declared_length_);
    out += "\r\n";
  } else if (!has_body && !caller_length &&
             expects_content(req.method.view())) {
    out += "content-length: 0\r\n";
  }
  if (req.add_accept_encoding) {
    out += "accept-encoding: ";
    out += kAcceptEncoding;
    out += "\r\n";
  }
  // RFC 9218 section 5 applies to HTTP/1.1 too; a later change cannot be
  // sent (there is no frame for it) and only the server decides anyway.
  if (!req.caller_priority &&
      !Priority{req.urgency, req.incremental}.is_default()) {
    out += "priority: ";
    out += format_priority({req.urgency, req.incremental});
    out += "\r\n";
  }
  for (const auto &h : req.headers) {
    // te: trailers is an HTTP/2 (and gRPC) request field; in HTTP/1.1 it
    // would need "connection: te", and means nothing to the exchange.
    if (h.name == "te")
      continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "\r\n";

  const HeaderField *expect = find_field(req, "expect");
  waiting_continue_ =
      has_body && expect &&
      equals_ignoring_ascii_case(trim_ows(expect->value), "100-continue") &&
      settings_.expect_continue_timeout_ms > 0;
  sending_body_ = has_body && !waiting_continue_;
  body_done_ = !has_body;
  if (waiting_continue_)
    arm_timer(continue_timer_, settings_.expect_continue_timeout_ms);

  req.connection_id = id_;
  req.wire_protocol = H2POOL_PROTOCOL_HTTP_1_1;
  ++req.attempts;
  current_.push_back(&req);
  active_ = 1;
  peak_ = 1;
  return H2POOL_OK;
}

void H1Session::reset(Request &req, uint32_t) {
  if (!current_.contains(&req))
    return;
  current_.remove(&req);
  active_ = 0;
  finish("request abandoned mid-exchange");
}

void H1Session::resume_upload(Request &req) {
  if (!current_.contains(&req) || !req.upload_deferred)
    return;
  req.upload_deferred = false;
  flush();
}

void H1Session::resume_download(Request &req) {
  if (!current_.contains(&req))
    return;
  size_t consumed = 0;
  if (resume_body(req, settings_.body_limits, &consumed) != H2POOL_OK) {
    fail(req.local_error().code, req.local_error().message);
    return;
  }
  if (!req.download_paused && read_paused_ && !ended_) {
    read_paused_ = false;
    event_add(read_event_.get(), nullptr);
    // OpenSSL may hold records it read ahead: readiness alone would not
    // bring us back.
    event_active(read_event_.get(), EV_READ, 0);
  }
}

void H1Session::stop_reading() {
  if (read_paused_)
    return;
  read_paused_ = true;
  event_del(read_event_.get());
}

void H1Session::on_continue_timeout() {
  if (ended_ || !waiting_continue_)
    return;
  // RFC 9110 section 10.1.1: a client need not wait for 100 (Continue)
  // indefinitely; servers that do not implement it would wait for us.
  waiting_continue_ = false;
  sending_body_ = true;
  flush();
}

// --- output --------------------------------------------------------------

bool H1Session::fill_body() {
  Request *req = current_.front();
  while (req && sending_body_ && !body_done_ && !req->upload_deferred &&
         out_.pending() < kOutputHighWater) {
    std::string &out = out_.tail();
    size_t base = out.size();
    out.resize(base + kBodyPiece);
    bool eof = false;
    int64_t n = read_request_body(*req, reinterpret_cast<uint8_t *>(&out[base]),
                                  kBodyPiece, &eof);
    if (n < 0) {
      out.resize(base);
      if (n == kBodyWait)
        return true;
      fail(req->local_error().code, req->local_error().message);
      return false;
    }
    out.resize(base + size_t(n));
    if (check_length_ && (req->body_offset > declared_length_ ||
                          (eof && req->body_offset != declared_length_))) {
      // The server would read the difference as the next request's bytes,
      // or wait for ever.
      req->set_local_error(make_error(
          H2POOL_ERR_BODY_SOURCE,
          "body read callback supplied " + std::to_string(req->body_offset) +
              (eof ? "" : " or more") + " bytes for a content-length of " +
              std::to_string(declared_length_)));
      fail(req->local_error().code, req->local_error().message);
      return false;
    }
    if (chunked_upload_) {
      if (n > 0) {
        std::string size_line;
        append_hex(size_line, uint64_t(n));
        size_line += "\r\n";
        out.insert(base, size_line);
        out += "\r\n";
      }
      if (eof) {
        out += "0\r\n";
        append_request_trailers(*req, out);
        out += "\r\n";
      }
    } else if (eof && req->body_trailers()) {
      // A body framed by its content-length has nowhere to put trailers
      // (RFC 9112 section 7.1.2 puts them in the last chunk): failing says
      // so, where dropping them would lose what the caller meant to send.
      std::vector<HeaderField> trailers;
      req->body_trailers()(req->user_data, &trailers);
      if (!trailers.empty()) {
        req->set_local_error(make_error(
            H2POOL_ERR_INVALID_HEADER,
            "HTTP/1.1 sends request trailers only with a chunked body: "
            "give the streamed upload no content length"));
        fail(req->local_error().code, req->local_error().message);
        return false;
      }
    }
    if (eof)
      body_done_ = true;
  }
  return true;
}

void H1Session::append_request_trailers(Request &req, std::string &out) {
  if (!req.body_trailers())
    return;
  std::vector<HeaderField> trailers;
  req.body_trailers()(req.user_data, &trailers);
  for (const auto &t : trailers) {
    out += t.name;
    out += ": ";
    out += t.value;
    out += "\r\n";
  }
}

void H1Session::flush() {
  if (ended_ || !fill_body())
    return;
  // Written at the end of this loop turn, in one system call with whatever
  // else the turn queued.
  if (!out_.empty() && !write_scheduled_) {
    write_scheduled_ = true;
    event_active(write_event_.get(), EV_WRITE, 0);
  }
  conn_.settle();
}

WriteResult H1Session::write_out() {
  Transport::Status st = Transport::Status::ok;
  WriteResult w = write_pending(out_, *transport_, write_event_.get(),
                                &write_wants_read_, &st);
  // The head is the first thing queued for an exchange: the first write
  // after submit() hands it (or its start) to the socket.
  if (w != WriteResult::closed)
    if (Request *req = current_.front(); req && !req->times().pretransfer)
      req->times().pretransfer = monotonic_ns();
  // A paused response does not read; a write waiting for a TLS read must
  // still be woken.
  if (w == WriteResult::blocked && write_wants_read_ && read_paused_)
    event_add(read_event_.get(), nullptr);
  if (w == WriteResult::closed && !ended_)
    on_transport_closed(st);
  return w;
}

void H1Session::on_write_event() {
  write_scheduled_ = false;
  if (ended_)
    return;
  if (read_wants_write_) {
    read_wants_write_ = false;
    on_readable();
    return;
  }
  for (int round = 0; round < kMaxWriteRounds; ++round) {
    WriteResult w = write_out();
    if (w == WriteResult::closed)
      return;
    if (w == WriteResult::blocked)
      return;
    if (!fill_body())
      return;
    if (out_.empty())
      break;
  }
  if (!out_.empty() && !write_scheduled_) {
    write_scheduled_ = true;
    event_active(write_event_.get(), EV_WRITE, 0);
  }
}

// --- input ---------------------------------------------------------------

void H1Session::on_read_event() {
  if (ended_)
    return;
  if (write_wants_read_) {
    write_wants_read_ = false;
    if (read_paused_)
      event_del(read_event_.get());
    if (write_out() == WriteResult::closed)
      return;
    if (read_paused_)
      return;
  }
  on_readable();
}

void H1Session::on_readable() {
  if (ended_)
    return;
  auto paused = [this] {
    Request *req = current_.front();
    return req && req->download_paused;
  };
  if (paused()) {
    // The caller holds this response back: so does TCP, once the socket
    // buffers fill.
    stop_reading();
    return;
  }
  uint8_t fallback[16384];
  bool alive = true;
  Transport::Status st =
      read_rounds(*transport_, kMaxReadRounds, {fallback, sizeof fallback},
                  [&](const uint8_t *data, size_t len) {
                    alive = feed(data, len);
                    return alive && !paused();
                  });
  if (!alive)
    return;
  if (paused()) {
    stop_reading();
  } else if (st == Transport::Status::eof || st == Transport::Status::error) {
    on_transport_closed(st);
    return;
  } else if (st == Transport::Status::want_write) {
    read_wants_write_ = true;
    event_add(write_event_.get(), nullptr);
  } else if (st == Transport::Status::ok) {
    // Out of rounds with input left (OpenSSL may hold records it read
    // ahead, which readiness would not announce).
    event_active(read_event_.get(), EV_READ, 0);
  }
  flush();
}

bool H1Session::feed(const uint8_t *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    Request *req = current_.front();
    if (!req) {
      // No request is outstanding, so these bytes answer none: a
      // pipelining or broken server, or a 408 before an idle close. What
      // follows could not be matched to a request.
      H2POOL_LOG(log_, H2POOL_LOG_INFO,
                 "conn %llu: %zu bytes from %s with no request outstanding; "
                 "closing",
                 (unsigned long long)id_, len - off, name_.c_str());
      finish("unsolicited bytes from the server");
      return false;
    }
    if (!req->response_begun) {
      // From here the server has acted on the request: it is never sent
      // again, and this connection has proved it serves.
      req->response_begun = true;
      req->times().first_byte = monotonic_ns();
      conn_.response_begun();
      if (ended_)
        return false;
    }
    event_ = Event::none;
    size_t n = http_parser_execute(&parser_, &parser_settings(),
                                   reinterpret_cast<const char *>(data + off),
                                   len - off);
    http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (const char *bad = check_framing(data + off, n)) {
      fail(H2POOL_ERR_MALFORMED_RESPONSE,
           "malformed HTTP/1.1 response from " + name_ + ": " + bad);
      return false;
    }
    off += n;
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
      if (!handle_event())
        return false;
      continue;
    }
    if (err != HPE_OK) {
      if (req->local_error().code != H2POOL_OK) {
        fail(req->local_error().code, req->local_error().message);
      } else if (callback_failure_ != H2POOL_OK) {
        fail(callback_failure_, callback_failure_ == H2POOL_ERR_NOMEM
                                    ? "out of memory while receiving a response"
                                    : "a response callback threw an exception");
      } else if (err == HPE_HEADER_OVERFLOW) {
        fail(H2POOL_ERR_HEADER_SECTION_TOO_LARGE,
             "HTTP/1.1 header section from " + name_ +
                 " exceeds the parser's 80 KiB limit");
      } else {
        fail(H2POOL_ERR_MALFORMED_RESPONSE,
             "malformed HTTP/1.1 response from " + name_ + ": " +
                 http_errno_description(err));
      }
      return false;
    }
    if (parser_.upgrade) {
      fail(H2POOL_ERR_MALFORMED_RESPONSE,
           "server " + name_ + " switched protocols, which was not asked for");
      return false;
    }
    if (n == 0)
      break; // nothing consumed and no error: nothing more to do here
  }
  return !ended_;
}

const char *H1Session::check_framing(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    switch (framing_) {
    case Framing::body:
      return nullptr; // until the message ends; http-parser counts it
    case Framing::chunk_data:
      if (chunk_left_ > 2) {
        uint64_t skip = std::min<uint64_t>(n - i, chunk_left_ - 2);
        i += size_t(skip);
        chunk_left_ -= skip;
        continue;
      }
      // Lenient http-parser takes any two bytes for the CRLF after chunk
      // data: a longer chunk than declared would pass.
      if (p[i] != (chunk_left_ == 2 ? '\r' : '\n'))
        return "chunk data not followed by CRLF";
      ++i;
      if (--chunk_left_ == 0) {
        framing_ = Framing::lines;
        line_start_ = true;
      }
      continue;
    case Framing::lines: {
      uint8_t b = p[i++];
      if (prev_cr_) {
        // Lenient http-parser takes any byte after CR as the LF in some
        // places (end of the header section, chunk-size lines).
        if (b != '\n')
          return "CR not followed by LF";
        prev_cr_ = false;
        line_start_ = true;
        if (body_after_line_) {
          body_after_line_ = false;
          framing_ = Framing::body;
        }
        continue;
      }
      // RFC 9112 section 2.2 lets a recipient accept a bare LF as a line
      // end; an intermediary that does not would see other messages.
      if (b == '\n')
        return "bare LF as a line end";
      if (b == '\r') {
        prev_cr_ = true;
        continue;
      }
      // RFC 9112 section 5.2: obs-fold; and whitespace before the first
      // field (section 2.2). http-parser would join the lines.
      if (line_start_ && (b == ' ' || b == '\t'))
        return "obs-fold (a line starting with whitespace)";
      line_start_ = false;
      continue;
    }
    }
  }
  return nullptr;
}

int H1Session::on_status(const char *at, size_t len) {
  Request *req = current_.front();
  if (!req || !count_header_bytes(*req, len))
    return -1;
  req->resp().make_rare().reason.append(at, len);
  return 0;
}

int H1Session::commit_field() {
  Request *req = current_.front();
  if (!req || field_.empty())
    return 0;
  for (char &c : field_)
    if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
  // http-parser lets a space before the colon through as part of the
  // name ("Content-Length : 5"): RFC 9112 section 5.1 says to reject it.
  if (!nghttp2_check_header_name(
          reinterpret_cast<const uint8_t *>(field_.data()), field_.size())) {
    req->set_local_error(
        make_error(H2POOL_ERR_MALFORMED_RESPONSE,
                   "malformed HTTP/1.1 response from " + name_ +
                       ": invalid header field name '" + field_ + "'"));
    return -1;
  }
  req->add_header_bytes(kFieldOverhead);
  req->add_header_field();
  if (req->header_bytes > settings_.max_response_header_bytes ||
      req->header_fields > settings_.max_response_header_fields) {
    req->set_local_error(make_error(
        H2POOL_ERR_HEADER_SECTION_TOO_LARGE,
        "response headers exceed " +
            std::to_string(settings_.max_response_header_bytes) + " bytes or " +
            std::to_string(settings_.max_response_header_fields) + " fields"));
    return -1;
  }
  std::string_view value = trim_ows(value_);
  if (req->in_trailers) {
    req->resp().make_rare().trailers.add(field_, value);
  } else if (parser_.status_code >= 200) { // not an interim (1xx) response
    h2pool_response &resp = req->resp();
    if (resp.headers.empty())
      resp.headers.reserve(256, 8);
    resp.headers.add(field_, value);
  }
  field_.clear();
  value_.clear();
  in_value_ = false;
  return 0;
}

bool H1Session::count_header_bytes(Request &req, size_t len) {
  req.add_header_bytes(len);
  if (req.header_bytes <= settings_.max_response_header_bytes)
    return true;
  req.set_local_error(make_error(
      H2POOL_ERR_HEADER_SECTION_TOO_LARGE,
      "response header section exceeds " +
          std::to_string(settings_.max_response_header_bytes) + " bytes"));
  return false;
}

int H1Session::on_header_field(const char *at, size_t len) {
  if (in_value_ && commit_field() != 0)
    return -1;
  Request *req = current_.front();
  if (!req || !count_header_bytes(*req, len))
    return -1;
  field_.append(at, len);
  return 0;
}

int H1Session::on_header_value(const char *at, size_t len) {
  Request *req = current_.front();
  if (!req || !count_header_bytes(*req, len))
    return -1;
  in_value_ = true;
  value_.append(at, len);
  return 0;
}

int H1Session::on_headers_complete() {
  if (commit_field() != 0)
    return -1;
  Request *req = current_.front();
  if (!req)
    return -1;
  event_ = Event::headers;
  http_parser_pause(&parser_, 1);
  // RFC 9110 sections 9.3.2, 15.3.5 and 15.4.5: a response to HEAD, a 204
  // and a 304 have no content, whatever their content-length says (a 304's
  // is that of the representation); nor has an interim response.
  unsigned status = parser_.status_code;
  return req->method == "HEAD" || status < 200 || status == 204 || status == 304
             ? 1
             : 0;
}

int H1Session::on_body(const char *at, size_t len) {
  Request *req = current_.front();
  if (!req)
    return -1;
  if (!req->got_headers || req->local_error().code != H2POOL_OK)
    return 0;
  size_t consumed;
  if (accept_body(*req, reinterpret_cast<const uint8_t *>(at), len,
                  settings_.body_limits, &consumed) != H2POOL_OK)
    return -1;
  return 0;
}

int H1Session::on_chunk_header() {
  chunk_size_ = parser_.content_length;
  event_ = Event::chunk_header;
  http_parser_pause(&parser_, 1);
  return 0;
}

int H1Session::on_message_complete() {
  // The trailer section ends without on_headers_complete: its last field
  // is still held.
  if (in_value_ && commit_field() != 0)
    return -1;
  event_ = Event::message;
  http_parser_pause(&parser_, 1);
  return 0;
}

bool H1Session::handle_event() {
  Request *req = current_.front();
  if (!req)
    return false;
  switch (event_) {
  case Event::none:
    return true;
  case Event::chunk_header:
    if (chunk_size_ > 0) {
      framing_ = Framing::chunk_data;
      chunk_left_ = chunk_size_ + 2;
    } else {
      req->in_trailers = true; // the trailer section (lines) follows
    }
    return true;
  case Event::headers:
    // The head's bytes are checked up to its last CR; a Content-Length or
    // read-until-close body follows its LF unchecked, a chunked one is
    // lines and counted data.
    body_after_line_ = !(parser_.flags & F_CHUNKED);
    if (parser_.http_major != 1 || parser_.status_code < 100) {
      fail(H2POOL_ERR_MALFORMED_RESPONSE,
           "malformed HTTP/1.1 response from " + name_ +
               ": invalid status line (HTTP/" +
               std::to_string(parser_.http_major) + "." +
               std::to_string(parser_.http_minor) + " " +
               std::to_string(parser_.status_code) + ")");
      return false;
    }
    if (parser_.status_code == 101) {
      fail(H2POOL_ERR_MALFORMED_RESPONSE,
           "server " + name_ + " switched protocols, which was not asked for");
      return false;
    }
    if (parser_.status_code < 200) {
      // Interim: its fields were not kept, nor is its reason phrase.
      if (req->response && req->response->rare)
        req->response->rare->reason.clear();
      req->header_bytes = 0;
      req->header_fields = 0;
      if (parser_.status_code == 100 && waiting_continue_) {
        waiting_continue_ = false;
        evtimer_del(continue_timer_.get());
        sending_body_ = true;
        flush();
      }
      return !ended_;
    }
    return final_headers(*req);
  case Event::message:
    if (!req->got_headers) {
      // The end of an interim response: the final one follows.
      framing_ = Framing::lines;
      line_start_ = true;
      return true;
    }
    return message_complete(*req);
  }
  return true;
}

bool H1Session::final_headers(Request &req) {
  if (parser_.uses_transfer_encoding) {
    // Only "chunked", once: any other coding (or chunked applied twice, or
    // not last) would have us deliver still-encoded bytes, or read to the
    // close a body an intermediary delimits otherwise.
    std::optional<std::string> te =
        req.resp().headers.joined("transfer-encoding");
    if (!(parser_.flags & F_CHUNKED) || !te ||
        !equals_ignoring_ascii_case(trim_ows(*te), "chunked")) {
      fail(H2POOL_ERR_MALFORMED_RESPONSE,
           "malformed HTTP/1.1 response from " + name_ +
               ": unsupported transfer-encoding '" + (te ? *te : "") + "'");
      return false;
    }
  }
  req.resp().status = int(parser_.status_code);
  req.wire_protocol = parser_.http_minor == 0 ? H2POOL_PROTOCOL_HTTP_1_0
                                              : H2POOL_PROTOCOL_HTTP_1_1;
  req.got_headers = true;
  if (waiting_continue_) {
    // The final answer came before the 100: the body is not sent, and
    // the server may or may not read one, so the connection is done.
    waiting_continue_ = false;
    evtimer_del(continue_timer_.get());
    close_after_ = true;
  }
  if (begin_body(req, settings_.body_limits) != H2POOL_OK) {
    fail(req.local_error().code, req.local_error().message);
    return false;
  }
  return !ended_;
}

bool H1Session::message_complete(Request &req) {
  // Reusable only if both sides are done: the server keeps the connection
  // (RFC 9112 section 9.3), and all of the request went out. A server that
  // answered before taking the whole body would read its rest as the next
  // request.
  bool reusable = http_should_keep_alive(&parser_) && !close_after_ &&
                  body_done_ && out_.empty();
  current_.remove(&req);
  active_ = 0;
  req.end_stream = true;
  conn_.stream_closed(req, StreamEnd{});
  if (ended_)
    return false;
  if (!reusable) {
    finish("connection not reusable after the response");
    return false;
  }
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  framing_ = Framing::lines;
  line_start_ = true;
  prev_cr_ = false;
  conn_.session_changed();
  conn_.settle();
  return !ended_;
}

void H1Session::on_transport_closed(Transport::Status st) {
  if (ended_)
    return;
  Request *req = current_.front();
  // A body delimited by the close (no content-length, not chunked) ends
  // here, if the close is the server's own: RFC 9112 section 9.8 treats a
  // TLS close without close_notify as incomplete for such a body, since
  // anyone on the path can cut a TCP stream.
  if (req && req->got_headers && st == Transport::Status::eof &&
      transport_->eof_was_clean()) {
    // http-parser says whether the message ended by completing it.
    event_ = Event::none;
    http_parser_execute(&parser_, &parser_settings(), nullptr, 0);
    if (HTTP_PARSER_ERRNO(&parser_) == HPE_PAUSED && event_ == Event::message) {
      http_parser_pause(&parser_, 0);
      handle_event();
      return;
    }
  }
  if (!req) {
    // A kept-alive connection the server closed while it carried nothing
    // (its keep-alive timeout): an orderly end, not a failed connection.
    finish("idle connection closed by the server");
    return;
  }
  int sys = transport_->sys_error();
  std::string how =
      st == Transport::Status::eof || sys == 0
          ? std::string(" closed by the server")
          : std::string(" failed: ") + evutil_socket_error_to_string(sys);
  if (req->response_begun) {
    fail(H2POOL_ERR_INCOMPLETE_RESPONSE,
         "connection to " + name_ + how + " before the response was complete" +
             (req->got_headers ? " (after " + std::to_string(req->body_bytes) +
                                     " body bytes)"
                               : " (in the header section)"));
    return;
  }
  end(make_error(H2POOL_ERR_CONNECTION_LOST, "connection to " + name_ + how));
}

void H1Session::close(const Error &why) {
  if (ended_)
    return;
  ended_ = true;
  evtimer_del(continue_timer_.get());
  // Best effort, never blocking; close_notify keeps the TLS session
  // resumable.
  bool all_sent = write_out() == WriteResult::done;
  if (tls_ && all_sent)
    static_cast<TlsTransport *>(transport_.get())->shutdown();
  out_.clear();
  if (read_event_)
    event_del(read_event_.get());
  if (write_event_)
    event_del(write_event_.get());
  while (Request *req = current_.pop_front()) {
    StreamEnd end;
    end.connection_error = &why;
    conn_.stream_closed(*req, end);
  }
  active_ = 0;
}

} // namespace h2pool_core
