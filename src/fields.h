// Response header fields kept in one buffer: names and values back to back,
// each value NUL-terminated. A response's fields then cost two allocations
// in all instead of two per field, and lookups need no temporary strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace h2pool_core {

class FieldList {
public:
  void add(std::string_view name, std::string_view value);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::string_view name(size_t i) const {
    return {buf_.data() + entries_[i].name_off, entries_[i].name_len};
  }
  // The value; its data() is NUL-terminated.
  std::string_view value(size_t i) const {
    return {buf_.data() + entries_[i].value_off, entries_[i].value_len};
  }
  // The first field named `name` (ASCII case-insensitive), or -1.
  long find(std::string_view name) const;
  // Every field named `name` (ASCII case-insensitive) as one value: their
  // values in order, joined with ", ", which is what RFC 9110 5.3 says
  // repeated field lines mean. Nothing when there is no such field.
  std::optional<std::string> joined(std::string_view name) const;
  // Drops every field whose name (exact, lower case) is one of `names`.
  void remove(std::initializer_list<std::string_view> names);
  void clear();
  void reserve(size_t bytes, size_t fields);
  // The heap memory held, used or not.
  size_t heap_bytes() const {
    return buf_.capacity() + entries_.capacity() * sizeof(Entry);
  }

private:
  struct Entry {
    uint32_t name_off, name_len, value_off, value_len;
  };
  bool named(const Entry &e, std::string_view name) const;
  std::string buf_;
  std::vector<Entry> entries_;
};

} // namespace h2pool_core
