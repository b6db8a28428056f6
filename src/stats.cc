// Read-only accessors over a statistics snapshot (public C API).
#include "stats.h"

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
