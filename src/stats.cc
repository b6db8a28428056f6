// Read-only accessors over a statistics snapshot (public C API).
#include "stats.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

namespace h2pool_core {

void add_stat_values(StatValues &into, const StatValues &from) {
  for (size_t i = 0; i < kStatCount; ++i) {
    if (i == H2POOL_STAT_PEAK_STREAMS_PER_CONNECTION ||
        i == H2POOL_STAT_PEAK_STREAM_WINDOW)
      into[i] = std::max(into[i], from[i]);
    else
      into[i] += from[i];
  }
}

namespace {

// How available an endpoint state says the endpoint is: of two loops'
// states for one endpoint, the snapshot shows the higher.
int availability(int state) {
  switch (state) {
  case H2POOL_ENDPOINT_READY:
    return 4;
  case H2POOL_ENDPOINT_CONNECTING:
    return 3;
  case H2POOL_ENDPOINT_BACKING_OFF:
    return 2;
  case H2POOL_ENDPOINT_DRAINING:
    return 1;
  default:
    return 0;
  }
}

} // namespace

void merge_stats(h2pool_stats &into, const h2pool_stats &from) {
  add_stat_values(into.total, from.total);
  // Reserved first: the index holds views of the names, which must not
  // move while it is used.
  into.endpoint_names.reserve(into.endpoint_names.size() +
                              from.endpoint_names.size());
  std::unordered_map<std::string_view, size_t> index;
  for (size_t i = 0; i < into.endpoint_names.size(); ++i)
    index.emplace(into.endpoint_names[i], i);
  for (size_t j = 0; j < from.endpoints.size(); ++j) {
    auto it = index.find(from.endpoint_names[j]);
    if (it == index.end()) {
      // The new name is not looked up again: `from` names each once.
      into.endpoint_names.push_back(from.endpoint_names[j]);
      into.endpoint_states.push_back(from.endpoint_states[j]);
      into.endpoint_protocols.push_back(from.endpoint_protocols[j]);
      into.endpoints.push_back(from.endpoints[j]);
      continue;
    }
    size_t i = it->second;
    add_stat_values(into.endpoints[i], from.endpoints[j]);
    if (availability(from.endpoint_states[j]) >
        availability(into.endpoint_states[i]))
      into.endpoint_states[i] = from.endpoint_states[j];
    if (into.endpoint_protocols[i] == H2POOL_PROTOCOL_UNKNOWN)
      into.endpoint_protocols[i] = from.endpoint_protocols[j];
  }
}

} // namespace h2pool_core

extern "C" {

void h2pool_stats_free(h2pool_stats *stats) { delete stats; }

uint64_t h2pool_stats_value(const h2pool_stats *stats, h2pool_stat which) {
  size_t i = size_t(which);
  if (stats == nullptr || int(which) < 0 || i >= h2pool_core::kStatCount)
    return 0;
  return stats->total[i];
}

size_t h2pool_stats_endpoint_count(const h2pool_stats *stats) {
  return stats ? stats->endpoints.size() : 0;
}

const char *h2pool_stats_endpoint_name(const h2pool_stats *stats,
                                       size_t index) {
  if (stats == nullptr || index >= stats->endpoint_names.size())
    return nullptr;
  return stats->endpoint_names[index].c_str();
}

uint64_t h2pool_stats_endpoint_value(const h2pool_stats *stats, size_t index,
                                     h2pool_stat which) {
  size_t i = size_t(which);
  if (stats == nullptr || index >= stats->endpoints.size() || int(which) < 0 ||
      i >= h2pool_core::kStatCount)
    return 0;
  return stats->endpoints[index][i];
}

int h2pool_stats_endpoint_state(const h2pool_stats *stats, size_t index) {
  if (stats == nullptr || index >= stats->endpoint_states.size())
    return H2POOL_ERR_INVALID_ARGUMENT;
  return stats->endpoint_states[index];
}

int h2pool_stats_endpoint_protocol(const h2pool_stats *stats, size_t index) {
  if (stats == nullptr || index >= stats->endpoint_protocols.size())
    return H2POOL_PROTOCOL_UNKNOWN;
  return stats->endpoint_protocols[index];
}

} // extern "C"
