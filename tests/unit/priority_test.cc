#include "priority.h"

#include <gtest/gtest.h>

#include <vector>

namespace h2pool_core {
namespace {

Priority P(uint8_t u, bool i) { return Priority{u, i}; }

TEST(PriorityField, FormatsUrgencyAndIncremental) {
  EXPECT_EQ(format_priority(P(0, false)), "u=0");
  EXPECT_EQ(format_priority(P(7, true)), "u=7, i");
  EXPECT_EQ(format_priority(Priority{}), "u=3");
}

TEST(PriorityField, ParsesWhatItFormats) {
  for (uint8_t u = 0; u < kUrgencyLevels; ++u)
    for (bool i : {false, true})
      EXPECT_EQ(parse_priority(format_priority(P(u, i))), P(u, i));
}

TEST(PriorityField, ParsesDictionaryForms) {
  EXPECT_EQ(parse_priority(""), Priority{});
  EXPECT_EQ(parse_priority("i"), P(3, true));
  EXPECT_EQ(parse_priority("i=?1"), P(3, true));
  EXPECT_EQ(parse_priority("u=5,i=?0"), P(5, false));
  EXPECT_EQ(parse_priority("  u=1 ,\ti"), P(1, true));
  // Unknown members, parameters and item types are skipped.
  EXPECT_EQ(parse_priority("x=\"a, b\", u=2;p=1, y=(1 2), z=:AQ==:, i"),
            P(2, true));
  EXPECT_EQ(parse_priority("u=6, w=1.5, t=tok/en"), P(6, false));
  // The last occurrence of a key wins.
  EXPECT_EQ(parse_priority("u=1, u=4"), P(4, false));
}

TEST(PriorityField, InvalidMembersKeepTheirDefaults) {
  // Out of range or of the wrong type: that member is ignored.
  EXPECT_EQ(parse_priority("u=8, i"), P(3, true));
  EXPECT_EQ(parse_priority("u=-1"), Priority{});
  EXPECT_EQ(parse_priority("u=1.0"), Priority{});
  EXPECT_EQ(parse_priority("u, i=2"), Priority{});
  EXPECT_EQ(parse_priority("u=1, u=9"), Priority{});
  // Not a dictionary at all: the whole field is ignored.
  EXPECT_EQ(parse_priority("U=1"), Priority{});
  EXPECT_EQ(parse_priority("u=1,"), Priority{});
  EXPECT_EQ(parse_priority("u=1 i"), Priority{});
  EXPECT_EQ(parse_priority("u=\"1"), Priority{});
  EXPECT_EQ(parse_priority("u=1234567890123456"), Priority{});
}

std::vector<Request *> drain(PriorityQueue &q) {
  std::vector<Request *> out;
  while (Request *r = q.pop_front())
    out.push_back(r);
  return out;
}

TEST(PriorityQueue, MostUrgentFirstFifoWithin) {
  Request a, b, c, d, e;
  a.urgency = 7;
  b.urgency = 3;
  c.urgency = 7;
  d.urgency = 0;
  e.urgency = 3;
  PriorityQueue q;
  for (Request *r : {&a, &b, &c, &d, &e})
    q.push_back(r);
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.front(), &d);
  std::vector<Request *> order;
  q.for_each([&](Request *r) { order.push_back(r); });
  std::vector<Request *> want{&d, &b, &e, &a, &c};
  EXPECT_EQ(order, want);
  EXPECT_EQ(drain(q), want);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.front(), nullptr);
  EXPECT_EQ(q.pop_front(), nullptr);
}

TEST(PriorityQueue, PushFrontStaysWithinItsUrgency) {
  // A retried request goes back to the front of its own urgency, not ahead
  // of more urgent ones.
  Request urgent, bulk1, bulk2, retried;
  urgent.urgency = 0;
  bulk1.urgency = bulk2.urgency = retried.urgency = 7;
  PriorityQueue q;
  q.push_back(&bulk1);
  q.push_back(&urgent);
  q.push_back(&bulk2);
  q.push_front(&retried);
  std::vector<Request *> want{&urgent, &retried, &bulk1, &bulk2};
  EXPECT_EQ(drain(q), want);
}

TEST(PriorityQueue, RemoveAndContains) {
  Request a, b, c;
  a.urgency = 1;
  b.urgency = 1;
  c.urgency = 5;
  PriorityQueue q;
  for (Request *r : {&a, &b, &c})
    q.push_back(r);
  EXPECT_TRUE(q.contains(&b));
  q.remove(&b);
  EXPECT_FALSE(q.contains(&b));
  EXPECT_EQ(q.size(), 2u);
  // Found by the list it is in, even after its urgency changed.
  c.urgency = 0;
  q.remove(&c);
  EXPECT_EQ(q.size(), 1u);
  // Re-queued at its new urgency, it goes ahead.
  q.push_back(&c);
  std::vector<Request *> want{&c, &a};
  EXPECT_EQ(drain(q), want);
  // Out of the queue, a request can join a plain list.
  RequestList other;
  other.push_back(&b);
  EXPECT_FALSE(q.contains(&b));
  other.remove(&b);
}

} // namespace
} // namespace h2pool_core
