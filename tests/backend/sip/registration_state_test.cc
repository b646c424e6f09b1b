#include "backend/sip/registration_state.h"

#include <map>
#include <optional>
#include <utility>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

using S = RegistrationState;
using E = RegistrationEvent;

constexpr S kAllStates[] = {S::kUnregistered, S::kRegistering, S::kRegistered,   S::kRefreshing,
                            S::kRetrying,     S::kFailed,      S::kUnregistering};
constexpr E kAllEvents[] = {E::kRegister, E::kOk,         E::kRefresh,       E::kTransientFailure,
                            E::kFailure,  E::kUnregister, E::kUnregisterDone};

// The machine as registration_state.h's comment lists it.
const std::map<std::pair<S, E>, S>& ValidTransitions() {
  static const auto* table = new std::map<std::pair<S, E>, S>{
      {{S::kUnregistered, E::kRegister}, S::kRegistering},
      {{S::kRegistering, E::kRegister}, S::kRegistering},
      {{S::kRetrying, E::kRegister}, S::kRegistering},
      {{S::kFailed, E::kRegister}, S::kRegistering},
      {{S::kRegistering, E::kOk}, S::kRegistered},
      {{S::kRefreshing, E::kOk}, S::kRegistered},
      {{S::kRegistered, E::kRefresh}, S::kRefreshing},
      {{S::kRegistering, E::kTransientFailure}, S::kRetrying},
      {{S::kRefreshing, E::kTransientFailure}, S::kRetrying},
      {{S::kRegistering, E::kFailure}, S::kFailed},
      {{S::kRefreshing, E::kFailure}, S::kFailed},
      {{S::kRegistered, E::kUnregister}, S::kUnregistering},
      {{S::kRefreshing, E::kUnregister}, S::kUnregistering},
      {{S::kUnregistering, E::kUnregisterDone}, S::kUnregistered},
  };
  return *table;
}

TEST(RegistrationStateTest, EveryListedTransitionLeadsWhereTheCommentSays) {
  for (const auto& [from_event, to] : ValidTransitions()) {
    std::optional<S> next = NextRegistrationState(from_event.first, from_event.second);
    ASSERT_TRUE(next.has_value()) << RegistrationStateName(from_event.first);
    EXPECT_EQ(*next, to) << RegistrationStateName(from_event.first);
  }
}

TEST(RegistrationStateTest, EveryOtherTransitionIsRefused) {
  for (S state : kAllStates) {
    for (E event : kAllEvents) {
      if (ValidTransitions().count({state, event}) != 0) continue;
      EXPECT_FALSE(NextRegistrationState(state, event).has_value())
          << RegistrationStateName(state) << " event " << static_cast<int>(event);
    }
  }
}

TEST(RegistrationStateTest, LoginRefreshAndLogout) {
  S s = *NextRegistrationState(S::kUnregistered, E::kRegister);
  s = *NextRegistrationState(s, E::kOk);
  EXPECT_EQ(s, S::kRegistered);
  EXPECT_TRUE(IsBound(s));
  s = *NextRegistrationState(s, E::kRefresh);
  EXPECT_TRUE(IsBound(s));  // calls still come in while refreshing
  s = *NextRegistrationState(s, E::kOk);
  s = *NextRegistrationState(s, E::kUnregister);
  EXPECT_TRUE(IsBound(s));
  s = *NextRegistrationState(s, E::kUnregisterDone);
  EXPECT_EQ(s, S::kUnregistered);
  EXPECT_FALSE(IsBound(s));
}

TEST(RegistrationStateTest, AFailureForGoodWaitsForANewLogin) {
  S s = *NextRegistrationState(S::kRegistering, E::kFailure);
  EXPECT_EQ(s, S::kFailed);
  EXPECT_FALSE(IsBound(s));
  EXPECT_FALSE(NextRegistrationState(s, E::kRefresh).has_value());
  EXPECT_FALSE(NextRegistrationState(s, E::kUnregister).has_value());
  EXPECT_EQ(NextRegistrationState(s, E::kRegister), S::kRegistering);
}

TEST(RegistrationStateTest, RetryDelayDoublesUpToTheMaximum) {
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(1, 2, 120, 1.0), 2);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(2, 2, 120, 1.0), 4);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(3, 2, 120, 1.0), 8);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(6, 2, 120, 1.0), 64);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(7, 2, 120, 1.0), 120);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(1000, 2, 120, 1.0), 120);  // no overflow
}

TEST(RegistrationStateTest, RetryDelayJitterStaysWithinTwentyPercent) {
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(3, 2, 120, 0.8), 6.4);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(3, 2, 120, 1.2), 9.6);
  EXPECT_DOUBLE_EQ(RetryDelaySeconds(7, 2, 120, 1.2), 144);  // jitter also on the cap
}

TEST(RegistrationStateTest, EveryStateHasAName) {
  for (S state : kAllStates) EXPECT_STRNE(RegistrationStateName(state), "?");
}

}  // namespace
}  // namespace telestra::backend
