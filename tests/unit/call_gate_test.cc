// The gate h2pool_destroy() closes: enter/leave bookkeeping, the one caller
// that closes it, and that wait_drained() waits for a call still inside.
#include "call_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace h2pool_core {
namespace {

TEST(CallGate, EntersUntilClosedThenRefuses) {
  CallGate gate;
  EXPECT_FALSE(gate.closed());
  ASSERT_TRUE(gate.enter());
  gate.leave();
  EXPECT_TRUE(gate.close());
  EXPECT_TRUE(gate.closed());
  EXPECT_FALSE(gate.enter());
  gate.wait_drained(); // nobody inside: returns at once
}

TEST(CallGate, OnlyTheFirstCloseReportsClosing) {
  CallGate gate;
  EXPECT_TRUE(gate.close());
  EXPECT_FALSE(gate.close());
  EXPECT_FALSE(gate.close());
}

TEST(CallGate, GuardLeavesOnScopeExit) {
  CallGate gate;
  {
    GateGuard in(gate);
    EXPECT_TRUE(static_cast<bool>(in));
  }
  ASSERT_TRUE(gate.close());
  gate.wait_drained();
  GateGuard late(gate);
  EXPECT_FALSE(static_cast<bool>(late));
}

// A call inside when the gate closes holds wait_drained() until it leaves:
// the call leaves only once the gate is closed, and the waiter must not have
// returned before that leave.
TEST(CallGate, WaitDrainedWaitsForCallInside) {
  CallGate gate;
  ASSERT_TRUE(gate.enter());
  std::atomic<bool> left{false};
  std::atomic<bool> returned_before_leave{false};
  std::atomic<bool> returned{false};
  std::thread destroyer([&] {
    ASSERT_TRUE(gate.close());
    gate.wait_drained();
    returned_before_leave.store(!left.load());
    returned.store(true);
  });
  // Bounded wait for the close; then leave, as the call would.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!gate.closed() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_TRUE(gate.closed());
  EXPECT_FALSE(returned.load());
  left.store(true);
  gate.leave();
  destroyer.join();
  EXPECT_TRUE(returned.load());
  EXPECT_FALSE(returned_before_leave.load());
}

// Many callers entering and leaving while one thread closes and drains:
// after wait_drained() no caller is inside, and each enter() that succeeded
// was matched by a leave() before it.
TEST(CallGate, DrainSeesEveryCallerOut) {
  for (int round = 0; round < 200; ++round) {
    CallGate gate;
    std::atomic<int> inside{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
      callers.emplace_back([&] {
        while (!stop.load()) {
          if (!gate.enter())
            return;
          inside.fetch_add(1);
          inside.fetch_sub(1);
          gate.leave();
        }
      });
    ASSERT_TRUE(gate.close());
    gate.wait_drained();
    EXPECT_EQ(inside.load(), 0) << "round " << round;
    stop.store(true);
    for (auto &c : callers)
      c.join();
  }
}

} // namespace
} // namespace h2pool_core
