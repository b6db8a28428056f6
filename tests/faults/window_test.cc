// Adaptive flow-control windows (h2pool_config_set_adaptive_window): what
// the client advertises, seen frame by frame from a raw server that controls
// exactly how many bytes arrive within each probe's round trip; and how far
// the windows grow over a delayed, rate-limited link (a DelayRelay), where
// only the bandwidth-delay product sets them. How fast that link is filled
// is measured by bench/window_bench, not asserted here.
//
// Every wait is bounded: the scripts find what the client sent in reply to
// something by sending a PING of their own after it and reading up to its
// ACK, since the client answers in the order it reads.
#include "delay_relay.h"
#include "fault_util.h"
#include "raw_server.h"
#include "test_server.h"

#include <mutex>

namespace faults {
namespace {

using namespace h2pool_testing;
using namespace h2pool_testing::h2frame;

constexpr uint32_t kKiB = 1024;
constexpr uint16_t kInitialWindowSize = 0x4;
const std::string kProbe = "h2poolBD";

uint32_t get32(const std::string &s, size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 |
         uint32_t(uint8_t(s[at + 2])) << 8 | uint32_t(uint8_t(s[at + 3]));
}

// SETTINGS_INITIAL_WINDOW_SIZE in a client SETTINGS frame, or -1.
int64_t initial_window(const ClientFrame &f) {
  int64_t v = -1;
  for (size_t i = 0; i + 6 <= f.payload.size(); i += 6)
    if ((uint16_t(uint8_t(f.payload[i])) << 8 | uint8_t(f.payload[i + 1])) ==
        kInitialWindowSize)
      v = get32(f.payload, i + 2);
  return v;
}

bool is_probe(const ClientFrame &f) {
  return f.type == kPing && !(f.flags & kAck) && f.payload == kProbe;
}

// What the client advertised, frame by frame.
struct Seen {
  std::mutex mu;
  bool done = false;
  int64_t first_stream_window = -1; // in the client's first SETTINGS
  uint64_t first_connection_increment = 0;
  // Per probe round: the probes that had arrived by its barrier, the
  // stream windows later SETTINGS raised to, and the connection window
  // increments on stream 0.
  std::vector<int> probes;
  std::vector<std::vector<int64_t>> raised;
  std::vector<uint64_t> connection_increments;
};

// Sends a PING and reads until its ACK.
bool ping_pong(RawConnection &c, uint64_t opaque) {
  std::string want = ping(opaque).substr(9);
  if (!c.send(ping(opaque)))
    return false;
  auto deadline = Clock::now() + Ms(10000);
  while (Clock::now() < deadline) {
    auto f = c.read_frame(Ms(200));
    if (f && f->type == kPing && (f->flags & kAck) && f->payload == want)
      return true;
    if (!f && c.closed())
      return false;
  }
  return false;
}

// Whatever the client sent in reply to what came before is then in
// c.frames(). Two PINGs, one after the other's ACK: nghttp2 writes a PING
// ACK ahead of WINDOW_UPDATE frames queued in the same pass, but everything
// from that pass before it answers a PING that arrives later.
bool barrier(RawConnection &c, uint64_t opaque) {
  return ping_pong(c, opaque << 1) && ping_pong(c, opaque << 1 | 1);
}

std::string body_frames(uint32_t sid, size_t n) {
  std::string out;
  while (n > 0) {
    size_t k = std::min<size_t>(n, 16 * kKiB);
    out += data(sid, std::string(k, 'x'));
    n -= k;
  }
  return out;
}

// One probe round: the bytes sent after the 64 KiB that prompt a probe.
struct Round {
  size_t rest;
};

// A probe goes out once this much DATA arrived since the last one.
constexpr size_t kLead = 64 * kKiB;

// One response on stream 1, in rounds: each round sends 64 KiB, which
// prompts a probe, sends the rest of the round's bytes, and only then ACKs
// the probe, so the client's sample is the rest plus the part of the last
// 16 KiB frame of the lead that it read after crossing 64 KiB (a read may
// split a frame): between rest and rest + 16 KiB. A round in which no probe
// came sends only the lead.
RawServer::Script rounds_script(Seen &seen, std::vector<Round> rounds) {
  return [&seen, rounds](RawConnection &c) {
    if (!c.send(settings() + settings_ack()))
      return;
    uint32_t sid = c.wait_request();
    if (sid == 0)
      return;
    {
      std::lock_guard<std::mutex> lock(seen.mu);
      for (const ClientFrame &f : c.frames()) {
        if (f.type == kSettings && !(f.flags & kAck) &&
            seen.first_stream_window < 0)
          seen.first_stream_window = initial_window(f);
        if (f.type == kWindowUpdate && f.stream_id == 0)
          seen.first_connection_increment += get32(f.payload, 0);
      }
    }
    if (!c.send(headers(sid, hpack_status(200), kEndHeaders)))
      return;
    uint64_t opaque = 1;
    for (const Round &round : rounds) {
      size_t before = c.frames().size();
      if (!c.send(body_frames(sid, kLead)) || !barrier(c, opaque++))
        return;
      int probes = 0;
      std::string probe;
      for (size_t i = before; i < c.frames().size(); ++i)
        if (is_probe(c.frames()[i])) {
          ++probes;
          probe = c.frames()[i].payload;
        }
      std::vector<int64_t> raised;
      uint64_t increments = 0;
      if (probes > 0) {
        size_t acked = c.frames().size();
        if (!c.send(body_frames(sid, round.rest) +
                    frame(kPing, kAck, 0, probe)) ||
            !barrier(c, opaque++))
          return;
        for (size_t i = acked; i < c.frames().size(); ++i) {
          const ClientFrame &f = c.frames()[i];
          if (f.type == kSettings && !(f.flags & kAck)) {
            raised.push_back(initial_window(f));
            if (!c.send(settings_ack()))
              return;
          }
          if (f.type == kWindowUpdate && f.stream_id == 0)
            increments += get32(f.payload, 0);
        }
      }
      std::lock_guard<std::mutex> lock(seen.mu);
      seen.probes.push_back(probes);
      seen.raised.push_back(raised);
      seen.connection_increments.push_back(increments);
    }
    c.send(data(sid, "", kEndStream));
    std::lock_guard<std::mutex> lock(seen.mu);
    seen.done = true;
  };
}

class Windows : public ::testing::Test {
protected:
  void TearDown() override {
    client_.reset();
    if (server_)
      server_->stop();
  }
  // Runs the one download of `rounds` with `cfg`; returns what the server
  // saw once the script is done.
  Seen &download(const Config &cfg, std::vector<Round> rounds) {
    server_ = std::make_unique<RawServer>(rounds_script(seen_, rounds));
    EXPECT_EQ(server_->start(), 0);
    client_ = std::make_unique<Client>(cfg.get());
    Call &call = client_->get(server_->base_url() + "/bulk");
    EXPECT_TRUE(call.wait()) << "no callback";
    EXPECT_TRUE(call.ok) << call.describe();
    size_t expect = 0;
    for (const Round &r : rounds)
      expect += kLead + r.rest;
    EXPECT_GE(call.body.size(), kLead * rounds.size());
    EXPECT_LE(call.body.size(), expect);
    peak_window_ = client_->stat(H2POOL_STAT_PEAK_STREAM_WINDOW);
    client_.reset();
    server_->stop();
    EXPECT_TRUE(seen_.done) << "the script did not finish";
    return seen_;
  }

  Seen seen_;
  uint64_t peak_window_ = 0;
  std::unique_ptr<RawServer> server_;
  std::unique_ptr<Client> client_;
};

// Whether `v` is in [lo, hi].
::testing::AssertionResult within(int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << v << " not in [" << lo << ", " << hi << "]";
}

// By default a connection starts with a 256 KiB stream window and a 1 MiB
// connection window. A round trip that brings over a third of the window
// (most of the half that flows while the rest waits to be returned) sets
// the stream window to four times the sample, for the open stream too (one
// SETTINGS frame), and the connection's to twice that once it passes 1 MiB.
TEST_F(Windows, StartSmallAndGrowWhenTheWindowLimits) {
  Config cfg;
  // Round 1: a sample of 96..112 KiB of the 256 KiB window. Round 2: 160..176
  // KiB of the ~400 KiB.
  Seen &seen = download(cfg, {{96 * kKiB}, {160 * kKiB}});
  EXPECT_EQ(seen.first_stream_window, 256 * kKiB);
  EXPECT_EQ(seen.first_connection_increment, (1u << 20) - 65535);
  ASSERT_EQ(seen.probes.size(), 2u);
  EXPECT_EQ(seen.probes[0], 1);
  ASSERT_EQ(seen.raised[0].size(), 1u);
  EXPECT_TRUE(within(seen.raised[0][0], 384 * kKiB + 4, 448 * kKiB));
  EXPECT_EQ(seen.connection_increments[0], 0u) << "2 x 448 KiB < 1 MiB";
  EXPECT_EQ(seen.probes[1], 1);
  ASSERT_EQ(seen.raised[1].size(), 1u);
  EXPECT_TRUE(within(seen.raised[1][0], 640 * kKiB, 704 * kKiB));
  // To twice the stream window (1280..1408 KiB), besides what returns the
  // bytes received so far (at most 384 KiB).
  EXPECT_TRUE(
      within(int64_t(seen.connection_increments[1]), 256 * kKiB, 1024 * kKiB));
  EXPECT_EQ(int64_t(peak_window_), seen.raised[1][0]);
}

// A round trip that brings well under the window means the window is not
// what limits: nothing grows.
TEST_F(Windows, ASampleWellUnderTheWindowGrowsNothing) {
  Config cfg;
  Seen &seen = download(cfg, {{16 * kKiB}});
  ASSERT_EQ(seen.probes.size(), 1u);
  EXPECT_EQ(seen.probes[0], 1);
  EXPECT_TRUE(seen.raised[0].empty());
  EXPECT_EQ(seen.connection_increments[0], 0u);
  EXPECT_EQ(peak_window_, 256 * kKiB);
}

// The configured windows cap the growth; at the cap, probing stops.
TEST_F(Windows, GrowthStopsAtTheConfiguredCap) {
  Config cfg;
  ASSERT_EQ(h2pool_config_set_flow_control_windows(cfg, 384 * kKiB, 1u << 20),
            H2POOL_OK);
  Seen &seen = download(cfg, {{96 * kKiB}, {0}});
  EXPECT_EQ(seen.first_stream_window, 256 * kKiB);
  ASSERT_EQ(seen.probes.size(), 2u);
  EXPECT_EQ(seen.raised[0], std::vector<int64_t>{384 * kKiB});
  EXPECT_EQ(seen.connection_increments[0], 0u);
  EXPECT_EQ(seen.probes[1], 0) << "a probe after the cap was reached";
  EXPECT_EQ(peak_window_, 384 * kKiB);
}

// Caps at or below where adaptive windows start: they are the windows, and
// nothing is probed.
TEST_F(Windows, CapsBelowTheStartAreTheWindows) {
  Config cfg;
  ASSERT_EQ(h2pool_config_set_flow_control_windows(cfg, 128 * kKiB, 65535),
            H2POOL_OK);
  Seen &seen = download(cfg, {{0}});
  EXPECT_EQ(seen.first_stream_window, 128 * kKiB);
  EXPECT_EQ(seen.first_connection_increment, 0u);
  EXPECT_EQ(seen.probes, std::vector<int>{0});
}

// Adaptive windows off: the configured windows from the start, no probes.
TEST_F(Windows, OffAdvertisesTheConfiguredWindowsAndNeverProbes) {
  Config cfg;
  ASSERT_EQ(h2pool_config_set_adaptive_window(cfg, 0), H2POOL_OK);
  Seen &seen = download(cfg, {{192 * kKiB}});
  EXPECT_EQ(seen.first_stream_window, 8u << 20);
  EXPECT_EQ(seen.first_connection_increment, (64u << 20) - 65535);
  EXPECT_EQ(seen.probes, std::vector<int>{0});
  EXPECT_EQ(peak_window_, 8u << 20);
}

// 100 Mbit/s with a 50 ms round trip: a bandwidth-delay product of
// 625,000 bytes, between where adaptive windows start (256 KiB) and their
// default cap (8 MiB). A 16 MiB download grows the stream window to at
// least that, and the body arrives intact.
TEST(WindowsOverADelayedLink, GrowToTheBandwidthDelayProduct) {
  TestServer server;
  ASSERT_EQ(server.start(), 0);
  LinkOptions link;
  link.one_way_delay_ms = 25;
  link.rate_bytes_per_sec = 12'500'000;
  DelayRelay relay(server.port(), link);
  ASSERT_TRUE(relay.ok());
  Config cfg;
  Client client(cfg.get());
  constexpr size_t kSize = 16u << 20;
  Call &call = client.get("http://127.0.0.1:" + std::to_string(relay.port()) +
                          "/bulk?size=" + std::to_string(kSize) + "&seed=7");
  ASSERT_TRUE(call.wait(Ms(90000))) << "no callback";
  ASSERT_TRUE(call.ok) << call.describe();
  EXPECT_EQ(call.body, test_body(7, kSize));
  uint64_t peak = client.stat(H2POOL_STAT_PEAK_STREAM_WINDOW);
  std::printf("16 MiB in %lld ms; peak stream window %llu bytes\n",
              (long long)call.elapsed().count(), (unsigned long long)peak);
  EXPECT_GE(peak, 625'000u);
  EXPECT_LE(peak, 8u << 20);
  EXPECT_EQ(relay.connections(), 1u);
}

TEST(WindowsConfig, SetterValidatesItsConfig) {
  EXPECT_EQ(h2pool_config_set_adaptive_window(nullptr, 1),
            H2POOL_ERR_INVALID_ARGUMENT);
  Config cfg;
  EXPECT_EQ(h2pool_config_set_adaptive_window(cfg, 1), H2POOL_OK);
  EXPECT_EQ(h2pool_config_set_adaptive_window(cfg, 0), H2POOL_OK);
}

} // namespace
} // namespace faults
