#include "test_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace h2pool_testing {
namespace {

// Bounds every blocking read and write, so a test never hangs on us.
void set_timeouts(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// The client side of a proxy connection, plain or TLS.
struct Stream {
  int fd;
  SSL *ssl;
  // Bytes read, 0 on EOF or error.
  size_t read(char *buf, size_t len) {
    if (ssl) {
      int n = SSL_read(ssl, buf, int(len));
      return n > 0 ? size_t(n) : 0;
    }
    ssize_t n = ::recv(fd, buf, len, 0);
    return n > 0 ? size_t(n) : 0;
  }
  bool read_exact(std::string &out, size_t n) {
    while (out.size() < n) {
      char buf[512];
      size_t got = read(buf, std::min(sizeof buf, n - out.size()));
      if (got == 0)
        return false;
      out.append(buf, got);
    }
    return true;
  }
  bool write_all(const std::string &data) {
    size_t off = 0;
    while (off < data.size()) {
      if (ssl) {
        int n = SSL_write(ssl, data.data() + off, int(data.size() - off));
        if (n <= 0)
          return false;
        off += size_t(n);
      } else {
        ssize_t n =
            ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0)
          return false;
        off += size_t(n);
      }
    }
    return true;
  }
};

bool send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    data += n;
    len -= size_t(n);
  }
  return true;
}

int connect_to(const std::string &host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo *res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) !=
      0)
    return -1;
  int fd = -1;
  for (addrinfo *ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    set_timeouts(fd);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

std::string header_value(const std::string &head, const std::string &lower) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    size_t colon = head.find(':', pos);
    size_t eol = head.find("\r\n", pos);
    if (colon == std::string::npos || eol == std::string::npos || colon > eol)
      continue;
    std::string name = head.substr(pos, colon - pos);
    for (char &c : name)
      c = char(std::tolower(static_cast<unsigned char>(c)));
    if (name == lower) {
      size_t v = colon + 1;
      while (v < eol && head[v] == ' ')
        ++v;
      return head.substr(v, eol - v);
    }
  }
  return {};
}

std::string base64(const std::string &in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(&out[0]),
                          reinterpret_cast<const unsigned char *>(in.data()),
                          int(in.size()));
  out.resize(size_t(n));
  return out;
}

int select_http11(SSL *, const unsigned char **out, unsigned char *outlen,
                  const unsigned char *in, unsigned int inlen, void *) {
  static const unsigned char h1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char *sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, h1, sizeof h1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

} // namespace

struct TestProxy::Tls {
  SSL_CTX *ctx = nullptr;
  ~Tls() { SSL_CTX_free(ctx); }
};

TestProxy::TestProxy(TestProxyOptions options) : options_(std::move(options)) {}

TestProxy::~TestProxy() { stop(); }

bool TestProxy::start() {
  if (!options_.cert_file.empty()) {
    tls_ = std::make_unique<Tls>();
    tls_->ctx = SSL_CTX_new(TLS_server_method());
    if (!tls_->ctx ||
        SSL_CTX_use_certificate_chain_file(tls_->ctx,
                                           options_.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls_->ctx, options_.key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1)
      return false;
    SSL_CTX_set_alpn_select_cb(tls_->ctx, select_http11, nullptr);
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0)
    return false;
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr *>(&sin), sizeof sin) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&sin), &len) != 0)
    return false;
  port_ = ntohs(sin.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
  return true;
}

void TestProxy::stop() {
  if (stopping_.exchange(true))
    return;
  if (listen_fd_ >= 0)
    ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable())
    acceptor_.join();
  drop_tunnels();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto &t : workers)
    t.join();
  if (listen_fd_ >= 0)
    ::close(listen_fd_);
  listen_fd_ = -1;
}

void TestProxy::drop_tunnels() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : open_fds_)
    ::shutdown(fd, SHUT_RDWR);
}

std::vector<TestProxyRecord> TestProxy::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

void TestProxy::track(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.push_back(fd);
}

void TestProxy::untrack(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd),
                  open_fds_.end());
  ::close(fd);
}

void TestProxy::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0)
      continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    ++connections_;
    set_timeouts(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    track(fd);
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void TestProxy::serve(int client) {
  SSL *ssl = nullptr;
  if (tls_) {
    ssl = SSL_new(tls_->ctx);
    SSL_set_fd(ssl, client);
    if (SSL_accept(ssl) != 1) {
      SSL_free(ssl);
      untrack(client);
      return;
    }
  }
  TestProxyRecord rec;
  int origin = -1;
  bool ok = options_.kind == TestProxyOptions::Kind::http
                ? serve_http(client, ssl, rec, &origin)
                : serve_socks(client, rec, &origin);
  rec.tunnelled = ok;
  {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(rec);
  }
  if (ok) {
    std::string first;
    Stream s{client, ssl};
    if (options_.coalesce_origin_first_bytes) {
      pollfd p{origin, POLLIN, 0};
      if (::poll(&p, 1, 1000) > 0) {
        char buf[4096];
        ssize_t n = ::recv(origin, buf, sizeof buf, 0);
        if (n > 0)
          first.assign(buf, size_t(n));
      }
    }
    std::string reply = options_.kind == TestProxyOptions::Kind::http
                            ? std::string("HTTP/1.1 200 Connection established"
                                          "\r\nX-Test-Proxy: 1\r\n\r\n")
                            : std::string("\x05\x00\x00\x01\x7f\x00\x00\x01"
                                          "\x00\x00",
                                          10);
    if (s.write_all(reply + first))
      relay(client, ssl, origin, first);
  }
  if (origin >= 0)
    untrack(origin);
  if (ssl)
    SSL_free(ssl);
  untrack(client);
}

bool TestProxy::serve_http(int client, void *ssl_ptr, TestProxyRecord &rec,
                           int *origin) {
  Stream s{client, static_cast<SSL *>(ssl_ptr)};
  std::string head;
  while (head.size() < 16384 &&
         (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n"))) {
    char c;
    if (s.read(&c, 1) != 1)
      return false;
    head.push_back(c);
  }
  rec.request_head = head;
  rec.proxy_authorization = header_value(head, "proxy-authorization");
  if (options_.close_before_reply)
    return false;
  if (options_.stall_before_reply) {
    char c;
    while (!stopping_) {
      pollfd p{client, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0 && s.read(&c, 1) == 0)
        break; // the client gave up
    }
    return false;
  }
  if (options_.reply_delay_ms > 0) {
    // A slow proxy, not synchronisation: nothing waits on this.
    pollfd p{client, 0, 0};
    ::poll(&p, 1, options_.reply_delay_ms);
  }
  if (!options_.user.empty() &&
      rec.proxy_authorization !=
          "Basic " + base64(options_.user + ":" + options_.password)) {
    s.write_all("HTTP/1.1 407 Proxy Authentication Required\r\n"
                "Proxy-Authenticate: Basic realm=\"test\"\r\n"
                "Content-Length: 0\r\n\r\n");
    return false;
  }
  if (!options_.http_reply.empty()) {
    s.write_all(options_.http_reply);
    return false;
  }
  // "CONNECT host:port HTTP/1.1"
  size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
  if (head.compare(0, 8, "CONNECT ") != 0 || sp2 == std::string::npos)
    return false;
  std::string authority = head.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t colon = authority.rfind(':');
  if (colon == std::string::npos)
    return false;
  std::string host = authority.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  rec.target_host = host;
  rec.target_port = uint16_t(std::stoi(authority.substr(colon + 1)));
  *origin = connect_to(host, rec.target_port);
  if (*origin < 0) {
    s.write_all("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
    return false;
  }
  track(*origin);
  return true;
}

bool TestProxy::serve_socks(int client, TestProxyRecord &rec, int *origin) {
  Stream s{client, nullptr};
  std::string in;
  if (!s.read_exact(in, 2) || in[0] != 5 ||
      !s.read_exact(in, 2 + size_t(uint8_t(in[1]))))
    return false;
  std::string methods = in.substr(2);
  if (options_.socks_bad_version) {
    s.write_all(std::string("\x04\x00", 2));
    return false;
  }
  bool need_auth = !options_.user.empty();
  char method = need_auth ? '\x02' : '\x00';
  if (methods.find(method) == std::string::npos) {
    s.write_all("\x05\xff");
    return false;
  }
  s.write_all(std::string("\x05") + method);
  if (need_auth) {
    std::string a;
    if (!s.read_exact(a, 2))
      return false;
    size_t ulen = uint8_t(a[1]);
    if (!s.read_exact(a, 2 + ulen + 1))
      return false;
    size_t plen = uint8_t(a[2 + ulen]);
    if (!s.read_exact(a, 3 + ulen + plen))
      return false;
    rec.socks_user = a.substr(2, ulen);
    std::string pass = a.substr(3 + ulen, plen);
    bool good = rec.socks_user == options_.user && pass == options_.password;
    s.write_all(std::string("\x01") + (good ? '\x00' : '\x01'));
    if (!good)
      return false;
  }
  std::string req;
  if (!s.read_exact(req, 4) || req[0] != 5 || req[1] != 1)
    return false;
  rec.socks_atyp = uint8_t(req[3]);
  size_t need = rec.socks_atyp == 1 ? 4 : rec.socks_atyp == 4 ? 16 : 0;
  if (rec.socks_atyp == 3) {
    if (!s.read_exact(req, 5))
      return false;
    need = 1 + uint8_t(req[4]);
  }
  if (need == 0 || !s.read_exact(req, 4 + need + 2))
    return false;
  if (rec.socks_atyp == 3) {
    rec.target_host = req.substr(5, need - 1);
  } else {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(rec.socks_atyp == 1 ? AF_INET : AF_INET6, req.data() + 4, text,
              sizeof text);
    rec.target_host = text;
  }
  rec.target_port =
      uint16_t(uint8_t(req[4 + need]) << 8 | uint8_t(req[4 + need + 1]));
  if (options_.socks_reply != 0) {
    std::string reply("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    reply[1] = char(options_.socks_reply);
    s.write_all(reply);
    return false;
  }
  *origin = connect_to(rec.target_host, rec.target_port);
  if (*origin < 0) {
    s.write_all(std::string("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10));
    return false;
  }
  track(*origin);
  return true;
}

void TestProxy::relay(int client, void *ssl_ptr, int origin,
                      const std::string &) {
  SSL *ssl = static_cast<SSL *>(ssl_ptr);
  Stream s{client, ssl};
  char buf[16384];
  while (!stopping_) {
    bool pending = ssl && SSL_pending(ssl) > 0;
    pollfd p[2] = {{client, POLLIN, 0}, {origin, POLLIN, 0}};
    int n = pending ? 1 : ::poll(p, 2, 100);
    if (n < 0)
      return;
    if (n == 0)
      continue;
    if (pending || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      size_t got = s.read(buf, sizeof buf);
      if (got == 0 || !send_all(origin, buf, got))
        return;
    }
    if (!pending && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = ::recv(origin, buf, sizeof buf, 0);
      if (got <= 0 || !s.write_all(std::string(buf, size_t(got))))
        return;
    }
  }
}

} // namespace h2pool_testing
