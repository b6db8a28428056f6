// A map from request id to the object that carries it, for the pool's
// bookkeeping of outstanding requests.
//
// Open addressing with linear probing in one flat array: inserting and
// erasing never allocate (only growth does), and a lookup touches one or two
// adjacent slots. Erasure shifts the rest of the probe run back instead of
// leaving tombstones, so a long-lived pool that churns through millions of
// ids never degrades and never needs a cleanup rehash.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace h2pool_core {

template <typename T> class IdMap {
public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return slots_.size(); }

  // The value stored under `id`, or null.
  T *find(uint64_t id) const {
    if (size_ == 0 || id == 0)
      return nullptr;
    for (size_t i = bucket(id);; i = (i + 1) & mask_) {
      const Slot &s = slots_[i];
      if (s.id == id)
        return s.value;
      if (s.id == 0)
        return nullptr;
    }
  }

  // Stores `value` under `id`, which must be non-zero and absent. Only
  // growth allocates; if it throws, the map is unchanged.
  void insert(uint64_t id, T *value) {
    assert(id != 0 && value != nullptr && find(id) == nullptr);
    // Keeping the load at or below one half keeps probe runs short even when
    // the ids do not arrive in order.
    if ((size_ + 1) * 2 > slots_.size())
      grow();
    place(id, value);
    ++size_;
  }

  // Removes `id`; returns what was stored under it, or null if absent.
  T *erase(uint64_t id) {
    if (size_ == 0 || id == 0)
      return nullptr;
    size_t i = bucket(id);
    while (slots_[i].id != id) {
      if (slots_[i].id == 0)
        return nullptr;
      i = (i + 1) & mask_;
    }
    T *value = slots_[i].value;
    // Backward shift: every later entry of the run whose home slot is not
    // in (i, j] would be cut off from its home by the hole at i, so it moves
    // into the hole, which moves to where it was.
    for (size_t j = (i + 1) & mask_; slots_[j].id != 0; j = (j + 1) & mask_) {
      size_t home = bucket(slots_[j].id);
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return value;
  }

  void clear() {
    for (Slot &s : slots_)
      s = Slot{};
    size_ = 0;
  }

  // Calls `fn(id, value)` for every entry, in no particular order. `fn` must
  // not insert or erase: erasure moves entries between slots.
  template <typename Fn> void for_each(Fn &&fn) const {
    for (const Slot &s : slots_)
      if (s.id != 0)
        fn(s.id, s.value);
  }

  // The slot `id` hashes to. Public for tests that build collision runs.
  size_t bucket(uint64_t id) const {
    // Fibonacci hashing: sequential ids (the common case) spread evenly
    // over the table, and so do ids with a common stride, which the low
    // bits alone would pile onto one slot.
    return size_t((id * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }

private:
  struct Slot {
    uint64_t id = 0; // 0: empty (request ids start at 1)
    T *value = nullptr;
  };

  void place(uint64_t id, T *value) {
    size_t i = bucket(id);
    while (slots_[i].id != 0)
      i = (i + 1) & mask_;
    slots_[i] = Slot{id, value};
  }

  void grow() {
    size_t capacity = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    shift_ = 64;
    for (size_t c = capacity; c > 1; c >>= 1)
      --shift_;
    for (const Slot &s : old)
      if (s.id != 0)
        place(s.id, s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 63; // 64 - log2(capacity); any value < 64 while empty
  size_t size_ = 0;
};

} // namespace h2pool_core
