// HTTP/1.1 failure semantics against the raw server writing exact bytes:
// framing and truncation, the request-smuggling shapes (each refused),
// early closes, slow peers, servers that send more than was asked, oversize
// header sections, interim responses and 100-continue, bodies that must be
// absent, keep-alive reuse and its refusal, pausing, and what is retried.
#include "fault_util.h"
#include "raw_server.h"
#include "self_signed_cert.h"

#include <zlib.h>

#include <atomic>
#include <cstring>
#include <future>

namespace faults {
namespace {

using namespace h2pool_testing;

// What the server saw, shared with the test thread.
struct Seen {
  std::mutex mu;
  std::vector<std::string> requests; // heads (and bodies), in arrival order
  void add(std::string r) {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(std::move(r));
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return requests.size();
  }
  std::string at(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    return i < requests.size() ? requests[i] : std::string();
  }
};

// The value of `name` in a request head (names as h2pool sends them: lower
// case), or "" if absent.
std::string field(const std::string &head, const std::string &name) {
  size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos)
    return {};
  at += name.size() + 4;
  return head.substr(at, head.find("\r\n", at) - at);
}

// Reads one request: its head and, by content-length, its body.
std::optional<std::string> read_request(RawConnection &c, Seen *seen) {
  auto head = c.read_until("\r\n\r\n");
  if (!head)
    return std::nullopt;
  std::string cl = field(*head, "content-length");
  std::string all = *head;
  if (!cl.empty()) {
    auto body = c.read_bytes(std::stoul(cl));
    if (!body)
      return std::nullopt;
    all += *body;
  }
  if (seen)
    seen->add(all);
  return all;
}

// Answers every request on the connection with `response`.
RawServer::Script serve(std::string response, Seen *seen = nullptr) {
  return [response, seen](RawConnection &c) {
    while (read_request(c, seen))
      if (!c.send(response))
        return;
  };
}

// Answers the first request with `response`, then closes.
RawServer::Script answer_and_close(std::string response, Seen *seen = nullptr) {
  return [response, seen](RawConnection &c) {
    if (read_request(c, seen))
      c.send_and_close(response);
  };
}

std::string gzip(const std::string &in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef *>(out.data());
  z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = char('a' + (i * 7 + i / 251) % 26);
  return s;
}

class H1 : public ::testing::Test {
protected:
  void TearDown() override {
    client_.reset();
    if (server_)
      server_->stop();
  }
  // Starts the raw server with `script` and a pool that speaks HTTP/1.1 to
  // it; `tune` adjusts the pool's configuration first.
  void start(RawServer::Script script,
             const std::function<void(h2pool_config *)> &tune = {}) {
    server_ = std::make_unique<RawServer>(std::move(script));
    ASSERT_EQ(server_->start(), 0);
    Config cfg;
    h2pool_config_set_http_version(cfg, H2POOL_HTTP_VERSION_1_1);
    // A backstop: a hang shows as H2POOL_ERR_TIMEOUT, not a stuck test.
    h2pool_config_set_request_timeout_ms(cfg, 10000);
    if (tune)
      tune(cfg);
    client_ = std::make_unique<Client>(cfg.get());
  }
  std::string url(const std::string &path = "/") {
    return server_->base_url() + path;
  }
  // One GET, waited for.
  Call &get(const std::string &path = "/") {
    Call &c = client_->get(url(path));
    EXPECT_TRUE(c.wait()) << "no callback";
    return c;
  }
  Call &expect_code(int code, const std::string &path = "/") {
    Call &c = get(path);
    EXPECT_FALSE(c.ok) << c.describe();
    EXPECT_EQ(c.code, code) << c.describe();
    EXPECT_EQ(c.calls, 1);
    return c;
  }
  uint64_t connections() { return server_->stats().connections; }
  // A Call for a request the test submits itself: it lives as long as the
  // fixture, which destroys the pool first.
  Call &new_call() {
    calls_.push_back(std::make_unique<Call>());
    calls_.back()->submitted = Clock::now();
    return *calls_.back();
  }
  // POST with "expect: 100-continue".
  Call &post_expecting_continue(const std::string &body) {
    Call &c = new_call();
    h2pool_header h = {"expect", 6, "100-continue", 12};
    EXPECT_EQ(h2pool_request(client_->pool(), "POST", url().c_str(), &h, 1,
                             reinterpret_cast<const uint8_t *>(body.data()),
                             body.size(), nullptr, &Call::callback, &c, &c.id),
              H2POOL_OK);
    return c;
  }

  std::deque<std::unique_ptr<Call>> calls_;
  std::unique_ptr<RawServer> server_;
  std::unique_ptr<Client> client_;
};

// --- the ordinary exchange ---------------------------------------------

TEST_F(H1, GetWithContentLengthReportsHttp11AndTheRequestIsWellFormed) {
  Seen seen;
  start(serve("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhello",
              &seen));
  Call &c = get("/p?q=1");
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(c.body, "hello");
  EXPECT_EQ(c.protocol, H2POOL_PROTOCOL_HTTP_1_1);
  EXPECT_EQ(c.reason, "OK");
  EXPECT_EQ(c.stream_id, 0);
  // Names lower-cased, values without surrounding whitespace.
  ASSERT_EQ(c.headers.size(), 2u);
  EXPECT_EQ(c.headers[1].first, "x-a");
  EXPECT_EQ(c.headers[1].second, "b");
  std::string head = seen.at(0);
  EXPECT_EQ(head.rfind("GET /p?q=1 HTTP/1.1\r\nhost: 127.0.0.1:", 0), 0u)
      << head;
  EXPECT_EQ(field(head, "content-length"), ""); // a GET without a body
  EXPECT_EQ(field(head, "transfer-encoding"), "");
}

TEST_F(H1, CallersHostReplacesTheAuthorityAndEmptyPostsSayContentLength0) {
  Seen seen;
  start(serve("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &seen));
  Call &c = new_call();
  h2pool_header h = {"host", 4, "example.test", 12};
  ASSERT_EQ(h2pool_request(client_->pool(), "POST", url("/form").c_str(), &h, 1,
                           nullptr, 0, nullptr, &Call::callback, &c, &c.id),
            H2POOL_OK);
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(c.ok) << c.describe();
  std::string head = seen.at(0);
  EXPECT_EQ(head.rfind("POST /form HTTP/1.1\r\nhost: example.test\r\n", 0), 0u)
      << head;
  EXPECT_EQ(head.find("\r\nhost: ", 20), std::string::npos) << "two hosts";
  EXPECT_EQ(field(head, "content-length"), "0");
}

TEST_F(H1, ChunkedBodyAndTrailersArrive) {
  start(serve("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"));
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.body, "hello world");
  ASSERT_EQ(c.trailers.size(), 1u);
  EXPECT_EQ(c.trailers[0].first, "x-sum");
  EXPECT_EQ(c.trailers[0].second, "42");
}

TEST_F(H1, GzipBodyIsDecoded) {
  std::string plain = pattern(100000);
  std::string z = gzip(plain);
  start(serve("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " +
              std::to_string(z.size()) + "\r\n\r\n" + z));
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.body, plain);
}

TEST_F(H1, Http10ResponseIsReadUntilTheClose) {
  start(answer_and_close("HTTP/1.0 200 Fine\r\n\r\nuntil the end"));
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.body, "until the end");
  EXPECT_EQ(c.protocol, H2POOL_PROTOCOL_HTTP_1_0);
  EXPECT_EQ(c.reason, "Fine");
}

// --- keep-alive ---------------------------------------------------------

TEST_F(H1, KeepAliveCarriesSequentialRequestsOnOneConnection) {
  Seen seen;
  start(serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &seen));
  uint64_t first = 0;
  for (int i = 0; i < 3; ++i) {
    Call &c = get();
    ASSERT_TRUE(c.ok) << c.describe();
    if (i == 0)
      first = c.conn_id;
    EXPECT_EQ(c.conn_id, first);
  }
  EXPECT_EQ(connections(), 1u);
  EXPECT_EQ(seen.count(), 3u);
  EXPECT_EQ(client_->stat(H2POOL_STAT_CONNECTIONS_REUSED), 2u);
}

// RFC 9218 over HTTP/1.1: the priority header only. A change while the
// exchange runs is accepted and sends nothing (there is no frame for it):
// the next request on the connection is the next thing on the wire.
TEST_F(H1, PriorityIsAHeaderAndAChangeInFlightSendsNothing) {
  Seen seen;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  start([&seen, released, ok](RawConnection &c) {
    bool first = true;
    while (read_request(c, &seen)) {
      if (first)
        released.wait_for(kWait);
      first = false;
      if (!c.send(ok))
        return;
    }
  });
  Opts opts;
  ASSERT_EQ(h2pool_request_opts_set_priority(opts, 1, 1), H2POOL_OK);
  Call &a = client_->request(url("/a"), "GET", "", opts);
  ASSERT_TRUE(wait_until([&] { return seen.count() == 1; }));
  ASSERT_EQ(h2pool_request_set_priority(client_->pool(), a.id, 6, 0),
            H2POOL_OK);
  // Loop tasks run in order: once the stats are back, so is the change.
  EXPECT_NE(client_->stat(H2POOL_STAT_STREAMS_ACTIVE), ~uint64_t{0});
  release.set_value();
  ASSERT_TRUE(a.wait());
  ASSERT_TRUE(a.ok) << a.describe();
  Call &b = get("/b");
  ASSERT_TRUE(b.ok) << b.describe();
  EXPECT_EQ(b.conn_id, a.conn_id);
  ASSERT_EQ(seen.count(), 2u);
  EXPECT_EQ(field(seen.at(0), "priority"), "u=1, i");
  EXPECT_EQ(seen.at(1).rfind("GET /b HTTP/1.1\r\n", 0), 0u) << seen.at(1);
  EXPECT_EQ(field(seen.at(1), "priority"), "");
}

TEST_F(H1, ConnectionCloseIsHonoured) {
  start(serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close"
              "\r\n\r\nok"));
  Call &a = get();
  ASSERT_TRUE(a.ok) << a.describe();
  Call &b = get();
  ASSERT_TRUE(b.ok) << b.describe();
  EXPECT_NE(a.conn_id, b.conn_id);
  EXPECT_EQ(connections(), 2u);
}

TEST_F(H1, ServerClosingAnIdleConnectionCostsTheNextRequestNothing) {
  start(answer_and_close("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  Call &a = get();
  ASSERT_TRUE(a.ok) << a.describe();
  // The close is seen on the idle connection, which leaves the pool.
  ASSERT_TRUE(client_->wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                                 [](uint64_t v) { return v == 1; }));
  Call &b = get();
  ASSERT_TRUE(b.ok) << b.describe();
  EXPECT_EQ(connections(), 2u);
  // An idle close is the server's keep-alive policy, not a failure.
  EXPECT_EQ(client_->stat(H2POOL_STAT_CONNECTIONS_FAILED), 0u);
}

TEST_F(H1, QueuedRequestsOpenConnectionsUpToTheCapOneRequestEach) {
  Seen seen;
  RawServer *srv = nullptr;
  // Nothing is answered until four connections are open: the pool must
  // open them for its queue, knowing an HTTP/1.1 connection takes one.
  start(
      [&seen, &srv](RawConnection &c) {
        if (!read_request(c, &seen))
          return;
        srv->wait_for_stats(
            [](const RawServerStats &s) { return s.connections >= 4; }, kWait);
        do {
          if (!c.send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"))
            return;
        } while (read_request(c, &seen));
      },
      [](h2pool_config *cfg) {
        h2pool_config_set_max_connections_per_endpoint(cfg, 4);
      });
  srv = server_.get();
  std::vector<Call *> calls;
  for (int i = 0; i < 12; ++i)
    calls.push_back(&client_->get(url()));
  for (Call *c : calls) {
    ASSERT_TRUE(c->wait());
    EXPECT_TRUE(c->ok) << c->describe();
  }
  EXPECT_EQ(connections(), 4u);
  EXPECT_EQ(seen.count(), 12u);
  EXPECT_EQ(client_->stat(H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION), 1u);
  h2pool_stats *st = nullptr;
  ASSERT_EQ(h2pool_stats_get(client_->pool(), &st), H2POOL_OK);
  EXPECT_EQ(h2pool_stats_endpoint_protocol(st, 0), H2POOL_PROTOCOL_HTTP_1_1);
  h2pool_stats_free(st);
}

// --- bodies that must be absent ------------------------------------------

TEST_F(H1, HeadResponseHasNoBodyWhateverItsContentLength) {
  Seen seen;
  start([&seen](RawConnection &c) {
    if (!read_request(c, &seen) ||
        !c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
      return;
    if (read_request(c, &seen))
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  });
  Call &h = client_->request(url(), "HEAD");
  ASSERT_TRUE(h.wait());
  ASSERT_TRUE(h.ok) << h.describe();
  EXPECT_EQ(h.body, "");
  // The connection is in step: the next response is read as itself.
  Call &g = get();
  ASSERT_TRUE(g.ok) << g.describe();
  EXPECT_EQ(g.body, "abc");
  EXPECT_EQ(g.conn_id, h.conn_id);
}

TEST_F(H1, NoContentAndNotModifiedHaveNoBodyAndKeepTheConnection) {
  int n = 0;
  start([&n](RawConnection &c) {
    while (read_request(c, nullptr)) {
      const char *r = n++ == 0 ? "HTTP/1.1 204 No Content\r\n\r\n"
                               : "HTTP/1.1 304 Not Modified\r\n"
                                 "Content-Length: 5\r\n\r\n";
      if (!c.send(r))
        return;
    }
  });
  Call &a = get();
  ASSERT_TRUE(a.ok) << a.describe();
  EXPECT_EQ(a.status, 204);
  Call &b = get();
  ASSERT_TRUE(b.ok) << b.describe();
  EXPECT_EQ(b.status, 304);
  EXPECT_EQ(b.body, "");
  EXPECT_EQ(a.conn_id, b.conn_id);
}

// --- interim responses and 100-continue --------------------------------

TEST_F(H1, InterimResponsesAreSkipped) {
  start(serve("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(c.body, "ok");
  for (auto &h : c.headers)
    EXPECT_NE(h.first, "link");
}

TEST_F(H1, ExpectContinueSendsTheBodyOnlyAfter100) {
  std::atomic<bool> early_body{false};
  start(
      [&early_body](RawConnection &c) {
        auto head = c.read_until("\r\n\r\n");
        if (!head)
          return;
        // Nothing may follow the head before our 100 (the client waits
        // up to 10 s for it).
        if (c.read_bytes(1, Ms(200)))
          early_body = true;
        if (!c.send("HTTP/1.1 100 Continue\r\n\r\n"))
          return;
        auto body = c.read_bytes(early_body ? 3 : 4);
        if (body)
          c.send("HTTP/1.1 200 OK\r\nContent-Length: " +
                 std::to_string(body->size()) + "\r\n\r\n" + *body);
      },
      [](h2pool_config *cfg) {
        h2pool_config_set_expect_continue_timeout_ms(cfg, 10000);
      });
  Call &c = post_expecting_continue("data");
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_FALSE(early_body);
  EXPECT_EQ(c.body, "data");
}

TEST_F(H1, ExpectContinueSendsTheBodyAfterTheTimeoutWithout100) {
  start(
      [](RawConnection &c) {
        auto head = c.read_until("\r\n\r\n");
        auto body = head ? c.read_bytes(4) : std::nullopt;
        if (body)
          c.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + *body);
      },
      [](h2pool_config *cfg) {
        h2pool_config_set_expect_continue_timeout_ms(cfg, 50);
      });
  Call &c = post_expecting_continue("late");
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.body, "late");
}

TEST_F(H1, FinalResponseBefore100IsTheAnswerAndEndsTheConnection) {
  start(
      [](RawConnection &c) {
        while (c.read_until("\r\n\r\n"))
          if (!c.send("HTTP/1.1 417 Expectation Failed\r\n"
                      "Content-Length: 0\r\n\r\n"))
            return;
      },
      [](h2pool_config *cfg) {
        h2pool_config_set_expect_continue_timeout_ms(cfg, 10000);
      });
  Call &c = post_expecting_continue("data");
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.status, 417);
  // The server may still be waiting for the body: that connection is done.
  Call &d = post_expecting_continue("data");
  ASSERT_TRUE(d.wait());
  EXPECT_NE(d.conn_id, c.conn_id);
}

// --- uploads ------------------------------------------------------------

TEST_F(H1, UploadWithKnownLengthArrivesByteExact) {
  Seen seen;
  std::string body = pattern(1 << 20);
  start(serve("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", &seen));
  Call &c = client_->request(url(), "PUT", body);
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(c.ok) << c.describe();
  std::string got = seen.at(0);
  EXPECT_EQ(field(got, "content-length"), std::to_string(body.size()));
  ASSERT_GT(got.size(), body.size());
  EXPECT_TRUE(got.compare(got.size() - body.size(), body.size(), body) == 0);
}

// A body reader of unknown length: streamed with chunked encoding.
std::string g_source;
size_t g_source_off = 0;
int64_t read_source(uint8_t *buf, size_t len, int *eof, void *) {
  size_t n = std::min(len, std::min<size_t>(g_source.size() - g_source_off,
                                            10000)); // several chunks
  memcpy(buf, g_source.data() + g_source_off, n);
  g_source_off += n;
  *eof = g_source_off == g_source.size();
  return int64_t(n);
}

TEST_F(H1, UploadOfUnknownLengthIsChunked) {
  g_source = pattern(100000);
  g_source_off = 0;
  std::string received;
  std::atomic<bool> framing_ok{true};
  start([&](RawConnection &c) {
    auto head = c.read_until("\r\n\r\n");
    if (!head || field(*head, "transfer-encoding") != "chunked" ||
        !field(*head, "content-length").empty()) {
      framing_ok = false;
      return;
    }
    for (;;) {
      auto line = c.read_until("\r\n");
      if (!line) {
        framing_ok = false;
        return;
      }
      size_t n = std::stoul(*line, nullptr, 16);
      if (n == 0)
        break;
      auto data = c.read_bytes(n + 2);
      if (!data || data->substr(n) != "\r\n") {
        framing_ok = false;
        return;
      }
      received += data->substr(0, n);
    }
    if (c.read_bytes(2) != std::optional<std::string>("\r\n"))
      framing_ok = false;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  });
  Opts opts;
  h2pool_request_opts_set_body_reader(opts, read_source, -1);
  Call &c = new_call();
  ASSERT_EQ(h2pool_request(client_->pool(), "POST", url().c_str(), nullptr, 0,
                           nullptr, 0, opts, &Call::callback, &c, &c.id),
            H2POOL_OK);
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_TRUE(framing_ok);
  EXPECT_EQ(received, g_source);
}

// A streamed upload through a completion queue, ended with trailers: over
// HTTP/1.1 they go in the last chunk; with a declared length they cannot
// go anywhere, and the request says so instead of dropping them.
struct QueuedUpload {
  int code = 1; // of the COMPLETE event
  std::string message;
};

QueuedUpload upload_with_trailer(h2pool *pool, const std::string &url,
                                 int64_t content_length) {
  QueuedUpload out;
  h2pool_queue *q = nullptr;
  EXPECT_EQ(h2pool_queue_create(&q), H2POOL_OK);
  Opts opts;
  h2pool_request_opts_set_queue_upload(opts, 1, content_length);
  uint64_t id = 0;
  EXPECT_EQ(h2pool_queue_request(pool, q, "POST", url.c_str(), nullptr, 0,
                                 nullptr, 0, opts, nullptr, &id),
            H2POOL_OK);
  size_t accepted = 0;
  EXPECT_EQ(
      h2pool_request_write_body(
          pool, id, reinterpret_cast<const uint8_t *>("hello"), 5, &accepted),
      H2POOL_OK);
  EXPECT_EQ(accepted, 5u);
  h2pool_header trailer = {"x-sum", 5, "42", 2};
  EXPECT_EQ(h2pool_request_end_body(pool, id, &trailer, 1), H2POOL_OK);
  for (int turns = 0; turns < 100 && out.code == 1; ++turns) {
    h2pool_event *ev = nullptr;
    int n = h2pool_queue_next(q, &ev, 1, 100);
    if (n != 1)
      continue;
    if (h2pool_event_kind(ev) == H2POOL_EVENT_COMPLETE) {
      const h2pool_error *err = h2pool_event_error(ev);
      out.code = err ? h2pool_error_code(err) : H2POOL_OK;
      out.message = err ? h2pool_error_message(err) : "";
    }
    h2pool_event_free(ev);
  }
  h2pool_queue_shutdown(q);
  h2pool_queue_destroy(q);
  return out;
}

TEST_F(H1, QueuedUploadSendsItsTrailersInTheLastChunk) {
  std::string received;
  std::atomic<bool> framing_ok{false};
  start([&](RawConnection &c) {
    auto head = c.read_until("\r\n\r\n");
    if (!head || field(*head, "transfer-encoding") != "chunked")
      return;
    auto rest = c.read_until("\r\n\r\n"); // to the end of the trailers
    if (!rest)
      return;
    received = *rest;
    framing_ok = true;
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  });
  QueuedUpload r = upload_with_trailer(client_->pool(), url(), -1);
  EXPECT_EQ(r.code, H2POOL_OK) << r.message;
  EXPECT_TRUE(framing_ok);
  EXPECT_EQ(received, "5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n");
}

TEST_F(H1, QueuedUploadWithALengthCannotCarryTrailers) {
  start([](RawConnection &c) {
    if (auto head = c.read_until("\r\n\r\n"))
      c.read_bytes(5); // then the client gives up on the request
    c.wait_closed(Ms(5000));
  });
  QueuedUpload r = upload_with_trailer(client_->pool(), url(), 5);
  EXPECT_EQ(r.code, H2POOL_ERR_INVALID_HEADER) << r.message;
  EXPECT_NE(r.message.find("trailers"), std::string::npos) << r.message;
}

// --- truncation and early closes ---------------------------------------

TEST_F(H1, BodyShorterThanContentLengthIsIncomplete) {
  start(answer_and_close("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"));
  expect_code(H2POOL_ERR_INCOMPLETE_RESPONSE);
}

TEST_F(H1, ChunkedBodyWithoutItsLastChunkIsIncomplete) {
  start(answer_and_close("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         "\r\n5\r\nhello\r\n"));
  expect_code(H2POOL_ERR_INCOMPLETE_RESPONSE);
}

TEST_F(H1, CloseInsideTheHeaderSectionIsIncomplete) {
  start(answer_and_close("HTTP/1.1 200 OK\r\nContent-Le"));
  expect_code(H2POOL_ERR_INCOMPLETE_RESPONSE);
}

TEST_F(H1, CloseBeforeAnyResponseByteIsConnectionLost) {
  start(answer_and_close(""));
  expect_code(H2POOL_ERR_CONNECTION_LOST);
}

TEST_F(H1, ResetMidBodyIsIncomplete) {
  start([](RawConnection &c) {
    if (read_request(c, nullptr) &&
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
      c.reset();
  });
  expect_code(H2POOL_ERR_INCOMPLETE_RESPONSE);
}

// --- retries (RFC 9110 section 9.2.2) -----------------------------------

// The first connection takes the request and closes without a byte; the
// second answers.
RawServer::Script first_drops(Seen *seen) {
  auto n = std::make_shared<std::atomic<int>>(0);
  return [n, seen](RawConnection &c) {
    if (n->fetch_add(1) == 0) {
      if (read_request(c, seen))
        c.close();
      return;
    }
    while (read_request(c, seen))
      if (!c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        return;
  };
}

TEST_F(H1, IdempotentRequestIsRetriedWhenEnabledAndNothingArrived) {
  Seen seen;
  start(first_drops(&seen),
        [](h2pool_config *cfg) { h2pool_config_set_retry_idempotent(cfg, 1); });
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(seen.count(), 2u);
  EXPECT_EQ(client_->stat(H2POOL_STAT_REQUESTS_RETRIED), 1u);
}

TEST_F(H1, NothingIsRetriedUnlessEnabled) {
  Seen seen;
  start(first_drops(&seen));
  expect_code(H2POOL_ERR_CONNECTION_LOST);
  EXPECT_EQ(seen.count(), 1u);
}

TEST_F(H1, PostIsNotRetriedEvenWhenEnabled) {
  Seen seen;
  start(first_drops(&seen),
        [](h2pool_config *cfg) { h2pool_config_set_retry_idempotent(cfg, 1); });
  Call &c = client_->request(url(), "POST", "x");
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.code, H2POOL_ERR_CONNECTION_LOST) << c.describe();
  EXPECT_EQ(seen.count(), 1u);
}

TEST_F(H1, RequestIsNotRetriedOnceTheResponseBegan) {
  Seen seen;
  auto n = std::make_shared<std::atomic<int>>(0);
  start(
      [n, &seen](RawConnection &c) {
        if (read_request(c, &seen) && n->fetch_add(1) == 0)
          c.send_and_close("HTTP/1.1 200");
        else
          c.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      },
      [](h2pool_config *cfg) { h2pool_config_set_retry_idempotent(cfg, 1); });
  expect_code(H2POOL_ERR_INCOMPLETE_RESPONSE);
  EXPECT_EQ(seen.count(), 1u);
}

// --- slow peers ---------------------------------------------------------

TEST_F(H1, SilentServerHitsTheResponseHeaderTimeout) {
  start(
      [](RawConnection &c) {
        read_request(c, nullptr);
        c.wait_closed(kWait);
      },
      [](h2pool_config *cfg) {
        h2pool_config_set_response_header_timeout_ms(cfg, 100);
      });
  expect_code(H2POOL_ERR_RESPONSE_HEADERS_TIMEOUT);
  // The exchange cannot be abandoned on a live HTTP/1.1 connection.
  ASSERT_TRUE(client_->wait_stat(H2POOL_STAT_CONNECTIONS_OPEN,
                                 [](uint64_t v) { return v == 0; }));
}

TEST_F(H1, TricklingBodyHitsTheRequestTimeout) {
  start(
      [](RawConnection &c) {
        if (!read_request(c, nullptr) ||
            !c.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
          return;
        for (int i = 0; i < 1000 && c.send("x"); ++i)
          std::this_thread::sleep_for(20ms); // a slow peer, not a wait
      },
      [](h2pool_config *cfg) {
        h2pool_config_set_request_timeout_ms(cfg, 200);
      });
  Call &c = expect_code(H2POOL_ERR_TIMEOUT);
  EXPECT_LT(c.elapsed(), 5s);
}

// --- more than was asked for -------------------------------------------

TEST_F(H1, BytesBeyondTheResponseEndTheConnectionNotTheRequest) {
  // A pipelining (or broken) server: a second response nobody asked for.
  start(serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
              "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"));
  Call &a = get();
  ASSERT_TRUE(a.ok) << a.describe();
  EXPECT_EQ(a.body, "ok");
  Call &b = get();
  ASSERT_TRUE(b.ok) << b.describe();
  EXPECT_EQ(b.body, "ok");
  EXPECT_NE(a.conn_id, b.conn_id);
}

TEST_F(H1, UnsolicitedBytesOnAnIdleConnectionCloseIt) {
  start([](RawConnection &c) {
    if (!read_request(c, nullptr) ||
        !c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
      return;
    c.send("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n");
    c.wait_closed(kWait);
  });
  Call &a = get();
  ASSERT_TRUE(a.ok) << a.describe();
  ASSERT_TRUE(client_->wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                                 [](uint64_t v) { return v == 1; }));
}

// --- oversize and malformed ---------------------------------------------

TEST_F(H1, HeaderSectionBeyondTheConfiguredLimitIsRefused) {
  start(serve("HTTP/1.1 200 OK\r\nX-Big: " + std::string(2000, 'a') +
              "\r\nContent-Length: 0\r\n\r\n"),
        [](h2pool_config *cfg) {
          h2pool_config_set_max_response_headers(cfg, 1024, 100);
        });
  expect_code(H2POOL_ERR_HEADER_SECTION_TOO_LARGE);
}

TEST_F(H1, TooManyHeaderFieldsAreRefused) {
  std::string many;
  for (int i = 0; i < 20; ++i)
    many += "X-" + std::to_string(i) + ": v\r\n";
  start(serve("HTTP/1.1 200 OK\r\n" + many + "Content-Length: 0\r\n\r\n"),
        [](h2pool_config *cfg) {
          h2pool_config_set_max_response_headers(cfg, 100000, 10);
        });
  expect_code(H2POOL_ERR_HEADER_SECTION_TOO_LARGE);
}

TEST_F(H1, HeaderSectionBeyondTheParsersBoundIsRefused) {
  start(serve("HTTP/1.1 200 OK\r\nX-Big: " + std::string(100 << 10, 'a') +
              "\r\nContent-Length: 0\r\n\r\n"));
  expect_code(H2POOL_ERR_HEADER_SECTION_TOO_LARGE);
}

TEST_F(H1, EndlessHeaderSectionIsRefusedWithBoundedMemory) {
  start([](RawConnection &c) {
    if (!read_request(c, nullptr) || !c.send("HTTP/1.1 200 OK\r\n"))
      return;
    c.flood("X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 64 << 20,
            kWait);
  });
  uint64_t before = rss_bytes();
  expect_code(H2POOL_ERR_HEADER_SECTION_TOO_LARGE);
  EXPECT_LT(rss_bytes(), before + (32u << 20));
}

struct Malformed {
  const char *name;
  const char *response;
};

class H1Malformed : public H1,
                    public ::testing::WithParamInterface<Malformed> {};

TEST_P(H1Malformed, IsRefusedAndTheConnectionClosed) {
  start(serve(GetParam().response));
  Call &c = expect_code(H2POOL_ERR_MALFORMED_RESPONSE);
  EXPECT_FALSE(c.has_resp && c.ok);
  ASSERT_TRUE(client_->wait_stat(H2POOL_STAT_CONNECTIONS_OPEN,
                                 [](uint64_t v) { return v == 0; }));
}

const Malformed kMalformed[] = {
    // Status lines.
    {"StatusOfFourDigits", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
    {"StatusNotANumber", "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"},
    {"StatusBelow100", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"},
    {"NotHttpAtAll", "SSH-2.0-OpenSSH_9.2\r\n\r\n"},
    {"HttpVersion2OnAStatusLine",
     "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
    {"SwitchingProtocolsUnasked",
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
     "Connection: upgrade\r\n\r\n"},
    // Smuggling: lengths an intermediary could read differently.
    {"DuplicateEqualContentLength",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
    {"ConflictingContentLength",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"},
    {"ContentLengthList", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"},
    {"NegativeContentLength",
     "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok"},
    {"ContentLengthWithChunked",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked"
     "\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
    {"ChunkedWithContentLength",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2"
     "\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
    {"ChunkedNotLast",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok"},
    {"CodingBeforeChunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     "2\r\nok\r\n0\r\n\r\n"},
    {"ChunkedTwice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
    {"IdentityCoding",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok"},
    {"SpaceBeforeColon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"},
    // Line ends and folding.
    {"BareLfEverywhere", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
    {"BareLfInOneField",
     "HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 2\r\n\r\nok"},
    {"BareLfEndingTheHead", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok"},
    {"CrWithoutLfEndingTheHead",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rXok"},
    {"ObsFold",
     "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"},
    {"WhitespaceBeforeFirstField",
     "HTTP/1.1 200 OK\r\n Content-Length: 2\r\n\r\nok"},
    {"ControlCharacterInValue",
     "HTTP/1.1 200 OK\r\nX-A: a\x01z\r\nContent-Length: 2\r\n\r\nok"},
    // Chunked framing.
    {"BadChunkSize",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n"},
    {"HugeChunkSize", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "fffffffffffffffffff\r\nok\r\n"},
    {"ChunkLongerThanDeclared",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\r\nokXY\r\n0\r\n\r\n"},
    {"ChunkDataEndingInBareLf",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\r\nok\n0\r\n\r\n"},
    {"ChunkSizeLineWithCrWithoutLf",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\rXok\r\n0\r\n\r\n"},
    {"ChunkExtensionWithBareLf",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2;a\nb\r\nok\r\n0\r\n\r\n"},
    {"TrailerWithBareLf",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\r\nok\r\n0\r\nX-T: v\n\r\n"},
    {"TrailerFolded", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\nok\r\n0\r\nX-T: v\r\n w\r\n\r\n"},
};

INSTANTIATE_TEST_SUITE_P(Shapes, H1Malformed, ::testing::ValuesIn(kMalformed),
                         [](const ::testing::TestParamInfo<Malformed> &i) {
                           return std::string(i.param.name);
                         });

// --- streaming: pause stops reading the socket ---------------------------

// What the paused download saw (its callbacks run on the loop thread).
struct Streamed {
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> paused{false};
  bool pause_once = true;
  std::atomic<uint64_t> checksum{0};
};

Streamed g_streamed;
int on_data_pause_first(const uint8_t *data, size_t len, void *) {
  uint64_t sum = g_streamed.checksum;
  for (size_t i = 0; i < len; ++i)
    sum = sum * 31 + data[i];
  g_streamed.checksum = sum;
  g_streamed.bytes += len;
  if (g_streamed.pause_once) {
    g_streamed.pause_once = false;
    g_streamed.paused = true;
    return H2POOL_DATA_PAUSE;
  }
  return 0;
}

TEST_F(H1, PausedResponseStopsReadingUntilResumed) {
  // More than loopback's socket buffers hold (a few MiB each way), so a
  // client that kept reading while paused would let the server finish.
  constexpr uint64_t kTotal = 32ull << 20;
  g_streamed.bytes = 0;
  g_streamed.paused = false;
  g_streamed.pause_once = true;
  g_streamed.checksum = 0;
  std::atomic<uint64_t> flooded{0};
  std::atomic<bool> flood_done{false};
  std::string chunk = pattern(1 << 16);
  start(
      [&](RawConnection &c) {
        if (!read_request(c, nullptr) ||
            !c.send("HTTP/1.1 200 OK\r\nContent-Length: " +
                    std::to_string(kTotal) + "\r\n\r\n"))
          return;
        // Until the socket buffers are full: the paused client reads nothing.
        std::string body;
        body.reserve(kTotal);
        while (body.size() < kTotal)
          body += chunk; // kTotal is a multiple of the chunk size
        flooded = c.send_counted(body, Ms(500));
        flood_done = true;
        c.send(std::string_view(body).substr(flooded), kWait);
      },
      [](h2pool_config *cfg) {
        // Sanitizer builds move 32 MiB slowly.
        h2pool_config_set_request_timeout_ms(cfg, 120000);
      });
  Opts opts;
  h2pool_request_opts_set_on_data(opts, on_data_pause_first);
  Call &c = client_->request(url(), "GET", "", opts);
  auto deadline = Clock::now() + kWait;
  while (!flood_done && Clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(flood_done);
  ASSERT_TRUE(g_streamed.paused);
  EXPECT_LT(flooded.load(), kTotal) << "the paused client kept reading";
  uint64_t held = g_streamed.bytes;
  EXPECT_LT(held, flooded.load());
  ASSERT_EQ(h2pool_request_resume_download(client_->pool(), c.id), H2POOL_OK);
  ASSERT_TRUE(c.wait(120s));
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(g_streamed.bytes, kTotal);
  // The same bytes, in order: the checksum of what was sent.
  uint64_t want = 0;
  for (uint64_t i = 0; i < kTotal; ++i)
    want = want * 31 + uint8_t(chunk[size_t(i % chunk.size())]);
  EXPECT_EQ(g_streamed.checksum, want);
}

// --- cancel -------------------------------------------------------------

TEST_F(H1, CancelMidResponseClosesTheConnection) {
  std::atomic<bool> closed{false};
  start([&](RawConnection &c) {
    if (read_request(c, nullptr) &&
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npart"))
      closed = c.wait_closed(kWait);
  });
  Call &c = client_->get(url());
  ASSERT_TRUE(server_->wait_for_stats(
      [](const RawServerStats &s) { return s.connections == 1; }, kWait));
  // Cancel once the response has begun (the server has sent part of it).
  ASSERT_TRUE(client_->wait_stat(H2POOL_STAT_STREAMS_ACTIVE,
                                 [](uint64_t v) { return v == 1; }));
  ASSERT_EQ(h2pool_cancel(client_->pool(), c.id), H2POOL_OK);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.code, H2POOL_ERR_CANCELLED) << c.describe();
  ASSERT_TRUE(server_->wait_for_stats(
      [](const RawServerStats &s) { return s.connections_closed == 1; },
      kWait));
  EXPECT_TRUE(closed);
  // A cancel is not a failed connection: no backoff for the next request.
  EXPECT_EQ(client_->stat(H2POOL_STAT_CONNECTIONS_FAILED), 0u);
}

// --- over TLS ------------------------------------------------------------

class H1Tls : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(cert_.ok()); }
  void TearDown() override {
    client_.reset();
    if (server_)
      server_->stop();
  }
  // A TLS raw server selecting http/1.1 in ALPN, and a pool with the
  // default version (offering h2 and http/1.1) that trusts it.
  void start(RawServer::Script script) {
    RawTlsOptions tls;
    tls.cert_file = cert_.cert_file();
    tls.key_file = cert_.key_file();
    tls.alpn = "http/1.1";
    server_ = std::make_unique<RawServer>(std::move(script), tls);
    ASSERT_EQ(server_->start(), 0);
    Config cfg;
    h2pool_config_set_tls_ca_file(cfg, cert_.cert_file().c_str());
    h2pool_config_set_request_timeout_ms(cfg, 10000);
    client_ = std::make_unique<Client>(cfg.get());
  }
  Call &get() {
    Call &c = client_->get(
        "https://127.0.0.1:" + std::to_string(server_->port()) + "/");
    EXPECT_TRUE(c.wait());
    return c;
  }

  SelfSignedCert cert_;
  std::unique_ptr<RawServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(H1Tls, ServerSelectingHttp11IsSpokenToInHttp11) {
  start(serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.body, "ok");
  EXPECT_EQ(c.protocol, H2POOL_PROTOCOL_HTTP_1_1);
  h2pool_stats *st = nullptr;
  ASSERT_EQ(h2pool_stats_get(client_->pool(), &st), H2POOL_OK);
  EXPECT_EQ(h2pool_stats_endpoint_protocol(st, 0), H2POOL_PROTOCOL_HTTP_1_1);
  h2pool_stats_free(st);
}

TEST_F(H1Tls, CloseDelimitedBodyEndsWithCloseNotify) {
  start([](RawConnection &c) {
    if (read_request(c, nullptr) && c.send("HTTP/1.0 200 OK\r\n\r\nall"))
      c.close(); // close_notify, then FIN
  });
  Call &c = get();
  ASSERT_TRUE(c.ok) << c.describe();
  EXPECT_EQ(c.body, "all");
}

TEST_F(H1Tls, CloseDelimitedBodyCutWithoutCloseNotifyIsIncomplete) {
  // Anyone on the path can send a FIN; only close_notify is the server's.
  start([](RawConnection &c) {
    if (read_request(c, nullptr) && c.send("HTTP/1.0 200 OK\r\n\r\ncut"))
      c.close_without_notify();
  });
  Call &c = get();
  EXPECT_EQ(c.code, H2POOL_ERR_INCOMPLETE_RESPONSE) << c.describe();
}

} // namespace
} // namespace faults
