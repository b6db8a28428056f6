// What nghttp2's server would never send, scripted frame by frame with the
// raw server: each malformed or hostile response must end its request with a
// clear error code, within a deadline, with the process's memory bounded.
#include "fault_util.h"
#include "raw_server.h"

#include <algorithm>
#include <atomic>
#include <set>

#if defined(__SANITIZE_ADDRESS__)
// The floods allocate and free per frame; ASan's default 256 MiB quarantine
// of freed memory would show up as RSS growth that is not the library's.
extern "C" const char *__asan_default_options() {
  return "quarantine_size_mb=8";
}
#endif

namespace faults {
namespace {

using namespace h2pool_testing;
using namespace h2pool_testing::h2frame;

constexpr uint64_t kRssBudget = 64ull << 20;

// The server side of one scripted exchange: our SETTINGS (and an ACK of the
// client's), then, once the client's first request arrives, `respond`.
RawServer::Script
on_request(std::function<void(RawConnection &, uint32_t)> respond) {
  return [respond](RawConnection &c) {
    if (!c.send(settings({{0x3 /* MAX_CONCURRENT_STREAMS */, 100}}) +
                settings_ack()))
      return;
    uint32_t sid = c.wait_request();
    if (sid == 0)
      return;
    respond(c, sid);
  };
}

struct Outcome {
  Call *call = nullptr;
  uint64_t rss_growth = 0;
};

class RawFrames : public ::testing::Test {
protected:
  void TearDown() override {
    client_.reset();
    if (server_)
      server_->stop();
  }
  // Starts the raw server, sends one GET and waits for its callback while
  // sampling RSS. A request timeout backs up every other deadline, so a
  // hang shows as H2POOL_ERR_TIMEOUT rather than a stuck test.
  Outcome run(RawServer::Script script, uint32_t timeout_ms = 20000) {
    server_ = std::make_unique<RawServer>(std::move(script));
    EXPECT_EQ(server_->start(), 0);
    Config cfg;
    h2pool_config_set_request_timeout_ms(cfg, timeout_ms);
    client_ = std::make_unique<Client>(cfg.get());
    uint64_t base = rss_bytes();
    uint64_t peak = base;
    Outcome out;
    out.call = &client_->get(server_->base_url() + "/");
    auto deadline = Clock::now() + Ms(timeout_ms) + kWait;
    while (!out.call->wait(5ms) && Clock::now() < deadline)
      peak = std::max(peak, rss_bytes());
    peak = std::max(peak, rss_bytes());
    out.rss_growth = peak > base ? peak - base : 0;
    EXPECT_GT(out.call->calls, 0) << "no callback in time";
    return out;
  }

  std::unique_ptr<RawServer> server_;
  std::unique_ptr<Client> client_;
};

std::string status_block(int status = 200) { return hpack_status(status); }

void expect_code(Call &call, std::set<int> allowed) {
  std::printf("outcome: %s\n", call.describe().c_str());
  EXPECT_FALSE(call.ok) << call.describe();
  EXPECT_TRUE(allowed.count(call.code)) << call.describe();
  EXPECT_EQ(call.calls, 1);
}

TEST_F(RawFrames, WellFormedRawResponseSucceeds) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, status_block() + hpack_literal("content-length", "5"),
                   kEndHeaders) +
           data(sid, "hello", kEndStream));
  }));
  ASSERT_TRUE(o.call->ok) << o.call->describe();
  EXPECT_EQ(o.call->status, 200);
  EXPECT_EQ(o.call->body, "hello");
}

// Without adaptive windows, the windows set with
// h2pool_config_set_flow_control_windows() are what the client announces:
// SETTINGS_INITIAL_WINDOW_SIZE for streams and a WINDOW_UPDATE on stream 0
// raising the connection's from 65535. (With them, the caps they grow to:
// window_test.cc.)
TEST_F(RawFrames, ConfiguredFlowControlWindowsAreAnnounced) {
  constexpr uint32_t kStreamWindow = 3u << 20, kConnectionWindow = 96u << 20;
  std::mutex mu;
  int64_t initial_window = -1, connection_increment = -1;
  auto be = [](const std::string &p, size_t at, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i)
      v = v << 8 | uint8_t(p[at + size_t(i)]);
    return v;
  };
  server_ = std::make_unique<RawServer>(on_request([&](RawConnection &c,
                                                       uint32_t sid) {
    {
      // Everything the client sent before this request's HEADERS.
      std::lock_guard<std::mutex> lock(mu);
      for (const ClientFrame &f : c.frames()) {
        if (f.type == kSettings && !(f.flags & kAck))
          for (size_t i = 0; i + 6 <= f.payload.size(); i += 6)
            if (be(f.payload, i, 2) == 0x4 /* INITIAL_WINDOW_SIZE */)
              initial_window = be(f.payload, i + 2, 4);
        if (f.type == kWindowUpdate && f.stream_id == 0 &&
            f.payload.size() == 4)
          connection_increment = be(f.payload, 0, 4) & 0x7fffffff;
      }
    }
    c.send(headers(sid, status_block() + hpack_literal("content-length", "2"),
                   kEndHeaders) +
           data(sid, "ok", kEndStream));
  }));
  ASSERT_EQ(server_->start(), 0);
  Config cfg;
  ASSERT_EQ(h2pool_config_set_flow_control_windows(cfg, kStreamWindow,
                                                   kConnectionWindow),
            H2POOL_OK);
  ASSERT_EQ(h2pool_config_set_adaptive_window(cfg, 0), H2POOL_OK);
  h2pool_config_set_request_timeout_ms(cfg, 20000);
  client_ = std::make_unique<Client>(cfg.get());
  Call &call = client_->get(server_->base_url() + "/");
  ASSERT_TRUE(call.wait(Ms(20000) + kWait));
  ASSERT_TRUE(call.ok) << call.describe();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(initial_window, int64_t(kStreamWindow));
  EXPECT_EQ(connection_increment, int64_t(kConnectionWindow) - 65535);
}

TEST_F(RawFrames, DataBeforeHeadersIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(data(sid, "surprise", kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, PaddingLongerThanFrameIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    std::string block = status_block();
    // Pad Length 200 in a frame far shorter than that.
    std::string payload = std::string(1, char(200)) + block;
    c.send(frame(kHeaders, kEndHeaders | kEndStream | kPadded, sid, payload));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, FrameOverMaxFrameSizeIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, status_block(), kEndHeaders) +
           data(sid, std::string(20000, 'x'), kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, HpackIndexOutOfRangeIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, hpack_indexed(300), kEndHeaders | kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, HpackTruncatedLiteralIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    // A literal whose value claims 100 bytes but the block ends after 3.
    std::string block = status_block() + std::string(1, '\0') +
                        hpack_string("x-a") + hpack_int(100, 7, 0) + "abc";
    c.send(headers(sid, block, kEndHeaders | kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, MissingStatusIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, hpack_literal("content-type", "text/plain"),
                   kEndHeaders | kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, UppercaseHeaderNameIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, status_block() + hpack_literal("X-Upper", "1"),
                   kEndHeaders | kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, RequestPseudoHeaderInResponseIsProtocolError) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, status_block() + hpack_literal(":path", "/"),
                   kEndHeaders | kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL});
}

TEST_F(RawFrames, GoawayWithErrorAfterTheStreamFailsWithGoawayAndDebugData) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    // The stream is at or below last_stream_id: processed, not retryable.
    c.send(goaway(sid, 2 /* INTERNAL_ERROR */, "raw-debug-data"));
    c.close();
  }));
  expect_code(*o.call, {H2POOL_ERR_GOAWAY});
  EXPECT_EQ(o.call->http2_code, 2) << o.call->describe();
  EXPECT_NE(o.call->message.find("raw-debug-data"), std::string::npos)
      << o.call->describe();
}

TEST_F(RawFrames, OversizeTrailersAreResponseTooLarge) {
  server_ = std::make_unique<RawServer>(
      on_request([](RawConnection &c, uint32_t sid) {
        c.send(headers(sid, status_block(), kEndHeaders) + data(sid, "body") +
               headers(sid, hpack_literal("x-trailer", std::string(3000, 't')),
                       kEndHeaders | kEndStream));
      }));
  ASSERT_EQ(server_->start(), 0);
  Config cfg;
  h2pool_config_set_max_response_headers(cfg, 2048, 1000);
  client_ = std::make_unique<Client>(cfg.get());
  Call &call = client_->get(server_->base_url() + "/");
  ASSERT_TRUE(call.wait());
  expect_code(call, {H2POOL_ERR_RESPONSE_TOO_LARGE});
}

TEST_F(RawFrames, ResetWithNoErrorBeforeEndStreamIsNotSuccess) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, status_block() + hpack_literal("content-length", "10"),
                   kEndHeaders) +
           data(sid, "12345") + rst_stream(sid, 0));
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL, H2POOL_ERR_STREAM_RESET});
}

TEST_F(RawFrames, AbruptCloseAfterPartialBodyIsConnectionLost) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    c.send(headers(sid, status_block(), kEndHeaders) + data(sid, "partial"));
    c.reset();
  }));
  expect_code(*o.call, {H2POOL_ERR_CONNECTION_LOST});
}

TEST_F(RawFrames, ContinuationFloodWithFieldsIsBounded) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    if (!c.send(headers(sid, status_block(), 0 /* no END_HEADERS */)))
      return;
    std::string value(1000, 'f');
    c.flood_with(
        [&](uint64_t i) {
          return continuation(
              sid, hpack_literal("x-flood-" + std::to_string(i), value));
        },
        256ull << 20, 30s);
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL, H2POOL_ERR_RESPONSE_TOO_LARGE});
  EXPECT_LT(o.rss_growth, kRssBudget);
}

TEST_F(RawFrames, EmptyContinuationFloodIsBounded) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    if (!c.send(headers(sid, status_block(), 0 /* no END_HEADERS */)))
      return;
    c.flood(continuation(sid, ""), 256ull << 20, 30s);
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL, H2POOL_ERR_RESPONSE_TOO_LARGE});
  EXPECT_LT(o.rss_growth, kRssBudget);
}

TEST_F(RawFrames, HpackBombIsResponseTooLarge) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t sid) {
    // One 4000-byte dynamic-table entry, then 16000 one-byte references to
    // it: 64 MB of decoded header from 16 KB on the wire.
    std::string block = status_block() +
                        hpack_literal_indexed("x-bomb", std::string(4000, 'b'));
    std::string refs(16000, char(0x80 | 62));
    c.send(headers(sid, block + refs.substr(0, 12000), 0) +
           continuation(sid, refs.substr(12000), kEndHeaders) +
           data(sid, "", kEndStream));
  }));
  expect_code(*o.call, {H2POOL_ERR_RESPONSE_TOO_LARGE});
  EXPECT_LT(o.rss_growth, kRssBudget);
}

TEST_F(RawFrames, PingFloodIsBounded) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t) {
    std::string burst;
    for (int i = 0; i < 1000; ++i)
      burst += ping(uint64_t(i));
    c.flood(burst, 512ull << 20, 30s);
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL, H2POOL_ERR_CONNECTION_LOST});
  EXPECT_LT(o.rss_growth, kRssBudget);
}

TEST_F(RawFrames, SettingsFloodIsBounded) {
  Outcome o = run(on_request([](RawConnection &c, uint32_t) {
    std::string burst;
    for (int i = 0; i < 1000; ++i)
      burst += settings({{0x4 /* INITIAL_WINDOW_SIZE */, 65535}});
    c.flood(burst, 512ull << 20, 30s);
  }));
  expect_code(*o.call, {H2POOL_ERR_PROTOCOL, H2POOL_ERR_CONNECTION_LOST});
  EXPECT_LT(o.rss_growth, kRssBudget);
}

} // namespace
} // namespace faults
