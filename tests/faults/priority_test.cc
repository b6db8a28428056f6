// RFC 9218 priorities end to end: the priority header on the wire, the
// pool's own queue ordered by urgency when streams are scarce, and a server
// that schedules by urgency (nghttp2's server session in RFC 9218 mode)
// letting an urgent request overtake bulk downloads on a saturated
// connection, also after a PRIORITY_UPDATE. Timings are printed, never
// asserted: only the order of completions is.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "fault_util.h"
#include "h2pool.h"
#include "test_server.h"

namespace {

using faults::Call;
using faults::Client;
using faults::Clock;
using faults::Config;
using faults::kWait;
using faults::Opts;
using h2pool_testing::RecordedRequest;
using h2pool_testing::ServerOptions;
using h2pool_testing::TestServer;

std::vector<std::string> header_values(const RecordedRequest &r,
                                       const std::string &name) {
  std::vector<std::string> out;
  for (const auto &h : r.headers)
    if (h.first == name)
      out.push_back(h.second);
  return out;
}

const RecordedRequest *find_path(const std::vector<RecordedRequest> &reqs,
                                 const std::string &path) {
  for (const auto &r : reqs)
    if (r.path == path)
      return &r;
  return nullptr;
}

Call &request_with(Client &client, const std::string &url,
                   const h2pool_request_opts *opts) {
  return client.request(url, "GET", "", opts);
}

TEST(Priority, HeaderSentOnlyWhenNotDefaultAndCallersWins) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  Call e; // outlives the client, whose destruction waits for its callback
  Client client(nullptr);
  Opts urgent, incremental, defaults, overridden;
  ASSERT_EQ(h2pool_request_opts_set_priority(urgent, 0, 0), H2POOL_OK);
  ASSERT_EQ(h2pool_request_opts_set_priority(incremental, 5, 1), H2POOL_OK);
  ASSERT_EQ(h2pool_request_opts_set_priority(defaults, 3, 0), H2POOL_OK);
  ASSERT_EQ(h2pool_request_opts_set_priority(overridden, 6, 0), H2POOL_OK);
  std::string base = server.base_url();
  Call &a = request_with(client, base + "/urgent", urgent);
  Call &b = request_with(client, base + "/incremental", incremental);
  Call &c = request_with(client, base + "/default", defaults);
  Call &d = client.get(base + "/none");
  // The caller's own field goes out alone, whatever the options say.
  h2pool_header h = {"Priority", 8, "u=1", 3};
  ASSERT_EQ(h2pool_request(client.pool(), "GET", (base + "/caller").c_str(), &h,
                           1, nullptr, 0, overridden, &Call::callback, &e,
                           nullptr),
            H2POOL_OK);
  for (Call *call : {&a, &b, &c, &d, &e}) {
    ASSERT_TRUE(call->wait()) << call->describe();
    EXPECT_TRUE(call->ok) << call->describe();
  }
  auto reqs = server.requests();
  auto values = [&](const char *path) {
    const RecordedRequest *r = find_path(reqs, path);
    EXPECT_NE(r, nullptr) << path;
    return r ? header_values(*r, "priority") : std::vector<std::string>{};
  };
  EXPECT_EQ(values("/urgent"), std::vector<std::string>{"u=0"});
  EXPECT_EQ(values("/incremental"), std::vector<std::string>{"u=5, i"});
  EXPECT_TRUE(values("/default").empty());
  EXPECT_TRUE(values("/none").empty());
  EXPECT_EQ(values("/caller"), std::vector<std::string>{"u=1"});
}

// h2pool_queue_request() takes the same options, and the header with them.
TEST(Priority, CompletionQueueRequestsCarryTheirPriority) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  Client client(nullptr);
  h2pool_queue *q = nullptr;
  ASSERT_EQ(h2pool_queue_create(&q), H2POOL_OK);
  Opts opts;
  ASSERT_EQ(h2pool_request_opts_set_priority(opts, 2, 1), H2POOL_OK);
  uint64_t id = 0;
  std::string url = server.base_url() + "/queued";
  ASSERT_EQ(h2pool_queue_request(client.pool(), q, "GET", url.c_str(), nullptr,
                                 0, nullptr, 0, opts, nullptr, &id),
            H2POOL_OK);
  h2pool_event *ev = nullptr;
  ASSERT_EQ(h2pool_queue_next(q, &ev, 1, int(kWait.count())), 1);
  EXPECT_EQ(h2pool_event_kind(ev), H2POOL_EVENT_COMPLETE);
  EXPECT_EQ(h2pool_event_error(ev), nullptr);
  EXPECT_EQ(h2pool_event_request_id(ev), id);
  h2pool_event_free(ev);
  client.destroy();
  h2pool_queue_destroy(q);
  auto reqs = server.requests();
  const RecordedRequest *r = find_path(reqs, "/queued");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(header_values(*r, "priority"), std::vector<std::string>{"u=2, i"});
}

// One connection, one stream at a time: the request that gets the stream
// when it frees up is the most urgent waiting one, not the oldest.
TEST(Priority, QueueServesMostUrgentFirstWhenStreamsAreScarce) {
  ServerOptions so;
  so.max_concurrent_streams = 1;
  TestServer server(so);
  ASSERT_EQ(server.start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_max_connections_per_endpoint(cfg, 1), H2POOL_OK);
  Client client(cfg);
  std::string base = server.base_url();
  // Holds the only stream until cancelled (never answered).
  Call &blocker = client.get(base + "/block?stall=1&fault_at=before");
  ASSERT_TRUE(server.wait_for_stats(
      [](const auto &s) { return s.requests >= 1; }, kWait));
  Opts bulk, urgent, middle;
  ASSERT_EQ(h2pool_request_opts_set_priority(bulk, 7, 0), H2POOL_OK);
  ASSERT_EQ(h2pool_request_opts_set_priority(urgent, 0, 0), H2POOL_OK);
  ASSERT_EQ(h2pool_request_opts_set_priority(middle, 4, 0), H2POOL_OK);
  std::vector<Call *> calls;
  for (int i = 1; i <= 3; ++i)
    calls.push_back(
        &request_with(client, base + "/bulk" + std::to_string(i), bulk));
  calls.push_back(&request_with(client, base + "/middle", middle));
  calls.push_back(&request_with(client, base + "/urgent", urgent));
  // Raised from 7 to 1 while queued: it moves ahead of the bulk ones and
  // the u=4 one, behind the u=0 one.
  Call &raised = request_with(client, base + "/raised", bulk);
  calls.push_back(&raised);
  ASSERT_EQ(h2pool_request_set_priority(client.pool(), raised.id, 1, 0),
            H2POOL_OK);
  ASSERT_EQ(h2pool_cancel(client.pool(), blocker.id), H2POOL_OK);
  ASSERT_TRUE(blocker.wait());
  EXPECT_EQ(blocker.code, H2POOL_ERR_CANCELLED);
  for (Call *c : calls) {
    ASSERT_TRUE(c->wait()) << c->describe();
    EXPECT_TRUE(c->ok) << c->describe();
  }
  std::vector<std::string> order;
  for (const auto &r : server.requests())
    order.push_back(r.path);
  std::vector<std::string> want{"/block?stall=1&fault_at=before",
                                "/urgent",
                                "/raised",
                                "/middle",
                                "/bulk1",
                                "/bulk2",
                                "/bulk3"};
  EXPECT_EQ(order, want);
  // Sent with its new priority.
  auto reqs = server.requests();
  const RecordedRequest *r = find_path(reqs, "/raised");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(header_values(*r, "priority"), std::vector<std::string>{"u=1"});
}

// A download whose body is counted and dropped (with 129 MiB in flight,
// buffering it would only measure memory).
struct Download {
  std::atomic<uint64_t> bytes{0};
  Call call;
  static int on_data(const uint8_t *, size_t len, void *user_data) {
    static_cast<Download *>(user_data)->bytes += len;
    return 0;
  }
  static void on_done(const h2pool_response *resp, const h2pool_error *err,
                      void *user_data) {
    Call::callback(resp, err, &static_cast<Download *>(user_data)->call);
  }
};

struct Timings {
  double urgent_ms = 0; // from its submission to its completion
  double first_bulk_ms = 0, last_bulk_ms = 0; // from the urgent's submission
  bool urgent_first = false;
};

constexpr size_t kBulk = 8;
constexpr uint64_t kBulkBytes = 16u << 20;
constexpr uint64_t kUrgentBytes = 1u << 20;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Eight bulk downloads saturate one connection; once the server is sending
// them, one more (the urgent one) is submitted. `raise` instead submits it
// at the bulk priority and raises it with h2pool_request_set_priority().
Timings overtake(bool rfc9218, int bulk_u, int bulk_i, int urgent_u,
                 int urgent_i, bool raise) {
  ServerOptions so;
  so.rfc9218 = rfc9218;
  so.record_limit = 64;
  TestServer server(so);
  EXPECT_EQ(server.start(), 0);
  // Declared before the client, so they outlive it: destroying the pool
  // waits for the completion callbacks that still touch them.
  std::vector<std::unique_ptr<Download>> bulk;
  Download urgent;
  Config cfg;
  EXPECT_EQ(h2pool_config_set_max_connections_per_endpoint(cfg, 1), H2POOL_OK);
  Client client(cfg);
  Opts bulk_opts, urgent_opts;
  EXPECT_EQ(h2pool_request_opts_set_on_data(bulk_opts, &Download::on_data),
            H2POOL_OK);
  EXPECT_EQ(h2pool_request_opts_set_on_data(urgent_opts, &Download::on_data),
            H2POOL_OK);
  EXPECT_EQ(h2pool_request_opts_set_priority(bulk_opts, bulk_u, bulk_i),
            H2POOL_OK);
  EXPECT_EQ(
      raise ? h2pool_request_opts_set_priority(urgent_opts, bulk_u, bulk_i)
            : h2pool_request_opts_set_priority(urgent_opts, urgent_u, urgent_i),
      H2POOL_OK);
  std::string base = server.base_url();
  auto submit = [&](Download &d, const std::string &url,
                    const h2pool_request_opts *opts) {
    d.call.submitted = Clock::now();
    EXPECT_EQ(h2pool_request(client.pool(), "GET", url.c_str(), nullptr, 0,
                             nullptr, 0, opts, &Download::on_done, &d,
                             &d.call.id),
              H2POOL_OK);
  };
  for (size_t i = 0; i < kBulk; ++i) {
    bulk.push_back(std::make_unique<Download>());
    submit(*bulk.back(),
           base + "/bulk" + std::to_string(i) +
               "?zeros=" + std::to_string(kBulkBytes),
           bulk_opts);
  }
  // Started: the server has every bulk request and is sending.
  EXPECT_TRUE(server.wait_for_stats(
      [](const auto &s) { return s.requests >= kBulk; }, kWait));
  EXPECT_TRUE(faults::wait_until([&] { return bulk[0]->bytes > 0; }));
  // Raised, it is as large as the others: without the update it would
  // finish last, having started last.
  const uint64_t urgent_bytes = raise ? kBulkBytes : kUrgentBytes;
  submit(urgent, base + "/urgent?zeros=" + std::to_string(urgent_bytes),
         urgent_opts);
  if (raise) {
    // On its stream already: the server hears of it by PRIORITY_UPDATE.
    EXPECT_TRUE(server.wait_for_stats(
        [](const auto &s) { return s.requests >= kBulk + 1; }, kWait));
    EXPECT_EQ(h2pool_request_set_priority(client.pool(), urgent.call.id,
                                          urgent_u, urgent_i),
              H2POOL_OK);
  }
  constexpr auto kLong = std::chrono::milliseconds(120000);
  EXPECT_TRUE(urgent.call.wait(kLong)) << urgent.call.describe();
  EXPECT_TRUE(urgent.call.ok) << urgent.call.describe();
  EXPECT_EQ(urgent.bytes, urgent_bytes);
  Timings t;
  t.urgent_ms = ms_between(urgent.call.submitted, urgent.call.done_at);
  t.urgent_first = true;
  bool first = true;
  for (auto &d : bulk) {
    EXPECT_TRUE(d->call.wait(kLong)) << d->call.describe();
    EXPECT_TRUE(d->call.ok) << d->call.describe();
    EXPECT_EQ(d->bytes, kBulkBytes);
    double at = ms_between(urgent.call.submitted, d->call.done_at);
    t.first_bulk_ms = first ? at : std::min(t.first_bulk_ms, at);
    t.last_bulk_ms = first ? at : std::max(t.last_bulk_ms, at);
    first = false;
    if (d->call.done_at <= urgent.call.done_at)
      t.urgent_first = false;
  }
  if (raise && rfc9218) {
    EXPECT_GE(server.stats().priority_updates, 1u);
  }
  return t;
}

void print(const char *what, const Timings &t) {
  std::printf("[priority] %-52s urgent %8.1f ms, bulk done %8.1f .. %8.1f ms "
              "after it was sent%s\n",
              what, t.urgent_ms, t.first_bulk_ms, t.last_bulk_ms,
              t.urgent_first ? "" : "  (urgent NOT first)");
  std::fflush(stdout);
}

// The numbers (README "Priorities"): the same urgent 1 MiB download behind
// 8 x 16 MiB at default priorities (the server sends them in turn, the
// urgent one last), and at u=0 behind u=7 bulk. Only the order is asserted.
TEST(Priority, UrgentRequestOvertakesBulkDownloads) {
  Timings with = overtake(true, 7, 1, 0, 0, false);
  print("RFC 9218 server, bulk u=7,i, urgent u=0:", with);
  Timings without = overtake(true, 3, 0, 3, 0, false);
  print("RFC 9218 server, no priorities (all u=3):", without);
  Timings ignored = overtake(false, 7, 1, 0, 0, false);
  print("RFC 7540 server (ignores them), bulk u=7,i, u=0:", ignored);
  EXPECT_TRUE(with.urgent_first)
      << "the urgent download should complete before every bulk one";
}

TEST(Priority, PriorityUpdateLetsARunningRequestOvertake) {
  // Nine 16 MiB downloads at u=7, incremental: the server interleaves
  // them. The last one submitted, raised to u=0 on its stream, finishes
  // first.
  Timings raised = overtake(true, 7, 1, 0, 0, true);
  print("RFC 9218 server, u=7,i raised to u=0 by PRIORITY_UPDATE:", raised);
  EXPECT_TRUE(raised.urgent_first)
      << "the raised download should complete before every other one";
}

} // namespace
