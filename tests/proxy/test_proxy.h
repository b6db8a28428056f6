// A small proxy for tests, for what the Debian proxies do not do or do not
// let a test script: an HTTP CONNECT proxy (optionally behind TLS, an
// https:// proxy) and a SOCKS5 proxy (no authentication, or RFC 1929
// username/password), each of which records what clients asked for and
// can answer wrongly on purpose. Loopback only; a thread per connection
// with blocking, time-bounded I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace h2pool_testing {

struct TestProxyOptions {
  enum class Kind { http, socks5 };
  Kind kind = Kind::http;
  // Both set: clients reach the proxy over TLS with this certificate.
  std::string cert_file;
  std::string key_file;
  // Credentials the proxy requires (user empty: none): Basic for HTTP,
  // RFC 1929 for SOCKS5.
  std::string user;
  std::string password;
  // HTTP: answer every CONNECT with these bytes and close, instead of
  // connecting ("" connects).
  std::string http_reply;
  // Close the client's connection once its request arrived, answering
  // nothing.
  bool close_before_reply = false;
  // Once the request arrived, answer nothing and keep the connection open
  // until the client closes it (or the proxy stops).
  bool stall_before_reply = false;
  // HTTP: wait this long before answering a CONNECT (a slow proxy).
  int reply_delay_ms = 0;
  // SOCKS5: answer the CONNECT request with this reply code instead of
  // connecting (0 connects).
  uint8_t socks_reply = 0;
  // SOCKS5: answer the greeting with version 4 instead of 5.
  bool socks_bad_version = false;
  // Wait (up to a second) for the origin's first bytes and send them in
  // the same write as the proxy's success reply: an origin that speaks
  // first (h2c's SETTINGS), its bytes right behind the reply.
  bool coalesce_origin_first_bytes = false;
};

// What one client asked for.
struct TestProxyRecord {
  std::string request_head;        // HTTP: the CONNECT request head
  std::string proxy_authorization; // HTTP: the header's value
  uint8_t socks_atyp = 0;          // SOCKS5: 1 IPv4, 3 name, 4 IPv6
  std::string target_host;         // the name or address asked for
  uint16_t target_port = 0;
  std::string socks_user; // SOCKS5: the RFC 1929 user name sent
  bool tunnelled = false; // the tunnel to the origin was opened
};

class TestProxy {
public:
  explicit TestProxy(TestProxyOptions options);
  ~TestProxy();
  TestProxy(const TestProxy &) = delete;
  TestProxy &operator=(const TestProxy &) = delete;

  // Listens on 127.0.0.1, an ephemeral port. False on failure.
  bool start();
  uint16_t port() const { return port_; }
  void stop();
  // Closes every open client and origin connection at once: a proxy
  // dying mid-tunnel. New connections are still accepted.
  void drop_tunnels();

  std::vector<TestProxyRecord> records() const;
  size_t connections() const { return connections_; }

private:
  struct Tls;
  void accept_loop();
  void serve(int client);
  bool serve_http(int client, void *ssl, TestProxyRecord &rec, int *origin);
  bool serve_socks(int client, TestProxyRecord &rec, int *origin);
  void relay(int client, void *ssl, int origin, const std::string &first);
  void track(int fd);
  void untrack(int fd);

  TestProxyOptions options_;
  std::unique_ptr<Tls> tls_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> connections_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
  std::vector<TestProxyRecord> records_;
};

} // namespace h2pool_testing
