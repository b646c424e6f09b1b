#include "backend/sip/call_leg.h"

#include <map>
#include <optional>
#include <utility>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

using S = CallState;
using E = CallEvent;

constexpr S kAllStates[] = {S::kCalling,   S::kEarly,     S::kIncoming,    S::kAnswering,
                            S::kHangingUp, S::kConfirmed, S::kTerminating, S::kTerminated};
constexpr E kAllEvents[] = {E::kProvisional, E::kAnswer, E::kConfirm, E::kHangup, E::kBye, E::kEnd};

// The whole machine, as call_leg.h's comment lists it.
const std::map<std::pair<S, E>, S>& ValidTransitions() {
  static const auto* table = new std::map<std::pair<S, E>, S>{
      {{S::kCalling, E::kProvisional}, S::kEarly},
      {{S::kEarly, E::kProvisional}, S::kEarly},
      {{S::kHangingUp, E::kProvisional}, S::kHangingUp},
      {{S::kIncoming, E::kAnswer}, S::kAnswering},
      {{S::kCalling, E::kConfirm}, S::kConfirmed},
      {{S::kEarly, E::kConfirm}, S::kConfirmed},
      {{S::kAnswering, E::kConfirm}, S::kConfirmed},
      {{S::kHangingUp, E::kConfirm}, S::kConfirmed},
      {{S::kCalling, E::kHangup}, S::kHangingUp},
      {{S::kEarly, E::kHangup}, S::kHangingUp},
      {{S::kIncoming, E::kHangup}, S::kHangingUp},
      {{S::kAnswering, E::kHangup}, S::kHangingUp},
      {{S::kConfirmed, E::kBye}, S::kTerminating},
      {{S::kTerminating, E::kBye}, S::kTerminating},
      {{S::kTerminated, E::kBye}, S::kTerminated},
      {{S::kCalling, E::kEnd}, S::kTerminated},
      {{S::kEarly, E::kEnd}, S::kTerminated},
      {{S::kIncoming, E::kEnd}, S::kTerminated},
      {{S::kAnswering, E::kEnd}, S::kTerminated},
      {{S::kHangingUp, E::kEnd}, S::kTerminated},
      {{S::kConfirmed, E::kEnd}, S::kTerminated},
      {{S::kTerminating, E::kEnd}, S::kTerminated},
  };
  return *table;
}

TEST(CallLegTest, EveryListedTransitionLeadsWhereTheCommentSays) {
  for (const auto& [from_event, to] : ValidTransitions()) {
    std::optional<S> next = NextCallState(from_event.first, from_event.second);
    ASSERT_TRUE(next.has_value()) << CallStateName(from_event.first) << " event "
                                  << static_cast<int>(from_event.second);
    EXPECT_EQ(*next, to) << CallStateName(from_event.first);
  }
}

TEST(CallLegTest, EveryOtherTransitionIsRefused) {
  int refused = 0;
  for (S state : kAllStates) {
    for (E event : kAllEvents) {
      if (ValidTransitions().count({state, event}) != 0) continue;
      EXPECT_FALSE(NextCallState(state, event).has_value())
          << CallStateName(state) << " event " << static_cast<int>(event);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 8 * 6 - static_cast<int>(ValidTransitions().size()));
}

TEST(CallLegTest, OutgoingCallRingsIsAnsweredAndHungUpByUs) {
  S s = S::kCalling;
  s = *NextCallState(s, E::kProvisional);
  EXPECT_EQ(s, S::kEarly);
  s = *NextCallState(s, E::kConfirm);
  EXPECT_TRUE(IsEstablished(s));
  EXPECT_FALSE(IsHangingUp(s));
  s = *NextCallState(s, E::kBye);
  EXPECT_EQ(s, S::kTerminating);
  EXPECT_TRUE(IsEstablished(s));
  EXPECT_TRUE(IsHangingUp(s));
  s = *NextCallState(s, E::kEnd);
  EXPECT_EQ(s, S::kTerminated);
  EXPECT_FALSE(IsEstablished(s));
}

TEST(CallLegTest, IncomingCallCannotBeAnsweredTwiceNorAfterHangup) {
  S s = *NextCallState(S::kIncoming, E::kAnswer);
  EXPECT_EQ(s, S::kAnswering);
  EXPECT_FALSE(NextCallState(s, E::kAnswer).has_value());
  EXPECT_FALSE(NextCallState(S::kHangingUp, E::kAnswer).has_value());
  EXPECT_FALSE(NextCallState(S::kCalling, E::kAnswer).has_value());  // outgoing
}

TEST(CallLegTest, TwoXxCrossingOurCancelConfirmsThenByeEnds) {
  S s = *NextCallState(S::kEarly, E::kHangup);
  EXPECT_TRUE(IsHangingUp(s));
  EXPECT_FALSE(IsEstablished(s));
  s = *NextCallState(s, E::kConfirm);
  EXPECT_EQ(s, S::kConfirmed);
  EXPECT_EQ(*NextCallState(s, E::kBye), S::kTerminating);
}

TEST(CallLegTest, NothingButALateByeMovesAnEndedCall) {
  for (E event : kAllEvents) {
    std::optional<S> next = NextCallState(S::kTerminated, event);
    if (event == E::kBye) {
      EXPECT_EQ(next, S::kTerminated);
    } else {
      EXPECT_FALSE(next.has_value()) << static_cast<int>(event);
    }
  }
}

TEST(CallLegTest, EveryStateHasAName) {
  for (S state : kAllStates) EXPECT_STRNE(CallStateName(state), "?");
}

}  // namespace
}  // namespace telestra::backend
