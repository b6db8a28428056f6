// Failure paths: what the pool does when connections fail in the ways real
// servers and networks make them fail. Each test is named for the
// behaviour it proves; each one failed before the pool kept endpoint and
// connection state explicitly (see src/endpoint.h, src/connection.h).
#include "fault_util.h"
#include "raw_server.h"
#include "test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <set>

namespace faults {
namespace {

using namespace h2pool_testing::h2frame;
using h2pool_testing::ConnectionScript;
using h2pool_testing::RawConnection;
using h2pool_testing::RawServer;
using h2pool_testing::ServerOptions;
using h2pool_testing::ServerStats;
using h2pool_testing::test_body;
using h2pool_testing::TestServer;

#define WAIT_DONE(call) ASSERT_TRUE((call).wait()) << "no callback in time"

// Backoffs short enough for tests, long enough to be seen.
void fast_backoff(const Config &cfg) {
  h2pool_config_set_reconnect_backoff(cfg, 20, 200);
  h2pool_config_set_retry_backoff(cfg, 2, 20);
}

// The number of callbacks a Call has seen so far (it is written on the loop
// thread).
int calls_of(Call &call) {
  std::lock_guard<std::mutex> lock(call.mu);
  return call.calls;
}

// A completion callback for request state `T` whose Call member is `call`:
// the streaming callbacks and the completion share one user_data.
template <typename T>
void complete_into(const h2pool_response *resp, const h2pool_error *err,
                   void *user_data) {
  Call::callback(resp, err, &static_cast<T *>(user_data)->call);
}

uint64_t endpoint_count(h2pool *pool) {
  h2pool_stats *s = nullptr;
  if (h2pool_stats_get(pool, &s) != H2POOL_OK)
    return ~uint64_t{0};
  uint64_t n = h2pool_stats_endpoint_count(s);
  h2pool_stats_free(s);
  return n;
}

// ---------------------------------------------------------------------------
// 1. An endpoint never wedges: a connection that failed during setup while
// another was ready leaves nothing behind that stops the next connection.

TEST(FailurePaths,
     EndpointRecoversWhenItsReadyConnectionDiesAfterAFailedSetup) {
  ServerOptions options;
  options.max_concurrent_streams = 1; // the second request needs a second
  // connection; that one never sends SETTINGS, so its setup fails.
  options.connection_script = [](uint64_t id) {
    ConnectionScript s;
    s.send_settings = id != 2;
    return s;
  };
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  h2pool_config_set_max_connections_per_endpoint(cfg, 2);
  h2pool_config_set_settings_timeout_ms(cfg, 100);
  fast_backoff(cfg);
  Client c(cfg.get());
  // On connection 1: held for a while, then the connection is reset.
  Call &victim = c.get(server.base_url() +
                       "/?fault_at=before&fault_delay_ms=1500&drop=reset&"
                       "fault_conn=1");
  ASSERT_TRUE(server.wait_for_stats(
      [](const ServerStats &s) { return s.requests >= 1; }, kWait));
  // Waits for the one stream slot; a second connection is opened for it
  // and fails its setup while connection 1 is still ready.
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_timeout_ms(opts, 10000);
  Call &queued =
      c.request(server.base_url() + "/?size=77&seed=7", "GET", "", opts);
  h2pool_request_opts_free(opts);
  ASSERT_TRUE(c.wait_stat(H2POOL_STAT_CONNECTIONS_FAILED,
                          [](uint64_t v) { return v >= 1; }));
  ASSERT_EQ(calls_of(victim), 0) << "the premise needs connection 1 alive here";
  WAIT_DONE(victim);
  EXPECT_EQ(victim.code, H2POOL_ERR_CONNECTION_LOST) << victim.describe();
  // Connection 1 is gone too: the endpoint must open a third connection
  // (after its backoff) rather than wait on a flag nobody clears.
  WAIT_DONE(queued);
  ASSERT_TRUE(queued.ok) << queued.describe();
  EXPECT_EQ(queued.body, test_body(7, 77));
  Call &later = c.get(server.base_url() + "/?size=5&seed=5");
  WAIT_DONE(later);
  ASSERT_TRUE(later.ok) << later.describe();
  EXPECT_EQ(server.stats().connections_accepted, 3u);
}

// ---------------------------------------------------------------------------
// 2. No reconnect storm: a connection that becomes ready and dies before it
// serves counts as an attempt, reconnects back off, and the error says
// what the server did.

struct AfterSettings {
  const char *name;
  std::string bytes; // sent right after the server's SETTINGS
  int code;          // the error the request must end with
};

class DiesAfterSettings : public ::testing::TestWithParam<AfterSettings> {};

TEST_P(DiesAfterSettings, CountsAsAnAttemptAndBacksOffInsteadOfReconnecting) {
  const AfterSettings &p = GetParam();
  std::string bytes = p.bytes;
  RawServer server([bytes](RawConnection &conn) {
    // One write: the client reads the SETTINGS and what follows them
    // together, before it could place the request.
    if (conn.send(settings({{0x3, 100}}) + settings_ack() + bytes))
      conn.wait_closed(Ms(5000));
  });
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  fast_backoff(cfg);
  // Backs up the test: were the pool to reconnect forever, the request
  // would end by its deadline instead.
  h2pool_config_set_request_timeout_ms(cfg, 10000);
  Client c(cfg.get());
  auto start = Clock::now();
  Call &call = c.get(server.base_url() + "/");
  WAIT_DONE(call);
  Ms took = std::chrono::duration_cast<Ms>(Clock::now() - start);
  uint64_t connections = server.stats().connections;
  std::printf("%s: %s after %lld ms, %llu connections\n", p.name,
              call.describe().c_str(), (long long)took.count(),
              (unsigned long long)connections);
  EXPECT_EQ(call.code, p.code) << call.describe();
  // Default max_retries (3): the first connection and three more.
  EXPECT_EQ(connections, 4u);
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_FAILED), 4u);
  // Three backoffs of at least 10, 20 and 40 ms (half of 20, 40, 80).
  EXPECT_GE(took, Ms(70));
}

const AfterSettings kAfterSettings[] = {
    {"GoawayLastStream0", goaway(0, 0x2, "shedding"), H2POOL_ERR_GOAWAY},
    {"GoawayNoError", goaway(0, 0x0), H2POOL_ERR_GOAWAY},
    {"SettingsAckWithPayload",
     frame(kSettings, kAck, 0, std::string("\0\3\0\0\0\1", 6)),
     H2POOL_ERR_PROTOCOL},
    {"PingOfLength7", frame(kPing, 0, 0, "1234567"), H2POOL_ERR_PROTOCOL},
    {"DataOnStream0", frame(kData, 0, 0, "oops"), H2POOL_ERR_PROTOCOL},
};

INSTANTIATE_TEST_SUITE_P(Server, DiesAfterSettings,
                         ::testing::ValuesIn(kAfterSettings),
                         [](const auto &info) { return info.param.name; });

TEST(FailurePaths, ManyRequestsToAServerThatAlwaysGoesAwayCostFourConnections) {
  // The first connection answers only once all 100 requests wait in the
  // pool: submission is asynchronous, and a request that reached the pool
  // after the first GOAWAY would rightly be owed a fourth retry of its own.
  std::promise<void> all_queued;
  std::shared_future<void> queued = all_queued.get_future().share();
  RawServer server([queued](RawConnection &conn) {
    if (queued.wait_for(Ms(5000)) != std::future_status::ready)
      return;
    if (conn.send(settings({{0x3, 100}}) + settings_ack() +
                  goaway(0, 0xb /* ENHANCE_YOUR_CALM */, "go away")))
      conn.wait_closed(Ms(5000));
  });
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  fast_backoff(cfg);
  h2pool_config_set_request_timeout_ms(cfg, 10000);
  Client c(cfg.get());
  std::vector<Call *> calls;
  for (int i = 0; i < 100; ++i)
    calls.push_back(&c.get(server.base_url() + "/" + std::to_string(i)));
  bool waiting = c.wait_stat(H2POOL_STAT_REQUESTS_QUEUED,
                             [](uint64_t n) { return n == 100; });
  all_queued.set_value();
  ASSERT_TRUE(waiting);
  for (Call *call : calls) {
    WAIT_DONE(*call);
    EXPECT_EQ(call->code, H2POOL_ERR_GOAWAY) << call->describe();
    EXPECT_EQ(call->http2_code, 0xb) << call->describe();
  }
  EXPECT_EQ(server.stats().connections, 4u);
  EXPECT_NE(calls[0]->message.find("go away"), std::string::npos)
      << calls[0]->describe();
}

// ---------------------------------------------------------------------------
// 3. A request whose response has begun is never retried: GOAWAY with a
// last stream id below it does not make it go again.

class BegunResponse : public ::testing::TestWithParam<const char *> {};

TEST_P(BegunResponse, IsNeverRetriedAfterAGoawayBelowItsStream) {
  const std::string method = GetParam();
  std::atomic<int> connections{0};
  RawServer server([&connections](RawConnection &conn) {
    int n = ++connections;
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    uint32_t sid = conn.wait_request();
    if (sid == 0)
      return;
    std::string second = n == 1 ? "FIRST" : "SECOND";
    conn.send(headers(sid, hpack_status(200), kEndHeaders) + data(sid, second) +
              goaway(0, 0x0, "restarting"));
    conn.wait_closed(Ms(5000));
  });
  ASSERT_EQ(server.start(), 0);
  struct Seen {
    std::atomic<int> headers{0};
    std::mutex mu;
    std::string body;
    Call call;
  } seen;
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_on_headers(opts,
                                     [](const h2pool_response *, void *ud) {
                                       ++static_cast<Seen *>(ud)->headers;
                                       return 0;
                                     });
  h2pool_request_opts_set_on_data(
      opts, [](const uint8_t *d, size_t n, void *ud) {
        auto s = static_cast<Seen *>(ud);
        std::lock_guard<std::mutex> lock(s->mu);
        s->body.append(reinterpret_cast<const char *>(d), n);
        return 0;
      });
  Config cfg;
  fast_backoff(cfg);
  h2pool *pool = nullptr;
  ASSERT_EQ(h2pool_create(cfg, &pool), H2POOL_OK);
  std::string url = server.base_url() + "/stream";
  const std::string body = "payload";
  ASSERT_EQ(h2pool_request(pool, method.c_str(), url.c_str(), nullptr, 0,
                           reinterpret_cast<const uint8_t *>(body.data()),
                           method == "POST" ? body.size() : 0, opts,
                           &complete_into<Seen>, &seen, nullptr),
            H2POOL_OK);
  h2pool_request_opts_free(opts);
  bool done = seen.call.wait();
  h2pool_destroy(pool);
  ASSERT_TRUE(done);
  EXPECT_FALSE(seen.call.ok);
  EXPECT_EQ(seen.call.code, H2POOL_ERR_GOAWAY) << seen.call.describe();
  EXPECT_EQ(seen.call.goaway_last, 0) << seen.call.describe();
  EXPECT_NE(seen.call.message.find("restarting"), std::string::npos)
      << seen.call.describe();
  EXPECT_EQ(seen.headers.load(), 1);
  EXPECT_EQ(seen.body, "FIRST");
  EXPECT_EQ(connections.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Method, BegunResponse,
                         ::testing::Values("GET", "POST"));

// ---------------------------------------------------------------------------
// 6. Paused downloads hold back their own streams only.

TEST(FailurePaths, PausedDownloadsDoNotStallTheirConnectionsOtherStreams) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  // One connection; four paused streams could fill its window 4 times.
  h2pool_config_set_max_connections_per_endpoint(cfg, 1);
  h2pool_config_set_flow_control_windows(cfg, 256 << 10, 1 << 20);
  Client c(cfg.get());
  struct Paused {
    std::atomic<uint64_t> bytes{0};
    Call call;
  } paused[4];
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_on_data(opts,
                                  [](const uint8_t *, size_t n, void *ud) {
                                    static_cast<Paused *>(ud)->bytes += n;
                                    return H2POOL_DATA_PAUSE;
                                  });
  std::string big = server.base_url() + "/?size=4194304&seed=1";
  for (Paused &p : paused)
    ASSERT_EQ(h2pool_request(c.pool(), "GET", big.c_str(), nullptr, 0, nullptr,
                             0, opts, &complete_into<Paused>, &p, &p.call.id),
              H2POOL_OK);
  h2pool_request_opts_free(opts);
  // Each paused stream has had its first chunk; the server has sent what
  // the stream windows allow.
  ASSERT_TRUE(wait_until([&] {
    for (Paused &p : paused)
      if (p.bytes.load() == 0)
        return false;
    return true;
  })) << paused[0].bytes
      << " " << paused[1].bytes << " " << paused[2].bytes << " "
      << paused[3].bytes;
  Call &other = c.get(server.base_url() + "/?size=3000000&seed=2");
  WAIT_DONE(other);
  ASSERT_TRUE(other.ok) << other.describe();
  EXPECT_EQ(other.body, test_body(2, 3000000));
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_CREATED), 1u);
  for (Paused &p : paused)
    EXPECT_EQ(calls_of(p.call), 0) << "a paused download ended early";
  c.destroy(); // before `paused`, which its callbacks write to
}

// A resumed download is handed what was held back in pieces no larger than
// a DATA frame, so a caller that pauses again holds one more piece, not the
// whole stream window: that is what lets a binding bound its buffer.
TEST(FailurePaths, ResumedDownloadDeliversHeldBytesInFrameSizedPieces) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  h2pool_config_set_flow_control_windows(cfg, 256 << 10, 1 << 20);
  Client c(cfg.get());
  struct Reader {
    std::mutex mu;
    std::string body;
    size_t pieces = 0;
    size_t largest = 0;
    Call call;
  } reader;
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_on_data(
      opts, [](const uint8_t *p, size_t n, void *ud) {
        auto r = static_cast<Reader *>(ud);
        std::lock_guard<std::mutex> lock(r->mu);
        r->body.append(reinterpret_cast<const char *>(p), n);
        ++r->pieces;
        r->largest = std::max(r->largest, n);
        return H2POOL_DATA_PAUSE; // one piece per resume
      });
  constexpr size_t kSize = 200000; // fits the stream window: all of it held
  std::string url = server.base_url() + "/?size=200000&seed=3";
  uint64_t id = 0;
  ASSERT_EQ(h2pool_request(c.pool(), "GET", url.c_str(), nullptr, 0, nullptr, 0,
                           opts, &complete_into<Reader>, &reader, &id),
            H2POOL_OK);
  h2pool_request_opts_free(opts);
  auto pieces = [&] {
    std::lock_guard<std::mutex> lock(reader.mu);
    return reader.pieces;
  };
  ASSERT_TRUE(wait_until([&] { return pieces() == 1; }));
  // Paused after the first piece: the server still sends the rest.
  ASSERT_TRUE(server.wait_for_stats(
      [](const ServerStats &st) { return st.responses == 1; }, kWait));
  for (size_t seen = 1; calls_of(reader.call) == 0 && seen <= kSize; ++seen) {
    ASSERT_TRUE(wait_until([&] { return pieces() >= seen; }));
    ASSERT_EQ(h2pool_request_resume_download(c.pool(), id), H2POOL_OK);
    ASSERT_TRUE(wait_until(
        [&] { return pieces() > seen || calls_of(reader.call) > 0; }));
  }
  WAIT_DONE(reader.call);
  c.destroy(); // before `reader`, which its callbacks still touch
  EXPECT_TRUE(reader.call.ok) << reader.call.describe();
  std::lock_guard<std::mutex> lock(reader.mu);
  EXPECT_EQ(reader.body, test_body(3, kSize));
  EXPECT_LE(reader.largest, 16384u);
  EXPECT_GE(reader.pieces, kSize / 16384);
}

// ---------------------------------------------------------------------------
// 9. Unused endpoints are forgotten: memory is bounded by what is in use.

// Ports on 127.0.0.1 that refuse connections for as long as this lives: each
// is bound but not listening, so the kernel answers a connect with RST, and
// no other test running in parallel can start a server on it.
class RefusingPorts {
public:
  explicit RefusingPorts(size_t n) {
    while (fds_.size() < n) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        return;
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof sin;
      if (bind(fd, reinterpret_cast<sockaddr *>(&sin), len) != 0 ||
          getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len) != 0) {
        close(fd);
        return;
      }
      fds_.push_back(fd);
      ports_.push_back(ntohs(sin.sin_port));
    }
  }
  ~RefusingPorts() {
    for (int fd : fds_)
      close(fd);
  }
  RefusingPorts(const RefusingPorts &) = delete;
  RefusingPorts &operator=(const RefusingPorts &) = delete;
  const std::vector<uint16_t> &ports() const { return ports_; }

private:
  std::vector<int> fds_;
  std::vector<uint16_t> ports_;
};

// How many endpoints the eviction test can afford: a reserved port and a
// connection each, within the file descriptor limit.
size_t endpoints_within_fd_limit(size_t wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 200;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur == RLIM_INFINITY)
    return wanted;
  size_t room = lim.rlim_cur > 256 ? size_t((lim.rlim_cur - 256) / 2) : 0;
  return std::min(wanted, std::max<size_t>(room, 100));
}

TEST(FailurePaths, UnusedEndpointsAreEvictedAfterTheIdleTimeout) {
  Config cfg;
  h2pool_config_set_idle_timeout_ms(cfg, 100);
  h2pool_config_set_reconnect_backoff(cfg, 10, 20);
  Client c(cfg.get());
  RefusingPorts refusing(endpoints_within_fd_limit(2000));
  const size_t n = refusing.ports().size();
  ASSERT_GE(n, 100u);
  std::vector<Call *> calls;
  for (uint16_t port : refusing.ports())
    calls.push_back(&c.get("http://127.0.0.1:" + std::to_string(port) + "/"));
  for (Call *call : calls)
    WAIT_DONE(*call);
  for (Call *call : calls)
    EXPECT_FALSE(call->ok);
  EXPECT_GE(endpoint_count(c.pool()), 1u); // they were there
  ASSERT_TRUE(wait_until([&] { return endpoint_count(c.pool()) == 0; }))
      << endpoint_count(c.pool()) << " endpoints left";
  // The pool-wide counters keep what the evicted endpoints did.
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_FAILED), n);
  EXPECT_EQ(c.stat(H2POOL_STAT_CONNECTIONS_CREATED), n);
}

// ---------------------------------------------------------------------------
// 10. The lifetime of a connection whose setup outlasts it is not lost.

TEST(FailurePaths, LifetimeThatEndsDuringSetupStillRetiresTheConnection) {
  RawServer server([](RawConnection &conn) {
    // A slow server: its SETTINGS come later than the lifetime allows.
    if (!conn.read_preface())
      return;
    std::this_thread::sleep_for(Ms(150));
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    for (;;) {
      uint32_t sid = conn.wait_request(Ms(5000));
      if (sid == 0)
        return;
      conn.send(headers(sid, hpack_status(200), kEndHeaders) +
                data(sid, "ok", kEndStream));
    }
  });
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  h2pool_config_set_max_lifetime_ms(cfg, 50);
  Client c(cfg.get());
  Call &first = c.get(server.base_url() + "/");
  WAIT_DONE(first);
  ASSERT_TRUE(first.ok) << first.describe();
  // The connection is retired once its lifetime (counted from ready) ends.
  ASSERT_TRUE(c.wait_stat(H2POOL_STAT_CONNECTIONS_CLOSED,
                          [](uint64_t v) { return v >= 1; }));
  Call &second = c.get(server.base_url() + "/");
  WAIT_DONE(second);
  ASSERT_TRUE(second.ok) << second.describe();
  EXPECT_NE(second.conn_id, first.conn_id);
}

// 10. CONNECT carries only :method and :authority (RFC 9113 section 8.5).
TEST(FailurePaths, ConnectRequestSendsNeitherSchemeNorPath) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  Client c(cfg.get());
  Call &call = c.request(server.base_url() + "/ignored", "CONNECT");
  WAIT_DONE(call);
  auto recorded = server.requests();
  ASSERT_EQ(recorded.size(), 1u) << call.describe();
  EXPECT_EQ(recorded[0].method, "CONNECT");
  EXPECT_EQ(recorded[0].scheme, "");
  EXPECT_EQ(recorded[0].path, "");
  EXPECT_NE(recorded[0].authority, "");
}

// ---------------------------------------------------------------------------
// 11. A server that sheds load by refusing streams sees retries paced by
// the backoff and the budget, and every request still completes.

// The server sheds load either at random (each stream refused with
// probability 1/2) or by refusing every other stream it receives.
class Shedding : public ::testing::TestWithParam<bool> {};

TEST_P(Shedding, ServerGetsPacedRetriesAndEveryRequestCompletes) {
  const bool every_other = GetParam();
  ServerOptions options;
  options.seed = 11;
  if (every_other)
    options.refuse_every = 2;
  TestServer server(options);
  ASSERT_EQ(server.start(), 0);
  Config cfg; // defaults: the behaviour a user gets
  Client c(cfg.get());
  constexpr int kRequests = 2000;
  std::vector<Call *> calls;
  for (int i = 0; i < kRequests; ++i)
    calls.push_back(&c.get(server.base_url() + "/?" +
                           (every_other ? "" : "refuse=0.5&") +
                           "size=64&seed=" + std::to_string(i)));
  int ok = 0;
  for (int i = 0; i < kRequests; ++i) {
    WAIT_DONE(*calls[i]);
    if (calls[i]->ok && calls[i]->body == test_body(uint64_t(i), 64))
      ++ok;
    else if (!calls[i]->ok)
      ADD_FAILURE() << "request " << i << ": " << calls[i]->describe();
  }
  ServerStats s = server.stats();
  uint64_t answered = every_other ? s.requests : s.requests - s.streams_refused;
  std::printf("completed %d/%d; server answered %llu, refused %llu; "
              "retried %llu\n",
              ok, kRequests, (unsigned long long)answered,
              (unsigned long long)s.streams_refused,
              (unsigned long long)c.stat(H2POOL_STAT_REQUESTS_RETRIED));
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(answered, uint64_t(kRequests));
  EXPECT_EQ(c.stat(H2POOL_STAT_REQUESTS_RETRIED), s.streams_refused);
}

INSTANTIATE_TEST_SUITE_P(Refusing, Shedding, ::testing::Values(false, true),
                         [](const auto &info) {
                           return info.param ? "EveryOtherStream" : "AtRandom";
                         });

// ---------------------------------------------------------------------------
// 12. A :status below 100 fails the request before any body byte reaches
// the caller.

TEST(FailurePaths, StatusBelow100FailsBeforeAnyBodyByteIsDelivered) {
  RawServer server([](RawConnection &conn) {
    if (!conn.send(settings({{0x3, 100}}) + settings_ack()))
      return;
    uint32_t sid = conn.wait_request();
    if (sid == 0)
      return;
    // Three digits, as HTTP/2 requires, but no status at all.
    conn.send(headers(sid, hpack_literal(":status", "099"), kEndHeaders) +
              data(sid, "not a body", kEndStream));
    conn.wait_closed(Ms(5000));
  });
  ASSERT_EQ(server.start(), 0);
  struct Seen {
    std::atomic<int> headers{0};
    std::atomic<int> data{0};
    Call call;
  } seen;
  h2pool_request_opts *opts = nullptr;
  ASSERT_EQ(h2pool_request_opts_new(&opts), H2POOL_OK);
  h2pool_request_opts_set_on_headers(opts,
                                     [](const h2pool_response *, void *ud) {
                                       ++static_cast<Seen *>(ud)->headers;
                                       return 0;
                                     });
  h2pool_request_opts_set_on_data(opts, [](const uint8_t *, size_t, void *ud) {
    ++static_cast<Seen *>(ud)->data;
    return 0;
  });
  h2pool *pool = nullptr;
  ASSERT_EQ(h2pool_create(nullptr, &pool), H2POOL_OK);
  std::string url = server.base_url() + "/";
  ASSERT_EQ(h2pool_request(pool, "GET", url.c_str(), nullptr, 0, nullptr, 0,
                           opts, &complete_into<Seen>, &seen, nullptr),
            H2POOL_OK);
  h2pool_request_opts_free(opts);
  bool done = seen.call.wait();
  h2pool_destroy(pool);
  ASSERT_TRUE(done);
  EXPECT_EQ(seen.call.code, H2POOL_ERR_PROTOCOL) << seen.call.describe();
  EXPECT_EQ(seen.headers.load(), 0);
  EXPECT_EQ(seen.data.load(), 0);
  EXPECT_NE(seen.call.message.find(":status"), std::string::npos)
      << seen.call.describe();
}

} // namespace
} // namespace faults
