// Drives the test server with a real HTTP/2 client: a minimal blocking
// nghttp2 client below (and the nghttp binary, when installed).
#include "test_server.h"
#include "test_server_c.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace h2pool_testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kDefaultBody = "hello from h2pool test server\n";

struct Response {
  int status = 0;
  Headers headers;
  std::string body;
  bool closed = false;
  uint32_t error_code = 0;
  Clock::time_point closed_at;

  std::optional<std::string> header(std::string_view name) const {
    for (const auto &[n, v] : headers) {
      if (n == name) {
        return v;
      }
    }
    return std::nullopt;
  }
};

struct RequestBody {
  std::string data;
  size_t offset = 0;
};

// A frame the client received, with its GOAWAY or RST_STREAM fields.
struct ReceivedFrame {
  uint8_t type = 0;
  uint8_t flags = 0;
  int32_t stream_id = 0;
  int32_t goaway_last_stream_id = -1;
  uint32_t error_code = 0;
  std::string goaway_debug;
};

// A blocking, single-threaded HTTP/2 client, just enough to script the
// server: every wait is bounded by a deadline.
class H2Client {
public:
  explicit H2Client(uint16_t port, int family = AF_INET,
                    bool big_window = false) {
    fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      return;
    }
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto sin = reinterpret_cast<sockaddr_in *>(&ss);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(port);
      sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*sin);
    } else {
      auto sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(port);
      sin6->sin6_addr = in6addr_loopback;
      len = sizeof(*sin6);
    }
    if (connect(fd_, reinterpret_cast<sockaddr *>(&ss), len) != 0) {
      return;
    }
    // Frames go out in separate writes; Nagle against delayed ACKs would add
    // 40 ms stalls between them.
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_client_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    std::vector<nghttp2_settings_entry> iv;
    if (big_window) {
      // Lets the server emit a whole large body at once, which exercises its
      // output high-water mark.
      iv.push_back({NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                    static_cast<uint32_t>(INT32_MAX)});
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                            INT32_MAX);
    }
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
    ok_ = true;
  }

  ~H2Client() {
    nghttp2_session_del(session_);
    if (fd_ >= 0) {
      close(fd_);
    }
  }

  bool ok() const { return ok_; }
  bool eof() const { return eof_; }
  // 0 when the server's FIN ended the connection, else the recv() errno
  // (ECONNRESET for a TCP RST).
  int eof_errno() const { return eof_errno_; }
  // Every byte the server sent, as it came off the socket.
  const std::string &received() const { return received_; }
  const std::vector<ReceivedFrame> &frames_received() const {
    return frames_received_;
  }
  // The error code of the GOAWAY this client's session sent, if any (nghttp2
  // sends one when the server breaks the protocol).
  std::optional<uint32_t> goaway_sent() const { return goaway_sent_; }
  int fd() const { return fd_; }
  // Bytes written to the socket so far.
  uint64_t bytes_sent() const { return bytes_sent_; }
  // Closes with RST instead of FIN, as a crashed peer would.
  void abort_connection() {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd_);
    fd_ = -1;
  }
  nghttp2_session *session() const { return session_; }

  int32_t request(const std::string &method, const std::string &path,
                  std::optional<std::string> body = std::nullopt,
                  const Headers &extra = {}) {
    auto nva = make_nva(method, path, extra);
    nghttp2_data_provider provider{};
    if (body) {
      bodies_.push_back({std::move(*body), 0});
      provider.source.ptr = &bodies_.back();
      provider.read_callback = read_body;
    }
    return nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                  body ? &provider : nullptr, nullptr);
  }

  // Sends HEADERS without END_STREAM: the stream stays open on the server
  // until send_body() ends it.
  int32_t open_stream(const std::string &method, const std::string &path) {
    auto nva = make_nva(method, path, {});
    return nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, -1, nullptr,
                                  nva.data(), nva.size(), nullptr);
  }

  int send_body(int32_t stream_id, std::string body) {
    bodies_.push_back({std::move(body), 0});
    nghttp2_data_provider provider{};
    provider.source.ptr = &bodies_.back();
    provider.read_callback = read_body;
    return nghttp2_submit_data(session_, NGHTTP2_FLAG_END_STREAM, stream_id,
                               &provider);
  }

  int reset(int32_t stream_id) {
    return nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id,
                                     NGHTTP2_CANCEL);
  }

  enum class FlushResult { done, blocked, failed };

  // Like flush(), but never waits: stops when the socket's send buffer is
  // full (the rest is kept and goes first next time).
  FlushResult flush_some() {
    for (;;) {
      if (!pending_.empty()) {
        ssize_t w = ::send(fd_, pending_.data(), pending_.size(),
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) {
          continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          return FlushResult::blocked;
        }
        if (w <= 0) {
          return FlushResult::failed;
        }
        bytes_sent_ += static_cast<uint64_t>(w);
        pending_.erase(0, static_cast<size_t>(w));
        continue;
      }
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        return FlushResult::failed;
      }
      if (n == 0) {
        return FlushResult::done;
      }
      pending_.assign(reinterpret_cast<const char *>(data),
                      static_cast<size_t>(n));
    }
  }

  // Reads (without writing anything) until the server ends the connection.
  bool read_until_eof(std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    while (!eof_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      if (left <= 0ms) {
        return false;
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) > 0) {
        receive_once();
      }
    }
    return true;
  }

  bool flush() {
    if (!pending_.empty()) {
      std::string rest;
      rest.swap(pending_);
      if (!write_all(reinterpret_cast<const uint8_t *>(rest.data()),
                     rest.size())) {
        return false;
      }
    }
    for (;;) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        return false;
      }
      if (n == 0) {
        return true;
      }
      if (!write_all(data, static_cast<size_t>(n))) {
        return false;
      }
    }
  }

  // Sends what is queued and processes input until `done()` or the deadline.
  bool run_until(const std::function<bool()> &done,
                 std::chrono::milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      // A write that finds the connection gone is not a failure when the
      // end of the connection is what the caller waits for.
      if (!flush() && !eof_) {
        return false;
      }
      if (done()) {
        return true;
      }
      if (eof_) {
        return false;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      if (left <= 0ms) {
        return false;
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
        continue;
      }
      if (!receive_once()) {
        return false;
      }
    }
  }

  bool wait(int32_t stream_id, std::chrono::milliseconds timeout = 10s) {
    return run_until([&] { return responses_[stream_id].closed; }, timeout);
  }

  bool wait_all(const std::vector<int32_t> &ids,
                std::chrono::milliseconds timeout = 10s) {
    return run_until(
        [&] {
          for (auto id : ids) {
            if (!responses_[id].closed) {
              return false;
            }
          }
          return true;
        },
        timeout);
  }

  const Response &response(int32_t stream_id) { return responses_[stream_id]; }
  const std::vector<int32_t> &completion_order() const { return order_; }

private:
  // One recv() into the session. Returns false if nghttp2 failed.
  bool receive_once() {
    uint8_t buf[65536];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      return true;
    }
    if (n <= 0) {
      eof_ = true;
      eof_errno_ = n == 0 ? 0 : errno;
      return true;
    }
    received_.append(reinterpret_cast<const char *>(buf),
                     static_cast<size_t>(n));
    return nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n)) >= 0;
  }

  std::vector<nghttp2_nv> make_nva(const std::string &method,
                                   const std::string &path,
                                   const Headers &extra) {
    strings_.push_back(method);
    auto &m = strings_.back();
    strings_.push_back(path);
    auto &p = strings_.back();
    std::vector<nghttp2_nv> nva;
    auto add = [&nva](const std::string &n, const std::string &v) {
      nva.push_back({(uint8_t *)n.data(), (uint8_t *)v.data(), n.size(),
                     v.size(), NGHTTP2_NV_FLAG_NONE});
    };
    add(kMethod, m);
    add(kScheme, kHttp);
    add(kAuthority, authority_);
    add(kPath, p);
    for (const auto &[n, v] : extra) {
      add(n, v);
    }
    return nva;
  }

  bool write_all(const uint8_t *data, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd_, data, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        // The server dropped the connection: as much an end as a read of 0.
        eof_ = true;
        eof_errno_ = errno;
        return false;
      }
      if (w <= 0) {
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
      bytes_sent_ += static_cast<uint64_t>(w);
    }
    return true;
  }

  static int on_header(nghttp2_session *, const nghttp2_frame *frame,
                       const uint8_t *name, size_t namelen,
                       const uint8_t *value, size_t valuelen, uint8_t,
                       void *user_data) {
    auto client = static_cast<H2Client *>(user_data);
    std::string n(reinterpret_cast<const char *>(name), namelen);
    std::string v(reinterpret_cast<const char *>(value), valuelen);
    auto &r = client->responses_[frame->hd.stream_id];
    if (n == ":status") {
      r.status = std::atoi(v.c_str());
    } else {
      r.headers.emplace_back(std::move(n), std::move(v));
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session *, uint8_t, int32_t stream_id,
                           const uint8_t *data, size_t len, void *user_data) {
    auto client = static_cast<H2Client *>(user_data);
    client->responses_[stream_id].body.append(
        reinterpret_cast<const char *>(data), len);
    return 0;
  }

  static int on_stream_close(nghttp2_session *, int32_t stream_id,
                             uint32_t error_code, void *user_data) {
    auto client = static_cast<H2Client *>(user_data);
    auto &r = client->responses_[stream_id];
    r.closed = true;
    r.error_code = error_code;
    r.closed_at = Clock::now();
    client->order_.push_back(stream_id);
    return 0;
  }

  static int on_frame_recv(nghttp2_session *, const nghttp2_frame *frame,
                           void *user_data) {
    auto client = static_cast<H2Client *>(user_data);
    ReceivedFrame f;
    f.type = frame->hd.type;
    f.flags = frame->hd.flags;
    f.stream_id = frame->hd.stream_id;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      f.goaway_last_stream_id = frame->goaway.last_stream_id;
      f.error_code = frame->goaway.error_code;
      f.goaway_debug.assign(
          reinterpret_cast<const char *>(frame->goaway.opaque_data),
          frame->goaway.opaque_data_len);
    } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
      f.error_code = frame->rst_stream.error_code;
    }
    client->frames_received_.push_back(std::move(f));
    return 0;
  }

  static int on_frame_send(nghttp2_session *, const nghttp2_frame *frame,
                           void *user_data) {
    auto client = static_cast<H2Client *>(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      client->goaway_sent_ = frame->goaway.error_code;
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session *, int32_t, uint8_t *buf,
                           size_t length, uint32_t *data_flags,
                           nghttp2_data_source *source, void *) {
    auto body = static_cast<RequestBody *>(source->ptr);
    size_t n = std::min(length, body->data.size() - body->offset);
    std::memcpy(buf, body->data.data() + body->offset, n);
    body->offset += n;
    if (body->offset == body->data.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }

  inline static const std::string kMethod = ":method";
  inline static const std::string kScheme = ":scheme";
  inline static const std::string kAuthority = ":authority";
  inline static const std::string kPath = ":path";
  inline static const std::string kHttp = "http";

  int fd_ = -1;
  bool ok_ = false;
  bool eof_ = false;
  int eof_errno_ = 0;
  uint64_t bytes_sent_ = 0;
  std::string received_;
  // flush_some(): serialised bytes the socket did not take yet.
  std::string pending_;
  std::vector<ReceivedFrame> frames_received_;
  std::optional<uint32_t> goaway_sent_;
  nghttp2_session *session_ = nullptr;
  std::string authority_ = "localhost";
  // Stable addresses: nghttp2 keeps pointers to request bodies until sent.
  std::list<RequestBody> bodies_;
  std::list<std::string> strings_;
  std::map<int32_t, Response> responses_;
  std::vector<int32_t> order_;
};

class TestServerTest : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_EQ(server_.start(), 0); }

  // One request on a fresh connection, waited for.
  Response get(const std::string &path,
               std::optional<std::string> body = std::nullopt,
               const std::string &method = "GET") {
    H2Client client(server_.port());
    EXPECT_TRUE(client.ok());
    int32_t id = client.request(body ? "POST" : method, path, std::move(body));
    EXPECT_GT(id, 0);
    EXPECT_TRUE(client.wait(id));
    return client.response(id);
  }

  TestServer server_;
};

TEST_F(TestServerTest, AnyPathServesTheDefaultBody) {
  Response r = get("/anything");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(r.body, kDefaultBody);
  EXPECT_EQ(r.header("content-length"), std::to_string(kDefaultBody.size()));
  EXPECT_EQ(r.header("x-request-count"), "1");
  EXPECT_FALSE(r.header("x-request-body-length"));
}

TEST_F(TestServerTest, RequestCountHeaderCountsEveryRequest) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  int32_t a = client.request("GET", "/");
  ASSERT_TRUE(client.wait(a));
  int32_t b = client.request("GET", "/");
  ASSERT_TRUE(client.wait(b));
  EXPECT_EQ(client.response(a).header("x-request-count"), "1");
  EXPECT_EQ(client.response(b).header("x-request-count"), "2");
  ServerStats s = server_.stats();
  EXPECT_EQ(s.requests, 2u);
  EXPECT_EQ(s.responses, 2u);
}

TEST_F(TestServerTest, SizeAndSeedServeTestBodyByteExact) {
  Response r = get("/data?size=100000&seed=7");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "100000");
  ASSERT_EQ(r.body.size(), 100000u);
  EXPECT_TRUE(r.body == test_body(7, 100000));
  EXPECT_FALSE(r.body == test_body(8, 100000));
}

TEST_F(TestServerTest, SizeZeroServesAnEmptyBody) {
  Response r = get("/?size=0");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_EQ(r.body, "");
}

TEST_F(TestServerTest, LargeBodyToAWideOpenWindowIsByteExact) {
  constexpr size_t kSize = 16 << 20;
  H2Client client(server_.port(), AF_INET, /*big_window=*/true);
  ASSERT_TRUE(client.ok());
  int32_t id =
      client.request("GET", "/?size=" + std::to_string(kSize) + "&seed=99");
  ASSERT_TRUE(client.wait(id, 60s));
  EXPECT_EQ(client.response(id).body.size(), kSize);
  EXPECT_TRUE(client.response(id).body == test_body(99, kSize));
}

TEST_F(TestServerTest, HeadAnnouncesLengthWithoutBody) {
  Response r = get("/?size=1234", std::nullopt, "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "1234");
  EXPECT_EQ(r.body, "");
}

TEST_F(TestServerTest, EchoReturnsTheRequestBody) {
  std::string body = test_body(3, 200000);
  Response r = get("/echo", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == body);
  EXPECT_EQ(r.header("content-length"), "200000");
  EXPECT_EQ(r.header("x-request-body-length"), "200000");
}

TEST_F(TestServerTest, StatusParameterSetsTheStatus) {
  Response r = get("/?status=404");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, kDefaultBody);
}

TEST_F(TestServerTest, NoContentStatusHasNoBodyOrLength) {
  Response r = get("/?status=204");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.error_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(r.body, "");
  EXPECT_FALSE(r.header("content-length"));
}

TEST_F(TestServerTest, MalformedParameterGets400NamingIt) {
  Response r = get("/?size=12x");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("size"), std::string::npos);
  EXPECT_EQ(get("/?status=99").status, 400);
}

TEST_F(TestServerTest, HeaderParameterAddsDecodedResponseHeaders) {
  Response r =
      get("/?header=X-Test:a%20b%3Ac&header=x-other:2&header=x-other:3");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-test"), "a b:c");
  Headers others;
  for (const auto &h : r.headers) {
    if (h.first == "x-other") {
      others.push_back(h);
    }
  }
  EXPECT_EQ(others, (Headers{{"x-other", "2"}, {"x-other", "3"}}));
}

TEST_F(TestServerTest, DelayedResponseDoesNotBlockOtherStreams) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  auto start = Clock::now();
  int32_t slow = client.request("GET", "/?delay_ms=300");
  int32_t fast = client.request("GET", "/");
  ASSERT_TRUE(client.wait_all({slow, fast}));
  EXPECT_EQ(client.completion_order(), (std::vector<int32_t>{fast, slow}));
  EXPECT_GE(client.response(slow).closed_at - start, 300ms);
  EXPECT_EQ(client.response(slow).status, 200);
  EXPECT_EQ(client.response(slow).body, kDefaultBody);
}

TEST_F(TestServerTest, PeakConcurrentStreamsCountsStreamsOpenTogether) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  // All ten HEADERS precede every END_STREAM on the wire, and a stream can
  // only close after its END_STREAM, so the server sees ten open at once.
  std::vector<int32_t> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(client.open_stream("POST", "/echo"));
    ASSERT_GT(ids.back(), 0);
  }
  ASSERT_TRUE(client.flush());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(client.send_body(ids[i], "body " + std::to_string(i)), 0);
  }
  ASSERT_TRUE(client.wait_all(ids));
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(client.response(ids[i]).body, "body " + std::to_string(i));
  }
  ServerStats s = server_.stats();
  EXPECT_EQ(s.peak_concurrent_streams, 10u);
  EXPECT_EQ(s.requests, 10u);
  EXPECT_EQ(s.responses, 10u);
}

TEST_F(TestServerTest, SequentialStreamsPeakAtOne) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.wait(client.request("GET", "/")));
  }
  EXPECT_EQ(server_.stats().peak_concurrent_streams, 1u);
}

TEST_F(TestServerTest, RecordsMethodPathHeadersAndBody) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  int32_t id = client.request("PUT", "/rec?x=1", std::string("abc"),
                              {{"x-custom", "v1"}, {"x-two", "v2"}});
  ASSERT_TRUE(client.wait(id));
  EXPECT_EQ(client.response(id).header("x-request-body-length"), "3");
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const RecordedRequest &r = reqs[0];
  EXPECT_EQ(r.connection_id, 1u);
  EXPECT_EQ(r.stream_id, id);
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.scheme, "http");
  EXPECT_EQ(r.authority, "localhost");
  EXPECT_EQ(r.path, "/rec?x=1");
  EXPECT_EQ(r.headers, (Headers{{"x-custom", "v1"}, {"x-two", "v2"}}));
  EXPECT_EQ(r.body, "abc");
}

TEST(TestServerOptions, RecordBodiesOffKeepsBodiesOutButEchoWorks) {
  ServerOptions options;
  options.record_bodies = false;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  H2Client client(server.port());
  ASSERT_TRUE(client.ok());
  int32_t id = client.request("POST", "/echo", std::string("xyz"));
  ASSERT_TRUE(client.wait(id));
  EXPECT_EQ(client.response(id).body, "xyz");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body, "");
}

TEST(TestServerOptions, RecordLimitKeepsTheNewest) {
  ServerOptions options;
  options.record_limit = 2;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  H2Client client(server.port());
  ASSERT_TRUE(client.ok());
  for (const char *path : {"/1", "/2", "/3"}) {
    ASSERT_TRUE(client.wait(client.request("GET", path)));
  }
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].path, "/2");
  EXPECT_EQ(reqs[1].path, "/3");
  EXPECT_EQ(server.stats().requests, 3u);
}

uint32_t announced_max_streams(uint32_t configured) {
  ServerOptions options;
  options.max_concurrent_streams = configured;
  TestServer server(options);
  EXPECT_EQ(server.start(), 0);
  H2Client client(server.port());
  EXPECT_TRUE(client.ok());
  // The server's SETTINGS is its first frame, so it has arrived by the time
  // any response has.
  EXPECT_TRUE(client.wait(client.request("GET", "/")));
  return nghttp2_session_get_remote_settings(
      client.session(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

TEST(TestServerOptions, AnnouncesMaxConcurrentStreams) {
  EXPECT_EQ(announced_max_streams(7), 7u);
}

TEST(TestServerOptions, ZeroMaxConcurrentStreamsIsNotAnnounced) {
  // nghttp2 reports the protocol's default (unlimited) when never announced.
  EXPECT_EQ(announced_max_streams(0), 0xffffffffu);
}

TEST_F(TestServerTest, CountsConnections) {
  {
    H2Client a(server_.port());
    H2Client b(server_.port());
    ASSERT_TRUE(a.wait(a.request("GET", "/")));
    ASSERT_TRUE(b.wait(b.request("GET", "/")));
    ServerStats s = server_.stats();
    EXPECT_EQ(s.connections_accepted, 2u);
    EXPECT_EQ(s.connections_open, 2u);
    EXPECT_EQ(s.peak_connections_open, 2u);
    auto reqs = server_.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[0].connection_id, 1u);
    EXPECT_EQ(reqs[1].connection_id, 2u);
  }
  EXPECT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.connections_open == 0; }, 10s));
  EXPECT_EQ(server_.stats().peak_connections_open, 2u);
}

TEST_F(TestServerTest, ClientResetOfDelayedStreamCancelsItsResponse) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  int32_t cancelled = client.request("GET", "/?delay_ms=50");
  ASSERT_TRUE(client.flush());
  ASSERT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.requests == 1; }, 10s));
  ASSERT_EQ(client.reset(cancelled), 0);
  // Outlives the cancelled stream's timer, so a timer that survived its
  // stream would fire (and ASan would see it) before this completes.
  int32_t later = client.request("GET", "/?delay_ms=150");
  ASSERT_TRUE(client.wait(later));
  EXPECT_EQ(client.response(later).status, 200);
  EXPECT_EQ(client.response(cancelled).error_code, NGHTTP2_CANCEL);
  EXPECT_EQ(client.response(cancelled).status, 0);
  ServerStats s = server_.stats();
  EXPECT_EQ(s.requests, 2u);
  EXPECT_EQ(s.responses, 1u);
}

TEST_F(TestServerTest, ConnectionClosedWithDelayedResponsePendingIsSafe) {
  {
    H2Client doomed(server_.port());
    ASSERT_TRUE(doomed.ok());
    doomed.request("GET", "/?delay_ms=50");
    ASSERT_TRUE(doomed.flush());
    ASSERT_TRUE(server_.wait_for_stats(
        [](const ServerStats &s) { return s.requests == 1; }, 10s));
  }
  ASSERT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.connections_open == 0; }, 10s));
  H2Client client(server_.port());
  int32_t id = client.request("GET", "/?delay_ms=150");
  ASSERT_TRUE(client.wait(id));
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(server_.stats().responses, 1u);
}

TEST_F(TestServerTest, StopClosesConnectionsWithPendingDelays) {
  H2Client client(server_.port());
  ASSERT_TRUE(client.ok());
  client.request("GET", "/?delay_ms=600000");
  ASSERT_TRUE(client.flush());
  ASSERT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.requests == 1; }, 10s));
  auto start = Clock::now();
  server_.stop();
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(server_.stats().connections_open, 0u);
  client.run_until([&] { return client.eof(); }, 10s);
  EXPECT_TRUE(client.eof());
  server_.stop(); // idempotent
}

TEST_F(TestServerTest, PeerResetMidBodyClosesTheConnection) {
  H2Client client(server_.port(), AF_INET, /*big_window=*/true);
  ASSERT_TRUE(client.ok());
  int32_t id = client.request("GET", "/?size=268435456");
  // Some body has arrived, so the server is mid-response when the RST lands.
  ASSERT_TRUE(
      client.run_until([&] { return client.response(id).body.size() > 0; }));
  client.abort_connection();
  EXPECT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.connections_open == 0; }, 10s));
  EXPECT_EQ(server_.stats().responses, 0u);
  EXPECT_EQ(get("/").status, 200);
}

TEST_F(TestServerTest, PeerGoneBeforeGoawayDoesNotRaiseSigpipe) {
  // The client's FIN puts the server in CLOSE_WAIT, its unread SETTINGS make
  // close() answer with RST, and the server then writes the GOAWAY that the
  // bad first frame earned: Linux reports EPIPE and raises SIGPIPE, which
  // would kill this whole binary. Each round hits that with high odds; fifty
  // make a regression all but certain to show.
  for (int i = 0; i < 50; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(server_.port());
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)), 0);
    pollfd pfd{fd, POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 10000), 1); // the server's SETTINGS, left unread
    std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    bytes.append("\0\0\0\x06\0\0\0\0\0", 9); // PING, not SETTINGS, first
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    shutdown(fd, SHUT_WR);
    close(fd);
  }
  EXPECT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.connections_open == 0; }, 10s));
  EXPECT_EQ(server_.stats().connections_accepted, 50u);
  EXPECT_EQ(get("/").status, 200);
}

TEST_F(TestServerTest, GarbageClosesTheConnectionAndServerKeepsServing) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(server_.port());
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)), 0);
  const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, garbage, sizeof(garbage) - 1, MSG_NOSIGNAL),
            static_cast<ssize_t>(sizeof(garbage) - 1));
  bool closed = false;
  auto deadline = Clock::now() + 10s;
  while (!closed && Clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 1000) <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    closed = n <= 0;
  }
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(server_.wait_for_stats(
      [](const ServerStats &s) { return s.connections_open == 0; }, 10s));
  EXPECT_EQ(get("/").status, 200);
}

// The first frame of `wire` (9-byte header + payload) and what follows it.
std::pair<std::string, std::string> split_first_frame(const std::string &wire) {
  if (wire.size() < 9) {
    return {wire, ""};
  }
  auto b = reinterpret_cast<const uint8_t *>(wire.data());
  size_t len = 9 + ((size_t(b[0]) << 16) | (size_t(b[1]) << 8) | b[2]);
  return {wire.substr(0, len), len < wire.size() ? wire.substr(len) : ""};
}

const ReceivedFrame *find_frame(const H2Client &client, uint8_t type) {
  for (const auto &f : client.frames_received()) {
    if (f.type == type) {
      return &f;
    }
  }
  return nullptr;
}

bool no_connections_open(const ServerStats &s) {
  return s.connections_open == 0;
}

TEST(AfterSettings, GoawayAnnouncesNoStreamsThenKeepsReadingUntilClientCloses) {
  ServerOptions options;
  options.connection.after_settings = AfterSettings::goaway;
  options.connection.after_settings_goaway_code = NGHTTP2_ENHANCE_YOUR_CALM;
  options.connection.after_settings_debug = "go away";
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  {
    H2Client client(server.port());
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client.run_until(
        [&] { return find_frame(client, NGHTTP2_GOAWAY) != nullptr; }));
    const auto &frames = client.frames_received();
    ASSERT_GE(frames.size(), 2u);
    EXPECT_EQ(frames[0].type, NGHTTP2_SETTINGS);
    EXPECT_EQ(frames[0].flags, NGHTTP2_FLAG_NONE);
    EXPECT_EQ(frames[1].type, NGHTTP2_GOAWAY);
    EXPECT_EQ(frames[1].goaway_last_stream_id, 0);
    EXPECT_EQ(frames[1].error_code, NGHTTP2_ENHANCE_YOUR_CALM);
    EXPECT_EQ(frames[1].goaway_debug, "go away");
    auto [settings, rest] = split_first_frame(client.received());
    EXPECT_EQ(rest.substr(0, 9 + 8 + 7),
              std::string("\x00\x00\x0f\x07\x00\x00\x00\x00\x00"
                          "\x00\x00\x00\x00\x00\x00\x00\x0b"
                          "go away",
                          24));
    // Had the server closed once nghttp2 was done (GOAWAY out, no streams),
    // these bytes would never be read. Written raw: after a GOAWAY our own
    // nghttp2 session considers itself closing and sends nothing more.
    const std::string ping("\x00\x00\x08\x06\x00\x00\x00\x00\x00"
                           "12345678",
                           17);
    ASSERT_EQ(::send(client.fd(), ping.data(), ping.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(ping.size()));
    const uint64_t sent = client.bytes_sent() + ping.size(); // with preface
    ASSERT_TRUE(server.wait_for_stats(
        [sent](const ServerStats &s) { return s.bytes_discarded == sent; },
        10s));
    ServerStats s = server.stats();
    EXPECT_EQ(s.connections_open, 1u);
    EXPECT_EQ(s.goaways_sent, 1u);
    EXPECT_EQ(s.pings_received, 0u);
    EXPECT_EQ(s.requests, 0u);
  }
  EXPECT_TRUE(server.wait_for_stats(no_connections_open, 10s));
}

struct ProtocolErrorCase {
  const char *name;
  ProtocolErrorKind kind;
  std::string frame;       // the exact bytes after the SETTINGS
  uint32_t client_verdict; // the GOAWAY code nghttp2's client answers with
};

class AfterSettingsProtocolError
    : public ::testing::TestWithParam<ProtocolErrorCase> {};

TEST_P(AfterSettingsProtocolError, WritesTheMalformedFrameRightAfterSettings) {
  ServerOptions options;
  options.connection.after_settings = AfterSettings::protocol_error;
  options.connection.after_settings_protocol_error = GetParam().kind;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  {
    H2Client client(server.port());
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(
        client.run_until([&] { return client.goaway_sent().has_value(); }));
    // An independent parser agrees it is the intended connection error.
    EXPECT_EQ(*client.goaway_sent(), GetParam().client_verdict);
    auto [settings, rest] = split_first_frame(client.received());
    EXPECT_EQ(settings.substr(3, 2), std::string("\x04\x00", 2));
    EXPECT_EQ(rest, GetParam().frame);
    // The server reads (and drops) what we sent, our GOAWAY included, and
    // leaves closing to us.
    const uint64_t sent = client.bytes_sent();
    ASSERT_TRUE(server.wait_for_stats(
        [sent](const ServerStats &s) { return s.bytes_discarded == sent; },
        10s));
    EXPECT_EQ(server.stats().protocol_errors_sent, 1u);
    EXPECT_EQ(server.stats().connections_open, 1u);
  }
  EXPECT_TRUE(server.wait_for_stats(no_connections_open, 10s));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, AfterSettingsProtocolError,
    ::testing::Values(
        ProtocolErrorCase{"settings_ack_with_payload",
                          ProtocolErrorKind::settings_ack_with_payload,
                          std::string("\x00\x00\x06\x04\x01\x00\x00\x00\x00"
                                      "\x00\x03\x00\x00\x00\x64",
                                      15),
                          NGHTTP2_FRAME_SIZE_ERROR},
        ProtocolErrorCase{"ping_wrong_length",
                          ProtocolErrorKind::ping_wrong_length,
                          std::string("\x00\x00\x07\x06\x00\x00\x00\x00\x00"
                                      "\x00\x00\x00\x00\x00\x00\x00",
                                      16),
                          NGHTTP2_FRAME_SIZE_ERROR},
        ProtocolErrorCase{"data_on_stream_0",
                          ProtocolErrorKind::data_on_stream_0,
                          std::string("\x00\x00\x05\x00\x00\x00\x00\x00\x00"
                                      "hello",
                                      14),
                          NGHTTP2_PROTOCOL_ERROR}),
    [](const ::testing::TestParamInfo<ProtocolErrorCase> &info) {
      return std::string(info.param.name);
    });

TEST(AfterSettings, CloseSendsFinRightAfterSettingsAndNoReset) {
  ServerOptions options;
  options.connection.after_settings = AfterSettings::close;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  {
    H2Client client(server.port());
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client.read_until_eof());
    EXPECT_EQ(client.eof_errno(), 0) << std::strerror(client.eof_errno());
    auto [settings, rest] = split_first_frame(client.received());
    EXPECT_EQ(settings.size(), 15u); // MAX_CONCURRENT_STREAMS only
    EXPECT_EQ(settings.substr(3, 2), std::string("\x04\x00", 2));
    EXPECT_EQ(rest, "");
    // Half-closed: the server still reads (and discards) what we send, and
    // keeps the connection until we close it. (A server that closed its
    // socket would not count these bytes.)
    ASSERT_TRUE(client.flush());
    const uint64_t sent = client.bytes_sent();
    ASSERT_GT(sent, 0u);
    ASSERT_TRUE(server.wait_for_stats(
        [sent](const ServerStats &s) { return s.bytes_discarded == sent; },
        10s));
    EXPECT_EQ(server.stats().connections_open, 1u);
    EXPECT_EQ(server.stats().connections_dropped, 1u);
  }
  EXPECT_TRUE(server.wait_for_stats(no_connections_open, 10s));
}

TEST(AfterSettings, ResetAbortsWithTcpRst) {
  ServerOptions options;
  options.connection.after_settings = AfterSettings::reset;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  H2Client client(server.port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.read_until_eof());
  EXPECT_EQ(client.eof_errno(), ECONNRESET)
      << std::strerror(client.eof_errno());
  EXPECT_TRUE(server.wait_for_stats(no_connections_open, 10s));
  EXPECT_EQ(server.stats().connections_dropped, 1u);
}

TEST(AfterSettings, NoneServesRequests) {
  ServerOptions options;
  options.connection.after_settings = AfterSettings::none;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  H2Client client(server.port());
  int32_t id = client.request("GET", "/");
  ASSERT_TRUE(client.wait(id));
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(find_frame(client, NGHTTP2_GOAWAY), nullptr);
}

TEST(RefuseEvery, RefusesEveryNthStreamInArrivalOrderAcrossConnections) {
  ServerOptions options;
  options.refuse_every = 2;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  H2Client a(server.port());
  H2Client b(server.port());
  ASSERT_TRUE(a.ok() && b.ok());
  struct Step {
    H2Client *client;
    bool post;
    bool refused;
  };
  // Each request completes before the next is sent, so this is the order
  // the server receives them in: stream 4 carries a body, refused before the
  // server reads it.
  const std::vector<Step> steps = {{&a, false, false}, {&b, false, true},
                                   {&a, false, false}, {&b, true, true},
                                   {&b, false, false}, {&a, false, true}};
  uint64_t answered = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    H2Client &c = *steps[i].client;
    std::optional<std::string> body;
    if (steps[i].post) {
      body = test_body(1, 200000);
    }
    int32_t id = c.request(steps[i].post ? "POST" : "GET",
                           "/step" + std::to_string(i + 1), body);
    ASSERT_GT(id, 0);
    ASSERT_TRUE(c.wait(id)) << "step " << i + 1;
    const Response &r = c.response(id);
    if (steps[i].refused) {
      EXPECT_EQ(r.status, 0) << "step " << i + 1;
      EXPECT_EQ(r.error_code, NGHTTP2_REFUSED_STREAM) << "step " << i + 1;
      bool rst_seen = false;
      for (const auto &f : c.frames_received()) {
        rst_seen |= f.type == NGHTTP2_RST_STREAM && f.stream_id == id &&
                    f.error_code == NGHTTP2_REFUSED_STREAM;
      }
      EXPECT_TRUE(rst_seen) << "step " << i + 1;
    } else {
      ++answered;
      EXPECT_EQ(r.status, 200) << "step " << i + 1;
      EXPECT_EQ(r.error_code, NGHTTP2_NO_ERROR) << "step " << i + 1;
      // Refused streams never reached a handler, so they are not counted.
      EXPECT_EQ(r.header("x-request-count"), std::to_string(answered));
    }
  }
  ServerStats s = server.stats();
  EXPECT_EQ(s.streams_refused, 3u);
  EXPECT_EQ(s.requests, 3u);
  std::vector<std::string> paths;
  for (const auto &r : server.requests()) {
    paths.push_back(r.path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"/step1", "/step3", "/step5"}));
}

TEST_F(TestServerTest, DropAtFaultAtSendsNoMoreOfTheBody) {
  for (const char *mode : {"close", "reset"}) {
    H2Client client(server_.port());
    ASSERT_TRUE(client.ok());
    // No fault_delay_ms: the fault strikes while nghttp2 is still asking
    // for the rest of the body.
    int32_t id = client.request(
        "GET", std::string("/?size=1000&seed=4&fault_at=100&drop=") + mode);
    ASSERT_TRUE(client.run_until([&] { return client.eof(); })) << mode;
    const Response &r = client.response(id);
    EXPECT_FALSE(r.closed) << mode << ": END_STREAM must not have been sent";
    EXPECT_LE(r.body.size(), 100u) << mode;
    EXPECT_TRUE(r.body == test_body(4, r.body.size())) << mode;
  }
  EXPECT_EQ(server_.stats().connections_dropped, 2u);
  EXPECT_EQ(server_.stats().responses, 0u);
}

TEST_F(TestServerTest, DropMidframeCutsADataFrameHeaderThenSendsFin) {
  {
    H2Client client(server_.port());
    ASSERT_TRUE(client.ok());
    int32_t id =
        client.request("GET", "/?size=1000&seed=4&drop=midframe&fault_at=100");
    ASSERT_TRUE(client.run_until([&] { return client.eof(); }));
    EXPECT_EQ(client.eof_errno(), 0) << std::strerror(client.eof_errno());
    const Response &r = client.response(id);
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.closed);
    EXPECT_TRUE(r.body == test_body(4, 1000).substr(0, 100));
    const std::string &wire = client.received();
    ASSERT_GE(wire.size(), 5u);
    EXPECT_EQ(wire.substr(wire.size() - 5),
              std::string("\x00\x40\x00\x00\x00", 5));
    EXPECT_EQ(server_.stats().connections_dropped, 1u);
    EXPECT_EQ(server_.stats().responses, 0u);
  }
  EXPECT_TRUE(server_.wait_for_stats(no_connections_open, 10s));
  EXPECT_EQ(get("/").status, 200);
}

TEST(ReadPause, StopsReadingSoALargeUploadBlocksTheClientsWrites) {
  constexpr uint32_t kPauseMs = 2000;
  constexpr size_t kUpload = 32 << 20;
  ServerOptions options;
  options.record_bodies = false;
  // Flow control must not stop the upload first.
  options.connection.initial_window_size = 1u << 30;
  options.connection.read_pause_ms = kPauseMs;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  H2Client client(server.port());
  ASSERT_TRUE(client.ok());
  int32_t id = client.open_stream("POST", "/");
  ASSERT_GT(id, 0);
  ASSERT_TRUE(client.run_until([&] {
    return nghttp2_session_get_remote_window_size(client.session()) >=
           (1 << 30) - 1;
  }));
  ASSERT_TRUE(server.wait_for_stats(
      [](const ServerStats &s) { return s.read_pauses == 1; }, 10s));
  auto paused_at = Clock::now();
  ASSERT_EQ(client.send_body(id, std::string(kUpload, 'u')), 0);
  H2Client::FlushResult r = H2Client::FlushResult::done;
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         (r = client.flush_some()) == H2Client::FlushResult::done) {
  }
  // The socket buffers are full while the server is still paused.
  EXPECT_EQ(r, H2Client::FlushResult::blocked);
  EXPECT_EQ(server.stats().read_pauses_ended, 0u);
  ASSERT_TRUE(client.wait(id, 30s));
  EXPECT_GE(client.response(id).closed_at - paused_at,
            std::chrono::milliseconds(kPauseMs) - 100ms);
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(client.response(id).header("x-request-body-length"),
            std::to_string(kUpload));
  ServerStats s = server.stats();
  EXPECT_EQ(s.read_pauses, 1u);
  EXPECT_EQ(s.read_pauses_ended, 1u);
}

TEST(ConnectionScripts, EachConnectionAnnouncesItsOwnFirstSettings) {
  ServerOptions options;
  options.max_concurrent_streams = 100;
  options.connection_script = [](uint64_t id) {
    ConnectionScript s;
    if (id == 1) {
      s.settings_mcs_initial = 0;
    } else if (id == 2) {
      s.settings_mcs_initial = 5;
      s.initial_window_size = 1u << 20;
    }
    return s;
  };
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  struct Want {
    uint32_t mcs;
    uint32_t window;
    int32_t connection_window;
  };
  const std::vector<Want> wants = {
      {0, 65535, 65535}, {5, 1u << 20, 1 << 20}, {100, 65535, 65535}};
  std::list<H2Client> clients; // held open so the ids stay 1, 2, 3
  for (size_t i = 0; i < wants.size(); ++i) {
    clients.emplace_back(server.port());
    H2Client &c = clients.back();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.run_until([&] {
      // Our SETTINGS ACKed means the server has read our preface; its own
      // SETTINGS (and WINDOW_UPDATE) went out before that ACK.
      return find_frame(c, NGHTTP2_SETTINGS) &&
             nghttp2_session_get_remote_window_size(c.session()) ==
                 wants[i].connection_window;
    })) << "connection "
        << i + 1;
    EXPECT_EQ(nghttp2_session_get_remote_settings(
                  c.session(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
              wants[i].mcs)
        << "connection " << i + 1;
    EXPECT_EQ(nghttp2_session_get_remote_settings(
                  c.session(), NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE),
              wants[i].window)
        << "connection " << i + 1;
  }
  // The third connection, on the server-wide defaults, serves requests.
  int32_t id = clients.back().request("GET", "/");
  ASSERT_TRUE(clients.back().wait(id));
  EXPECT_EQ(clients.back().response(id).status, 200);
}

TEST(TestServerStart, StartTwiceIsRejected) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  EXPECT_EQ(server.start(), -EALREADY);
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.base_url(),
            "http://127.0.0.1:" + std::to_string(server.port()));
}

TEST(TestServerStart, NonLoopbackHostsAreRejected) {
  for (const char *host : {"0.0.0.0", "192.0.2.1", "::", "example.com"}) {
    ServerOptions options;
    options.host = host;
    TestServer server(options);
    EXPECT_EQ(server.start(), -EINVAL) << host;
  }
}

TEST(TestServerStart, PortInUseReportsErrno) {
  TestServer first;
  ASSERT_EQ(first.start(), 0);
  ServerOptions options;
  options.port = first.port();
  TestServer second(options);
  EXPECT_EQ(second.start(), -EADDRINUSE);
}

TEST(TestServerStart, ServesOverIpv6Loopback) {
  ServerOptions options;
  options.host = "::1";
  TestServer server(options);
  int rv = server.start();
  if (rv == -EAFNOSUPPORT || rv == -EADDRNOTAVAIL) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  ASSERT_EQ(rv, 0);
  EXPECT_EQ(server.base_url(), "http://[::1]:" + std::to_string(server.port()));
  H2Client client(server.port(), AF_INET6);
  ASSERT_TRUE(client.ok());
  int32_t id = client.request("GET", "/");
  ASSERT_TRUE(client.wait(id));
  EXPECT_EQ(client.response(id).body, kDefaultBody);
}

TEST(TestBody, IsDeterministicAndDependsOnSeed) {
  EXPECT_EQ(test_body(1, 4096), test_body(1, 4096));
  EXPECT_NE(test_body(1, 8), test_body(2, 8));
  EXPECT_NE(test_body(0, 8), test_body(1, 8));
  // A shorter body is a prefix of a longer one with the same seed.
  EXPECT_EQ(test_body(5, 1000).substr(0, 13), test_body(5, 13));
  EXPECT_EQ(test_body(5, 0), "");
}

TEST(TestBody, FillAtAnyOffsetMatchesTheWholeBody) {
  const std::string whole = test_body(11, 100);
  for (size_t offset = 0; offset < 40; ++offset) {
    for (size_t n : {0, 1, 7, 8, 9, 17, 60}) {
      std::string part(n, '\0');
      fill_test_body(11, offset, n, reinterpret_cast<uint8_t *>(part.data()));
      EXPECT_EQ(part, whole.substr(offset, n)) << offset << "+" << n;
    }
  }
}

TEST(TestBody, MatchesTheDocumentedFormula) {
  // Pins the format for clients in other languages (see test_server.h).
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  std::string body = test_body(42, 24);
  for (size_t i = 0; i < body.size(); ++i) {
    uint64_t word = mix(mix(42) + (i / 8) * 0x9e3779b97f4a7c15ULL);
    EXPECT_EQ(static_cast<uint8_t>(body[i]),
              static_cast<uint8_t>(word >> (8 * (i % 8))))
        << i;
  }
}

TEST(TestServerC, ShimStartsCountsAndStops) {
  h2ts *ts = nullptr;
  ASSERT_EQ(h2ts_start(5, &ts), 0);
  ASSERT_NE(ts, nullptr);
  ASSERT_NE(h2ts_port(ts), 0);
  {
    H2Client client(h2ts_port(ts));
    ASSERT_TRUE(client.ok());
    int32_t id = client.request("GET", "/");
    ASSERT_TRUE(client.wait(id));
    EXPECT_EQ(nghttp2_session_get_remote_settings(
                  client.session(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
              5u);
  }
  EXPECT_EQ(h2ts_connections_accepted(ts), 1u);
  EXPECT_EQ(h2ts_peak_connections_open(ts), 1u);
  EXPECT_EQ(h2ts_peak_concurrent_streams(ts), 1u);
  EXPECT_EQ(h2ts_requests(ts), 1u);
  h2ts_stop(ts);
  h2ts_stop(nullptr);
  EXPECT_EQ(h2ts_port(nullptr), 0);
  EXPECT_EQ(h2ts_start(0, nullptr), -EINVAL);
}

TEST(TestServerC, ShimTestBodyMatches) {
  std::string out(1000, '\0');
  h2ts_test_body(9, out.size(), reinterpret_cast<uint8_t *>(out.data()));
  EXPECT_EQ(out, test_body(9, 1000));
}

std::optional<std::string> find_program(const std::string &name) {
  const char *path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    auto colon = rest.find(':');
    std::filesystem::path candidate(std::string(rest.substr(0, colon)));
    candidate /= name;
    if (access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
    rest = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
  }
  return std::nullopt;
}

TEST_F(TestServerTest, NghttpClientGetsTheSameBytes) {
  auto nghttp = find_program("nghttp");
  if (!nghttp) {
    GTEST_SKIP() << "nghttp not installed";
  }
  // An independent HTTP/2 implementation, so the server is not only tested
  // against the client written above.
  std::string cmd = *nghttp + " --timeout=10 '" + server_.base_url() +
                    "/?size=50000&seed=3' 2>/dev/null";
  FILE *p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  EXPECT_EQ(pclose(p), 0);
  EXPECT_EQ(out.size(), 50000u);
  EXPECT_TRUE(out == test_body(3, 50000));
  EXPECT_EQ(server_.stats().responses, 1u);
}

} // namespace
} // namespace h2pool_testing
