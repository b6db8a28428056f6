#include "proxy_tunnel.h"
#include "socket_close.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstring>

namespace h2pool_core {
namespace {

// The longest CONNECT response head we read: proxies send a few hundred
// bytes; anything near this is not a proxy.
constexpr size_t kMaxReplyHead = 16u << 10;

void io_cb(evutil_socket_t, short, void *arg) {
  static_cast<ProxyTunnel *>(arg)->on_io();
}
void timeout_cb(evutil_socket_t, short, void *arg) {
  static_cast<ProxyTunnel *>(arg)->on_timeout();
}

// What the CONNECT response head says, as http_parser reads it.
struct ReplyHead {
  std::string reason;
  std::string field;
  bool in_value = false;
  // The first Proxy-Authenticate field (or WWW-Authenticate, which some
  // proxies send with a 401 instead).
  std::string authenticate;
  bool complete = false;
};

bool iequals(const std::string &a, const char *lower_b) {
  size_t n = std::strlen(lower_b);
  if (a.size() != n)
    return false;
  for (size_t i = 0; i < n; ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
    if (c != lower_b[i])
      return false;
  }
  return true;
}

int on_status(http_parser *p, const char *at, size_t len) {
  static_cast<ReplyHead *>(p->data)->reason.append(at, len);
  return 0;
}
int on_header_field(http_parser *p, const char *at, size_t len) {
  auto h = static_cast<ReplyHead *>(p->data);
  if (h->in_value) {
    h->field.clear();
    h->in_value = false;
  }
  h->field.append(at, len);
  return 0;
}
int on_header_value(http_parser *p, const char *at, size_t len) {
  auto h = static_cast<ReplyHead *>(p->data);
  bool first_chunk = !h->in_value;
  h->in_value = true;
  if ((iequals(h->field, "proxy-authenticate") ||
       iequals(h->field, "www-authenticate")) &&
      (h->authenticate.empty() || !first_chunk))
    h->authenticate.append(at, len);
  return 0;
}
int on_headers_complete(http_parser *p) {
  static_cast<ReplyHead *>(p->data)->complete = true;
  return 1; // no body: what follows belongs to the origin
}

const http_parser_settings &reply_parser_settings() {
  static const http_parser_settings s = [] {
    http_parser_settings v;
    http_parser_settings_init(&v);
    v.on_status = on_status;
    v.on_header_field = on_header_field;
    v.on_header_value = on_header_value;
    v.on_headers_complete = on_headers_complete;
    return v;
  }();
  return s;
}

std::string base64(const std::string &in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(&out[0]),
                          reinterpret_cast<const unsigned char *>(in.data()),
                          int(in.size()));
  out.resize(size_t(n > 0 ? n : 0));
  return out;
}

// RFC 1928 section 6.
const char *socks_reply_text(uint8_t rep) {
  switch (rep) {
  case 1:
    return "general SOCKS server failure";
  case 2:
    return "connection not allowed by ruleset";
  case 3:
    return "network unreachable";
  case 4:
    return "host unreachable";
  case 5:
    return "connection refused by destination";
  case 6:
    return "TTL expired";
  case 7:
    return "command not supported";
  case 8:
    return "address type not supported";
  default:
    return nullptr;
  }
}

} // namespace

ProxyTunnel::ProxyTunnel(event_base *base, ProxyTunnelOwner &owner,
                         const Logger &log, uint64_t connection_id,
                         const ProxyTarget &proxy, std::string origin_host,
                         uint16_t origin_port, Resolver &resolver,
                         const TlsContext *tls, uint32_t timeout_ms)
    : base_(base), owner_(owner), log_(log), id_(connection_id), proxy_(proxy),
      origin_host_(std::move(origin_host)), origin_port_(origin_port),
      resolver_(resolver), tls_(tls), timeout_ms_(timeout_ms) {}

ProxyTunnel::~ProxyTunnel() {
  // Events before the transport (and its socket) they watch.
  read_event_.reset();
  write_event_.reset();
}

std::string ProxyTunnel::origin() const {
  bool v6 = origin_host_.find(':') != std::string::npos;
  return (v6 ? "[" + origin_host_ + "]" : origin_host_) + ":" +
         std::to_string(origin_port_);
}

std::string ProxyTunnel::what() const {
  return "tunnel to " + origin() + " through proxy " + proxy_.name;
}

void ProxyTunnel::start(evutil_socket_t fd) {
  read_event_.reset(event_new(base_, fd, EV_READ, io_cb, this));
  write_event_.reset(event_new(base_, fd, EV_WRITE, io_cb, this));
  timer_.reset(evtimer_new(base_, timeout_cb, this));
  if (proxy_.kind == ProxyTarget::Kind::https) {
    SSL *ssl =
        tls_ ? tls_->new_ssl(proxy_.host, proxy_.host_is_ip, nullptr, nullptr)
             : nullptr;
    // The proxy speaks HTTP/1.1 to us; HTTP/2 runs inside the tunnel.
    static const unsigned char h1[] = {8,   'h', 't', 't', 'p',
                                       '/', '1', '.', '1'};
    if (ssl && SSL_set_alpn_protos(ssl, h1, sizeof h1) != 0) {
      SSL_free(ssl);
      ssl = nullptr;
    }
    if (!ssl) {
      close_socket(fd);
      fail(H2POOL_ERR_TLS_CONFIG, "cannot set up TLS for proxy " + proxy_.name +
                                      ": " + openssl_error_string());
      return;
    }
    auto tls = std::make_unique<TlsTransport>(fd, ssl);
    tls->set_to_proxy();
    io_ = std::move(tls);
    step_ = Step::proxy_tls;
  } else {
    io_ = std::make_unique<PlainTransport>(fd);
  }
  if (!read_event_ || !write_event_ || !timer_) {
    fail(H2POOL_ERR_NOMEM, "cannot watch the socket");
    return;
  }
  arm_timer(timer_, timeout_ms_);
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: setting up the %s",
             (unsigned long long)id_, what().c_str());
  if (step_ != Step::proxy_tls) {
    if (proxy_.socks())
      send_socks_greeting();
    else
      send_connect_request();
  }
  advance();
}

void ProxyTunnel::on_io() { advance(); }

void ProxyTunnel::on_timeout() {
  fail(H2POOL_ERR_PROXY_CONNECT, what() + " was not set up within " +
                                     std::to_string(timeout_ms_) + " ms");
}

void ProxyTunnel::wait(Transport::Status st) {
  event_add(st == Transport::Status::want_write ? write_event_.get()
                                                : read_event_.get(),
            nullptr);
}

void ProxyTunnel::send(Step next) {
  after_send_ = next;
  step_ = Step::sending;
}

void ProxyTunnel::send_connect_request() {
  std::string authority = origin();
  std::string &out = out_.tail();
  out += "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
         "\r\nUser-Agent: h2pool/" H2POOL_VERSION_STRING "\r\n";
  if (proxy_.has_credentials)
    out += "Proxy-Authorization: Basic " +
           base64(proxy_.user + ":" + proxy_.password) + "\r\n";
  out += "\r\n";
  send(Step::http_reply);
}

void ProxyTunnel::send_socks_greeting() {
  std::string &out = out_.tail();
  // VER, NMETHODS, METHODS: no authentication, and username/password when
  // there are credentials (RFC 1928 section 3).
  out.push_back('\x05');
  if (proxy_.has_credentials)
    out.append("\x02\x00\x02", 3);
  else
    out.append("\x01\x00", 2);
  send(Step::socks_method);
}

void ProxyTunnel::send_socks_request(const Address *resolved) {
  std::string &out = out_.tail();
  out.append("\x05\x01\x00", 3); // VER, CMD CONNECT, RSV
  Address literal;
  if (!resolved && parse_ip_literal(origin_host_, origin_port_, &literal))
    resolved = &literal;
  if (resolved && resolved->storage.ss_family == AF_INET) {
    auto sin = reinterpret_cast<const sockaddr_in *>(&resolved->storage);
    out.push_back('\x01');
    out.append(reinterpret_cast<const char *>(&sin->sin_addr), 4);
  } else if (resolved) {
    auto sin6 = reinterpret_cast<const sockaddr_in6 *>(&resolved->storage);
    out.push_back('\x04');
    out.append(reinterpret_cast<const char *>(&sin6->sin6_addr), 16);
  } else {
    // socks5h://: the proxy resolves the name.
    out.push_back('\x03');
    out.push_back(char(origin_host_.size()));
    out += origin_host_;
  }
  out.push_back(char(origin_port_ >> 8));
  out.push_back(char(origin_port_ & 0xff));
  send(Step::socks_reply_head);
}

bool ProxyTunnel::socks_authenticated() {
  if (proxy_.kind == ProxyTarget::Kind::socks5h ||
      parse_ip_literal(origin_host_, 0, nullptr)) {
    send_socks_request(nullptr);
    return true;
  }
  // socks5://: the name is resolved here and the proxy gets an address.
  step_ = Step::resolving;
  std::weak_ptr<char> alive = liveness_;
  resolver_.resolve(
      origin_host_, origin_port_,
      [this, alive](const std::string &error, std::vector<Address> addrs) {
        if (!alive.expired())
          on_origin_resolved(error, std::move(addrs));
      });
  return false;
}

void ProxyTunnel::on_origin_resolved(const std::string &error,
                                     std::vector<Address> addresses) {
  if (!error.empty() || addresses.empty()) {
    fail(H2POOL_ERR_RESOLVE,
         "cannot resolve '" + origin_host_ + "' for the SOCKS5 proxy " +
             proxy_.name + " (socks5h:// leaves that to the proxy): " + error);
    return;
  }
  send_socks_request(&addresses.front());
  advance();
}

bool ProxyTunnel::read_exact(size_t n) {
  while (in_.size() < n) {
    uint8_t buf[512];
    size_t want = std::min(sizeof buf, n - in_.size());
    Transport::Result r = io_->read(buf, want);
    in_.append(reinterpret_cast<const char *>(buf), r.bytes);
    if (r.status != Transport::Status::ok) {
      stopped(r.status, "reading from");
      return false;
    }
  }
  return true;
}

void ProxyTunnel::stopped(Transport::Status st, const char *doing) {
  if (st == Transport::Status::want_read ||
      st == Transport::Status::want_write) {
    wait(st);
    return;
  }
  if (st == Transport::Status::eof) {
    fail(H2POOL_ERR_PROXY_CLOSED,
         "proxy " + proxy_.name +
             " closed the connection before the tunnel to " + origin() +
             " was up");
    return;
  }
  fail(H2POOL_ERR_PROXY_CONNECT,
       std::string(doing) + " proxy " + proxy_.name + ": " +
           std::strerror(io_->sys_error() ? io_->sys_error() : EIO));
}

bool ProxyTunnel::read_http_reply() {
  for (;;) {
    uint8_t buf[4096];
    size_t room = std::min(sizeof buf, kMaxReplyHead - in_.size());
    if (room == 0) {
      fail(H2POOL_ERR_PROXY_PROTOCOL,
           "proxy " + proxy_.name +
               " sent a CONNECT response head longer "
               "than " +
               std::to_string(kMaxReplyHead) + " bytes");
      return false;
    }
    Transport::Result r = io_->peek(buf, room);
    if (r.status != Transport::Status::ok) {
      stopped(r.status, "reading from");
      return false;
    }
    // Where the head ends, looking back over the bytes already taken (the
    // blank line may straddle reads). Only those bytes are consumed.
    size_t back = std::min<size_t>(in_.size(), 3);
    std::string window = in_.substr(in_.size() - back);
    window.append(reinterpret_cast<const char *>(buf), r.bytes);
    size_t end = window.find("\r\n\r\n");
    size_t take = end == std::string::npos ? r.bytes : end + 4 - back;
    size_t before = in_.size();
    if (!read_exact(before + take))
      return false; // cannot happen for peeked bytes, but do not spin
    if (in_.compare(0, std::min<size_t>(in_.size(), 5), "HTTP/", 0,
                    std::min<size_t>(in_.size(), 5)) != 0) {
      fail(H2POOL_ERR_PROXY_PROTOCOL,
           "proxy " + proxy_.name +
               " did not answer CONNECT with an HTTP "
               "response");
      return false;
    }
    if (end != std::string::npos)
      return true;
  }
}

void ProxyTunnel::finish_http_reply() {
  ReplyHead head;
  http_parser parser;
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &head;
  http_parser_execute(&parser, &reply_parser_settings(), in_.data(),
                      in_.size());
  if (!head.complete || parser.http_major != 1) {
    fail(H2POOL_ERR_PROXY_PROTOCOL,
         "proxy " + proxy_.name + " sent a malformed CONNECT response (" +
             http_errno_description(HTTP_PARSER_ERRNO(&parser)) + ")");
    return;
  }
  unsigned status = parser.status_code;
  std::string reason = head.reason.empty() ? "" : " " + head.reason;
  if (status >= 200 && status < 300) {
    done();
    return;
  }
  // 407 is the proxy asking for credentials; tinyproxy (1.11) answers a
  // CONNECT it will not authorise with 401 and WWW-Authenticate instead.
  // Either way the origin was never reached.
  if (status == 407 || status == 401) {
    std::string scheme =
        head.authenticate.substr(0, head.authenticate.find_first_of(" \t,"));
    fail(H2POOL_ERR_PROXY_AUTH,
         "proxy " + proxy_.name + " answered " + std::to_string(status) +
             reason + " to CONNECT " + origin() +
             (scheme.empty() ? std::string()
                             : "; it asks for " + scheme + " authentication") +
             (proxy_.has_credentials ? "; the credentials sent were rejected"
                                     : "; no proxy credentials are set"));
    return;
  }
  fail(H2POOL_ERR_PROXY_REFUSED, "proxy " + proxy_.name + " answered " +
                                     std::to_string(status) + reason +
                                     " to CONNECT " + origin());
}

void ProxyTunnel::advance() {
  for (;;) {
    switch (step_) {
    case Step::proxy_tls: {
      auto tls = static_cast<TlsTransport *>(io_.get());
      Transport::Status st = tls->handshake();
      if (st == Transport::Status::want_read ||
          st == Transport::Status::want_write) {
        wait(st);
        return;
      }
      if (st != Transport::Status::ok) {
        Error e = tls_failure_error(tls->ssl(), tls->last_error(),
                                    "proxy " + proxy_.name);
        fail(e.code, e.message);
        return;
      }
      send_connect_request();
      break;
    }
    case Step::resolving:
      return; // on_origin_resolved() goes on
    case Step::sending: {
      Transport::Status st = out_.write_to(*io_);
      if (st != Transport::Status::ok) {
        stopped(st, "writing to");
        return;
      }
      in_.clear();
      step_ = after_send_;
      break;
    }
    case Step::http_reply:
      if (!read_http_reply())
        return;
      finish_http_reply();
      return;
    case Step::socks_method: {
      if (!read_exact(2))
        return;
      uint8_t ver = uint8_t(in_[0]), method = uint8_t(in_[1]);
      if (ver != 5) {
        fail(H2POOL_ERR_PROXY_PROTOCOL,
             "proxy " + proxy_.name + " does not speak SOCKS5 (version byte " +
                 std::to_string(ver) + ")");
        return;
      }
      if (method == 0x00) {
        if (!socks_authenticated())
          return;
        break;
      }
      if (method == 0x02 && proxy_.has_credentials) {
        std::string &out = out_.tail();
        out.push_back('\x01'); // RFC 1929 version
        out.push_back(char(proxy_.user.size()));
        out += proxy_.user;
        out.push_back(char(proxy_.password.size()));
        out += proxy_.password;
        send(Step::socks_auth);
        break;
      }
      if (method == 0xff) {
        fail(H2POOL_ERR_PROXY_AUTH,
             "SOCKS5 proxy " + proxy_.name +
                 " accepts none of the authentication methods offered (" +
                 (proxy_.has_credentials ? "none, username/password"
                                         : "none; no proxy credentials are "
                                           "set") +
                 ")");
        return;
      }
      fail(H2POOL_ERR_PROXY_PROTOCOL,
           "SOCKS5 proxy " + proxy_.name +
               " chose an authentication method that was not offered (" +
               std::to_string(method) + ")");
      return;
    }
    case Step::socks_auth: {
      if (!read_exact(2))
        return;
      if (uint8_t(in_[1]) != 0) {
        fail(H2POOL_ERR_PROXY_AUTH,
             "SOCKS5 proxy " + proxy_.name +
                 " rejected the user name and password (RFC 1929 status " +
                 std::to_string(uint8_t(in_[1])) + ")");
        return;
      }
      if (!socks_authenticated())
        return;
      break;
    }
    case Step::socks_reply_head: {
      if (!read_exact(4))
        return;
      uint8_t ver = uint8_t(in_[0]), rep = uint8_t(in_[1]),
              atyp = uint8_t(in_[3]);
      if (ver != 5) {
        fail(H2POOL_ERR_PROXY_PROTOCOL, "SOCKS5 proxy " + proxy_.name +
                                            " sent a reply with version byte " +
                                            std::to_string(ver));
        return;
      }
      if (rep != 0) {
        const char *text = socks_reply_text(rep);
        fail(
            H2POOL_ERR_PROXY_REFUSED,
            "SOCKS5 proxy " + proxy_.name + " could not connect to " +
                origin() + ": " +
                (text ? text : "unassigned reply code " + std::to_string(rep)) +
                " (reply " + std::to_string(rep) + ")");
        return;
      }
      if (atyp == 0x01) {
        need_ = 4 + 4 + 2;
      } else if (atyp == 0x04) {
        need_ = 4 + 16 + 2;
      } else if (atyp == 0x03) {
        if (!read_exact(5))
          return;
        need_ = 5 + uint8_t(in_[4]) + 2;
      } else {
        fail(H2POOL_ERR_PROXY_PROTOCOL, "SOCKS5 proxy " + proxy_.name +
                                            " sent a reply with address type " +
                                            std::to_string(atyp));
        return;
      }
      step_ = Step::socks_reply_rest;
      break;
    }
    case Step::socks_reply_rest:
      if (!read_exact(need_))
        return;
      done();
      return;
    }
  }
}

void ProxyTunnel::fail(int code, const std::string &message) {
  timer_.reset();
  read_event_.reset();
  write_event_.reset();
  Error e = make_error(code, message);
  ProxyTunnelOwner &owner = owner_;
  owner.on_tunnel_failed(e); // may destroy `this`
}

void ProxyTunnel::done() {
  timer_.reset();
  read_event_.reset();
  write_event_.reset();
  H2POOL_LOG(log_, H2POOL_LOG_DEBUG, "conn %llu: %s is up",
             (unsigned long long)id_, what().c_str());
  evutil_socket_t fd = io_->fd();
  std::unique_ptr<Transport> outer;
  if (proxy_.kind == ProxyTarget::Kind::https)
    outer = std::move(io_);
  else
    io_->release();
  io_.reset();
  ProxyTunnelOwner &owner = owner_;
  owner.on_tunnel_ready(fd, std::move(outer)); // may destroy `this`
}

} // namespace h2pool_core
