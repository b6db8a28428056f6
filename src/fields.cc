#include "fields.h"

#include <strings.h>

#include <algorithm>

namespace h2pool_core {

void FieldList::add(std::string_view name, std::string_view value) {
  Entry e;
  e.name_off = uint32_t(buf_.size());
  e.name_len = uint32_t(name.size());
  buf_.append(name);
  e.value_off = uint32_t(buf_.size());
  e.value_len = uint32_t(value.size());
  buf_.append(value);
  buf_.push_back('\0');
  entries_.push_back(e);
}

bool FieldList::named(const Entry &e, std::string_view name) const {
  return e.name_len == name.size() &&
         strncasecmp(buf_.data() + e.name_off, name.data(), name.size()) == 0;
}

long FieldList::find(std::string_view name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (named(entries_[i], name))
      return long(i);
  return -1;
}

std::optional<std::string> FieldList::joined(std::string_view name) const {
  std::optional<std::string> out;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!named(entries_[i], name))
      continue;
    if (out)
      out->append(", ");
    else
      out.emplace();
    out->append(value(i));
  }
  return out;
}

void FieldList::remove(std::initializer_list<std::string_view> names) {
  // Only the index entries go; their bytes stay in the buffer, unused.
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry &e) {
                                  std::string_view n(buf_.data() + e.name_off,
                                                     e.name_len);
                                  return std::find(names.begin(), names.end(),
                                                   n) != names.end();
                                }),
                 entries_.end());
}

void FieldList::clear() {
  buf_.clear();
  entries_.clear();
}

void FieldList::reserve(size_t bytes, size_t fields) {
  buf_.reserve(bytes);
  entries_.reserve(fields);
}

} // namespace h2pool_core
