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

struct h2pool_stats {
  h2pool_core::StatValues total{};
  std::vector<std::string> endpoint_names;
  std::vector<int> endpoint_states;    // h2pool_endpoint_state
  std::vector<int> endpoint_protocols; // h2pool_protocol
  std::vector<h2pool_core::StatValues> endpoints;
};
