// The immutable statistics snapshot behind h2pool_stats.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "h2pool.h"

namespace h2pool_core {
constexpr size_t kStatCount = size_t(H2POOL_STAT_PEAK_STREAM_WINDOW) + 1;
using StatValues = std::array<uint64_t, kStatCount>;
} // namespace h2pool_core

struct h2pool_stats;

namespace h2pool_core {
// Adds `from` into `into`: counters and gauges sum, peaks take the larger.
void add_stat_values(StatValues &into, const StatValues &from);
// Adds the snapshot of another loop's pool (h2pool_config_set_loop_threads)
// into `into`: totals as add_stat_values(), and each endpoint merged with
// the entry of the same name, whose state becomes the more available one.
void merge_stats(h2pool_stats &into, const h2pool_stats &from);
} // namespace h2pool_core

struct h2pool_stats {
  h2pool_core::StatValues total{};
  std::vector<std::string> endpoint_names;
  std::vector<int> endpoint_states;    // h2pool_endpoint_state
  std::vector<int> endpoint_protocols; // h2pool_protocol
  std::vector<h2pool_core::StatValues> endpoints;
};
