// Merging the statistics of a pool's loops (h2pool_config_set_loop_threads):
// what h2pool_stats_get() returns for a pool with several.
#include <gtest/gtest.h>

#include "stats.h"

namespace h2pool_core {
namespace {

void add_endpoint(h2pool_stats &s, const std::string &name, int state,
                  int protocol, StatValues v) {
  s.endpoint_names.push_back(name);
  s.endpoint_states.push_back(state);
  s.endpoint_protocols.push_back(protocol);
  s.endpoints.push_back(v);
}

StatValues values(uint64_t completed, uint64_t peak_streams) {
  StatValues v{};
  v[H2POOL_STAT_REQUESTS_COMPLETED] = completed;
  v[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION] = peak_streams;
  v[H2POOL_STAT_PEAK_STREAM_WINDOW] = peak_streams * 1000;
  return v;
}

TEST(MergeStats, CountersSumAndPeaksTakeTheLarger) {
  StatValues into = values(5, 7);
  add_stat_values(into, values(3, 2));
  EXPECT_EQ(into[H2POOL_STAT_REQUESTS_COMPLETED], 8u);
  EXPECT_EQ(into[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION], 7u);
  EXPECT_EQ(into[H2POOL_STAT_PEAK_STREAM_WINDOW], 7000u);
  add_stat_values(into, values(0, 9));
  EXPECT_EQ(into[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION], 9u);
}

TEST(MergeStats, EachEndpointOnceInTheMoreAvailableState) {
  h2pool_stats a, b;
  a.total = values(10, 1);
  b.total = values(20, 4);
  add_endpoint(a, "https://a:443", H2POOL_ENDPOINT_BACKING_OFF,
               H2POOL_PROTOCOL_UNKNOWN, values(1, 1));
  add_endpoint(a, "https://b:443", H2POOL_ENDPOINT_READY,
               H2POOL_PROTOCOL_HTTP_2, values(2, 1));
  add_endpoint(b, "https://b:443", H2POOL_ENDPOINT_CONNECTING,
               H2POOL_PROTOCOL_HTTP_2, values(3, 5));
  add_endpoint(b, "https://a:443", H2POOL_ENDPOINT_CONNECTING,
               H2POOL_PROTOCOL_HTTP_1_1, values(4, 1));
  add_endpoint(b, "http://c:80", H2POOL_ENDPOINT_IDLE, H2POOL_PROTOCOL_HTTP_2,
               values(5, 1));
  merge_stats(a, b);
  EXPECT_EQ(a.total[H2POOL_STAT_REQUESTS_COMPLETED], 30u);
  EXPECT_EQ(a.total[H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION], 4u);
  ASSERT_EQ(a.endpoint_names.size(), 3u);
  ASSERT_EQ(a.endpoints.size(), 3u);
  EXPECT_EQ(a.endpoint_names[0], "https://a:443");
  EXPECT_EQ(a.endpoint_states[0], H2POOL_ENDPOINT_CONNECTING);
  EXPECT_EQ(a.endpoint_protocols[0], H2POOL_PROTOCOL_HTTP_1_1);
  EXPECT_EQ(a.endpoints[0][H2POOL_STAT_REQUESTS_COMPLETED], 5u);
  EXPECT_EQ(a.endpoint_states[1], H2POOL_ENDPOINT_READY);
  EXPECT_EQ(a.endpoints[1][H2POOL_STAT_REQUESTS_COMPLETED], 5u);
  EXPECT_EQ(a.endpoints[1][H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION], 5u);
  EXPECT_EQ(a.endpoint_names[2], "http://c:80");
  EXPECT_EQ(a.endpoint_states[2], H2POOL_ENDPOINT_IDLE);
}

} // namespace
} // namespace h2pool_core
