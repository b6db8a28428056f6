// The raw frame scripter over TLS, driven by a plain OpenSSL client: the
// handshake and ALPN, then raw bytes both ways and each way of ending.
#include "raw_server.h"
#include "self_signed_cert.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace h2pool_testing {
namespace {

using namespace std::chrono_literals;
using namespace h2frame;

template <typename T, void (*F)(T *)> struct Deleter {
  void operator()(T *p) const { F(p); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;

// How the server's side of the connection ended, as the client saw it.
enum class End { close_notify, eof_without_notify, reset, timeout, error };

// A blocking OpenSSL client; every socket wait is bounded by SO_RCVTIMEO /
// SO_SNDTIMEO, so a test never hangs on a silent server.
class TlsClient {
public:
  TlsClient(uint16_t port, const SelfSignedCert &cert,
            const std::vector<std::string> &alpn = {"h2", "http/1.1"}) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 ||
        connect(fd_, reinterpret_cast<sockaddr *>(&sin), sizeof sin) != 0) {
      return;
    }
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    // The server must present the certificate made for it, for this IP.
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_load_verify_locations(ctx_.get(), cert.cert_file().c_str(),
                                  nullptr);
    ssl_.reset(SSL_new(ctx_.get()));
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
    std::string wire;
    for (const auto &p : alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    if (!wire.empty()) {
      SSL_set_alpn_protos(ssl_.get(),
                          reinterpret_cast<const unsigned char *>(wire.data()),
                          static_cast<unsigned>(wire.size()));
    }
    SSL_set_fd(ssl_.get(), fd_);
  }
  ~TlsClient() {
    ssl_.reset();
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  TlsClient(const TlsClient &) = delete;
  TlsClient &operator=(const TlsClient &) = delete;

  int fd() const { return fd_; }

  bool handshake() {
    ERR_clear_error();
    bool ok = ssl_ && SSL_connect(ssl_.get()) == 1;
    ERR_clear_error();
    return ok;
  }

  std::string alpn() const {
    const unsigned char *p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_.get(), &p, &len);
    return p ? std::string(reinterpret_cast<const char *>(p), len) : "";
  }

  bool write(const std::string &bytes) {
    size_t n = 0;
    return SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &n) == 1 &&
           n == bytes.size();
  }

  // Reads `n` bytes, or fewer if the connection ends first.
  std::string read(size_t n) {
    std::string out;
    while (out.size() < n && !end_) {
      read_once(out, n - out.size());
    }
    return out;
  }

  // Reads until the server's side ends; returns everything read.
  std::string read_to_end() {
    std::string out;
    while (!end_) {
      read_once(out, 65536);
    }
    return out;
  }
  std::optional<End> end() const { return end_; }

  // A clean TLS close from our side: close_notify, then FIN.
  void shutdown_and_close() {
    SSL_shutdown(ssl_.get());
    ssl_.reset();
    ::close(fd_);
    fd_ = -1;
  }

private:
  void read_once(std::string &out, size_t max) {
    char buf[65536];
    size_t got = 0;
    errno = 0;
    ERR_clear_error();
    int rv = SSL_read_ex(ssl_.get(), buf, std::min(max, sizeof buf), &got);
    if (rv == 1) {
      out.append(buf, got);
      return;
    }
    int err = SSL_get_error(ssl_.get(), rv);
    int sys = errno;
    unsigned long reason = ERR_peek_error();
    ERR_clear_error();
    if (err == SSL_ERROR_ZERO_RETURN) {
      end_ = End::close_notify;
    } else if (err == SSL_ERROR_SYSCALL && sys == ECONNRESET) {
      end_ = End::reset;
    } else if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // SO_RCVTIMEO expired: the socket BIO sees EAGAIN.
      end_ = End::timeout;
    } else if ((err == SSL_ERROR_SYSCALL && sys == 0) ||
               (err == SSL_ERROR_SSL &&
                ERR_GET_REASON(reason) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
      // OpenSSL 3 reports a FIN without close_notify as an SSL error.
      end_ = End::eof_without_notify;
    } else {
      end_ = End::error;
    }
  }

  int fd_ = -1;
  SslCtxPtr ctx_;
  SslPtr ssl_;
  std::optional<End> end_;
};

// What a script saw on its side, handed to the test thread.
struct Seen {
  std::mutex mu;
  bool tls = false;
  std::string alpn;
  bool preface = false;
  std::vector<uint8_t> frame_types;
  uint64_t flooded = 0;
  bool wait_closed = false;
};

class RawServerTls : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(cert_.ok()); }

  RawTlsOptions tls_options(std::string alpn = "h2", bool force = false) {
    RawTlsOptions o;
    o.cert_file = cert_.cert_file();
    o.key_file = cert_.key_file();
    o.alpn = std::move(alpn);
    o.alpn_force = force;
    return o;
  }

  void start(RawServer::Script script, RawTlsOptions options) {
    server_ =
        std::make_unique<RawServer>(std::move(script), std::move(options));
    ASSERT_EQ(server_->start(), 0);
  }

  bool wait_stats(const std::function<bool(const RawServerStats &)> &pred) {
    return server_->wait_for_stats(pred, 10s);
  }

  SelfSignedCert cert_;
  Seen seen_;
  std::unique_ptr<RawServer> server_;
};

const std::string kPrefaceBytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

TEST_F(RawServerTls, HandshakeSelectsH2AndTheScriptReadsFramesThroughTls) {
  start(
      [this](RawConnection &c) {
        std::lock_guard<std::mutex> lock(seen_.mu);
        seen_.tls = c.tls();
        seen_.alpn = c.alpn();
        seen_.preface = c.read_preface();
        if (auto f = c.read_frame()) {
          seen_.frame_types.push_back(f->type);
        }
        c.send(settings());
      },
      tls_options());
  EXPECT_EQ(server_->base_url(),
            "https://127.0.0.1:" + std::to_string(server_->port()));
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  EXPECT_EQ(client.alpn(), "h2");
  ASSERT_TRUE(client.write(kPrefaceBytes + settings()));
  EXPECT_EQ(client.read(settings().size()), settings());
  ASSERT_TRUE(wait_stats(
      [](const RawServerStats &s) { return s.scripts_finished == 1; }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_TRUE(seen_.tls);
  EXPECT_EQ(seen_.alpn, "h2");
  EXPECT_TRUE(seen_.preface);
  EXPECT_EQ(seen_.frame_types, std::vector<uint8_t>{kSettings});
  EXPECT_EQ(server_->stats().tls_handshakes, 1u);
}

TEST_F(RawServerTls, GarbageRightAfterTheHandshakeArrivesByteExact) {
  static const char kGarbage[] = "this is not HTTP/2\r\n\x00\xff\x01";
  const std::string garbage(kGarbage, sizeof kGarbage - 1);
  start([&](RawConnection &c) { c.send(garbage); }, tls_options());
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  EXPECT_EQ(client.read(garbage.size()), garbage);
}

TEST_F(RawServerTls, SettingsThenCloseEndsWithCloseNotify) {
  start(
      [](RawConnection &c) {
        c.send(settings({{0x3, 100}}));
        c.close();
      },
      tls_options());
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  EXPECT_EQ(client.read_to_end(), settings({{0x3, 100}}));
  EXPECT_EQ(client.end(), End::close_notify);
}

TEST_F(RawServerTls, CloseWithoutNotifyTruncatesTheTlsStream) {
  start(
      [](RawConnection &c) {
        c.send(settings());
        c.close_without_notify();
      },
      tls_options());
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  EXPECT_EQ(client.read_to_end(), settings());
  EXPECT_EQ(client.end(), End::eof_without_notify);
}

TEST_F(RawServerTls, ProtocolErrorThenFinAndTheClientsGoawayIsRecorded) {
  const std::string bad = frame(kPing, 0, 0, std::string(7, '\0'));
  start(
      [&](RawConnection &c) {
        c.read_preface();
        c.send(settings() + bad);
        // The client answers the connection error with GOAWAY.
        while (auto f = c.read_frame()) {
          if (f->type == kGoaway) {
            break;
          }
        }
        c.close();
      },
      tls_options());
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  ASSERT_TRUE(client.write(kPrefaceBytes + settings()));
  EXPECT_EQ(client.read(settings().size() + bad.size()), settings() + bad);
  ASSERT_TRUE(client.write(goaway(0, 0x6 /* FRAME_SIZE_ERROR */)));
  EXPECT_EQ(client.read_to_end(), "");
  EXPECT_EQ(client.end(), End::close_notify);
  client.shutdown_and_close();
  ASSERT_TRUE(wait_stats(
      [](const RawServerStats &s) { return s.connections_closed == 1; }));
  EXPECT_EQ(server_->stats().client_goaway_codes, std::vector<uint32_t>{6});
}

TEST_F(RawServerTls, ResetIsATcpRst) {
  start(
      [](RawConnection &c) {
        c.send(settings());
        c.reset();
      },
      tls_options());
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  client.read_to_end();
  EXPECT_EQ(client.end(), End::reset);
}

TEST_F(RawServerTls, FloodStopsOnceTheClientGoes) {
  start(
      [this](RawConnection &c) {
        uint64_t n = c.flood(ping(), 1ull << 30, 20s);
        std::lock_guard<std::mutex> lock(seen_.mu);
        seen_.flooded = n;
      },
      tls_options());
  {
    TlsClient client(server_->port(), cert_);
    ASSERT_TRUE(client.handshake());
    std::string got = client.read(100 * ping().size());
    ASSERT_EQ(got.size(), 100 * ping().size());
    EXPECT_EQ(got.substr(0, ping().size()), ping());
    // Closing with unread data in the socket makes our kernel send RST.
  }
  ASSERT_TRUE(wait_stats(
      [](const RawServerStats &s) { return s.scripts_finished == 1; }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_GE(seen_.flooded, 100 * ping().size());
  EXPECT_LT(seen_.flooded, 1ull << 30);
}

TEST_F(RawServerTls, WaitClosedSeesTheClientsClose) {
  start(
      [this](RawConnection &c) {
        bool closed = c.wait_closed(10s);
        std::lock_guard<std::mutex> lock(seen_.mu);
        seen_.wait_closed = closed;
      },
      tls_options());
  TlsClient client(server_->port(), cert_);
  ASSERT_TRUE(client.handshake());
  ASSERT_TRUE(client.write("some bytes the script discards"));
  client.shutdown_and_close();
  ASSERT_TRUE(wait_stats(
      [](const RawServerStats &s) { return s.scripts_finished == 1; }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_TRUE(seen_.wait_closed);
}

struct AlpnCase {
  const char *name;
  std::string server;                // RawTlsOptions::alpn
  bool force;                        // RawTlsOptions::alpn_force
  std::vector<std::string> offered;  // the client's list
  std::optional<std::string> chosen; // nullopt: the handshake fails
};

class RawServerTlsAlpn : public RawServerTls,
                         public ::testing::WithParamInterface<AlpnCase> {};

TEST_P(RawServerTlsAlpn, SelectsAsConfigured) {
  const AlpnCase &p = GetParam();
  start(
      [this](RawConnection &c) {
        std::lock_guard<std::mutex> lock(seen_.mu);
        seen_.alpn = c.alpn();
      },
      tls_options(p.server, p.force));
  TlsClient client(server_->port(), cert_, p.offered);
  bool ok = client.handshake();
  ASSERT_EQ(ok, p.chosen.has_value());
  if (!ok) {
    // OpenSSL's client refuses a protocol it did not offer.
    EXPECT_TRUE(wait_stats([](const RawServerStats &s) {
      return s.tls_handshake_failures + s.tls_handshakes == 1;
    }));
    EXPECT_EQ(server_->stats().scripts_finished,
              server_->stats().tls_handshakes);
    return;
  }
  EXPECT_EQ(client.alpn(), *p.chosen);
  ASSERT_TRUE(wait_stats(
      [](const RawServerStats &s) { return s.scripts_finished == 1; }));
  std::lock_guard<std::mutex> lock(seen_.mu);
  EXPECT_EQ(seen_.alpn, *p.chosen);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RawServerTlsAlpn,
    ::testing::Values(
        AlpnCase{"h2_offered", "h2", false, {"h2", "http/1.1"}, "h2"},
        AlpnCase{"h2_not_offered", "h2", false, {"http/1.1"}, ""},
        AlpnCase{"none_selected", "", false, {"h2", "http/1.1"}, ""},
        AlpnCase{"http11_selected",
                 "http/1.1",
                 false,
                 {"h2", "http/1.1"},
                 "http/1.1"},
        AlpnCase{"client_sends_no_alpn", "h2", false, {}, ""},
        AlpnCase{"forced_unoffered", "h3", true, {"h2"}, std::nullopt}),
    [](const ::testing::TestParamInfo<AlpnCase> &info) {
      return std::string(info.param.name);
    });

TEST_F(RawServerTls, PlaintextClientFailsTheHandshakeAndNoScriptRuns) {
  start([](RawConnection &) {}, tls_options());
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(server_->port());
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin), 0);
  const std::string h2c = kPrefaceBytes + settings();
  ASSERT_EQ(::send(fd, h2c.data(), h2c.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(h2c.size()));
  EXPECT_TRUE(wait_stats(
      [](const RawServerStats &s) { return s.connections_closed == 1; }));
  ::close(fd);
  RawServerStats s = server_->stats();
  EXPECT_EQ(s.tls_handshake_failures, 1u);
  EXPECT_EQ(s.tls_handshakes, 0u);
  EXPECT_EQ(s.scripts_finished, 0u);
}

TEST_F(RawServerTls, UnloadableCertificateFailsStart) {
  RawTlsOptions o = tls_options();
  o.cert_file += ".missing";
  RawServer server([](RawConnection &) {}, o);
  EXPECT_EQ(server.start(), -EINVAL);
  RawTlsOptions mismatched = tls_options();
  mismatched.key_file = mismatched.cert_file; // a certificate is no key
  RawServer other([](RawConnection &) {}, mismatched);
  EXPECT_EQ(other.start(), -EINVAL);
}

TEST(RawServerPlain, StillSpeaksCleartext) {
  RawServer server([](RawConnection &c) { c.send(settings()); });
  ASSERT_EQ(server.start(), 0);
  EXPECT_EQ(server.base_url(),
            "http://127.0.0.1:" + std::to_string(server.port()));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(server.port());
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin), 0);
  std::string got(settings().size(), '\0');
  size_t have = 0;
  while (have < got.size()) {
    ssize_t n = recv(fd, got.data() + have, got.size() - have, 0);
    if (n <= 0) {
      break;
    }
    have += static_cast<size_t>(n);
  }
  ::close(fd);
  EXPECT_EQ(got.substr(0, have), settings());
  EXPECT_EQ(server.stats().tls_handshakes, 0u);
}

} // namespace
} // namespace h2pool_testing
