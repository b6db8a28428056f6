#include "id_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

namespace h2pool_core {
namespace {

// Distinct addresses to store, one per id (modulo the size).
std::vector<int> storage(1 << 16);
int *value_for(uint64_t id) { return &storage[id % storage.size()]; }

// The first `n` ids above `after` that hash to slot `slot` of `map`.
std::vector<uint64_t> ids_in_bucket(const IdMap<int> &map, size_t slot,
                                    size_t n, uint64_t after = 0) {
  std::vector<uint64_t> ids;
  for (uint64_t id = after + 1; ids.size() < n; ++id)
    if (map.bucket(id) == slot)
      ids.push_back(id);
  return ids;
}

TEST(IdMap, InsertFindErase) {
  IdMap<int> map;
  EXPECT_TRUE(map.empty());
  map.insert(1, value_for(1));
  map.insert(2, value_for(2));
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(map.find(1), value_for(1));
  EXPECT_EQ(map.find(2), value_for(2));
  EXPECT_EQ(map.erase(1), value_for(1));
  EXPECT_EQ(map.find(1), nullptr);
  EXPECT_EQ(map.find(2), value_for(2));
  EXPECT_EQ(map.size(), 1u);
}

TEST(IdMap, AbsentIdsAreNotFound) {
  IdMap<int> map;
  EXPECT_EQ(map.find(7), nullptr);
  EXPECT_EQ(map.erase(7), nullptr);
  map.insert(7, value_for(7));
  EXPECT_EQ(map.find(8), nullptr);
  EXPECT_EQ(map.erase(8), nullptr);
  EXPECT_EQ(map.find(0), nullptr);
  EXPECT_EQ(map.size(), 1u);
}

TEST(IdMap, EraseInRunThatWrapsAroundTheTableEnd) {
  IdMap<int> probe;
  probe.insert(1, value_for(1)); // allocates the smallest table
  const size_t capacity = probe.capacity();
  const size_t last = capacity - 1;
  // Three ids homed in the last slot spill over into slots 0 and 1; an id
  // homed in slot 0 then sits behind them at slot 2, one homed in slot 1 at
  // slot 3, and one homed in the second-to-last slot stays home.
  std::vector<uint64_t> ids = ids_in_bucket(probe, last, 3);
  ids.push_back(ids_in_bucket(probe, 0, 1)[0]);
  ids.push_back(ids_in_bucket(probe, 1, 1)[0]);
  ids.push_back(ids_in_bucket(probe, last - 1, 1)[0]);
  ASSERT_LE(ids.size() * 2, capacity); // no growth: the run stays as built

  // Every order of erasure must leave every other id reachable.
  std::vector<size_t> order(ids.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  size_t orders = 0;
  do {
    IdMap<int> map;
    for (uint64_t id : ids)
      map.insert(id, value_for(id));
    ASSERT_EQ(map.capacity(), capacity);
    for (size_t k = 0; k < order.size(); ++k) {
      uint64_t gone = ids[order[k]];
      ASSERT_EQ(map.erase(gone), value_for(gone));
      for (size_t m = 0; m < order.size(); ++m) {
        uint64_t id = ids[order[m]];
        ASSERT_EQ(map.find(id), m <= k ? nullptr : value_for(id))
            << "id " << id << " after erasing " << k + 1 << " ids";
      }
    }
    EXPECT_TRUE(map.empty());
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(orders, 720u);
}

TEST(IdMap, ReinsertAfterEraseInCollisionRun) {
  IdMap<int> map;
  map.insert(1, value_for(1));
  std::vector<uint64_t> ids = ids_in_bucket(map, 5, 4);
  for (uint64_t id : ids)
    map.insert(id, value_for(id));
  map.erase(ids[1]);
  map.insert(ids[1], value_for(ids[1]));
  map.erase(ids[0]);
  for (size_t i = 1; i < ids.size(); ++i)
    EXPECT_EQ(map.find(ids[i]), value_for(ids[i]));
  EXPECT_EQ(map.find(ids[0]), nullptr);
  EXPECT_EQ(map.size(), 4u);
}

TEST(IdMap, GrowsKeepingEveryEntry) {
  IdMap<int> map;
  const uint64_t n = 10000;
  for (uint64_t id = 1; id <= n; ++id) {
    map.insert(id, value_for(id));
    ASSERT_LE(map.size() * 2, map.capacity());
  }
  EXPECT_EQ(map.size(), n);
  EXPECT_EQ(map.capacity() & (map.capacity() - 1), 0u); // a power of two
  for (uint64_t id = 1; id <= n; ++id)
    ASSERT_EQ(map.find(id), value_for(id));
  EXPECT_EQ(map.find(n + 1), nullptr);
}

TEST(IdMap, ChurnThroughSequentialIdsDoesNotGrowTheTable) {
  // A pool's pattern: ids from a counter, a bounded number in flight.
  IdMap<int> map;
  const uint64_t in_flight = 400;
  for (uint64_t id = 1; id <= in_flight; ++id)
    map.insert(id, value_for(id));
  const size_t capacity = map.capacity();
  for (uint64_t id = in_flight + 1; id <= 200000; ++id) {
    ASSERT_EQ(map.erase(id - in_flight), value_for(id - in_flight));
    map.insert(id, value_for(id));
  }
  EXPECT_EQ(map.capacity(), capacity);
  EXPECT_EQ(map.size(), in_flight);
  for (uint64_t id = 200000 - in_flight + 1; id <= 200000; ++id)
    ASSERT_EQ(map.find(id), value_for(id));
}

TEST(IdMap, ForEachVisitsEveryEntryOnce) {
  IdMap<int> map;
  for (uint64_t id = 1; id <= 100; ++id)
    map.insert(id * 3, value_for(id * 3));
  std::vector<uint64_t> seen;
  map.for_each([&](uint64_t id, int *value) {
    EXPECT_EQ(value, value_for(id));
    seen.push_back(id);
  });
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i)
    EXPECT_EQ(seen[i], (i + 1) * 3);
}

TEST(IdMap, ClearEmptiesTheMap) {
  IdMap<int> map;
  for (uint64_t id = 1; id <= 50; ++id)
    map.insert(id, value_for(id));
  map.clear();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.find(10), nullptr);
  size_t visited = 0;
  map.for_each([&](uint64_t, int *) { ++visited; });
  EXPECT_EQ(visited, 0u);
  map.insert(10, value_for(10));
  EXPECT_EQ(map.find(10), value_for(10));
}

TEST(IdMap, RandomOperationsAgreeWithUnorderedMap) {
  std::mt19937_64 rng(20240611);
  // A small id range, so inserts, erases and lookups hit each other often
  // and runs form and break up all over the table.
  std::uniform_int_distribution<uint64_t> pick_id(1, 3000);
  std::uniform_int_distribution<int> pick_op(0, 9);
  IdMap<int> map;
  std::unordered_map<uint64_t, int *> model;
  for (int step = 0; step < 300000; ++step) {
    uint64_t id = pick_id(rng);
    int op = pick_op(rng);
    if (op < 4) {
      if (model.count(id) == 0) {
        map.insert(id, value_for(id));
        model[id] = value_for(id);
      }
    } else if (op < 8) {
      auto it = model.find(id);
      int *expected = it == model.end() ? nullptr : it->second;
      ASSERT_EQ(map.erase(id), expected) << "step " << step;
      if (it != model.end())
        model.erase(it);
    } else {
      auto it = model.find(id);
      ASSERT_EQ(map.find(id), it == model.end() ? nullptr : it->second)
          << "step " << step;
    }
    ASSERT_EQ(map.size(), model.size());
    if (step % 10000 == 0) {
      size_t visited = 0;
      map.for_each([&](uint64_t key, int *value) {
        ++visited;
        ASSERT_EQ(model.at(key), value);
      });
      ASSERT_EQ(visited, model.size());
    }
  }
  for (const auto &[id, value] : model)
    ASSERT_EQ(map.find(id), value);
}

} // namespace
} // namespace h2pool_core
