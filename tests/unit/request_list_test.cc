#include "request.h"

#include <gtest/gtest.h>

namespace h2pool_core {
namespace {

TEST(RequestList, FifoOrderAndFrontInsertion) {
  Request a, b, c;
  RequestList list;
  list.push_back(&a);
  list.push_back(&b);
  list.push_front(&c);
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(list.pop_front(), &c);
  EXPECT_EQ(list.pop_front(), &a);
  EXPECT_EQ(list.pop_front(), &b);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.pop_front(), nullptr);
}

TEST(RequestList, RemoveFromMiddleAndEnds) {
  Request a, b, c;
  RequestList list;
  for (Request *r : {&a, &b, &c})
    list.push_back(r);
  list.remove(&b);
  EXPECT_FALSE(list.contains(&b));
  EXPECT_TRUE(list.contains(&a));
  list.remove(&c);
  list.remove(&a);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.size(), 0u);
  // A removed request can join another list.
  RequestList other;
  other.push_back(&b);
  EXPECT_TRUE(other.contains(&b));
  EXPECT_FALSE(list.contains(&b));
  other.remove(&b);
}

} // namespace
} // namespace h2pool_core
