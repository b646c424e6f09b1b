#include "backend/sip/inbound_policy.h"

#include <string>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

namespace ip = boost::asio::ip;

const std::string kAccount = "account-1";

TEST(InboundPolicyTest, OnlyTheAccountsRegistrarMayStartDialogs) {
  InboundPolicy policy(NetworkList(), 16);
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("127.0.0.1"), &kAccount));  // unknown yet
  policy.SetRegistrar(kAccount, "127.0.0.1:5060");  // numeric: known at once
  EXPECT_TRUE(policy.MayStartDialog(ip::make_address("127.0.0.1"), &kAccount));
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("127.0.0.2"), &kAccount));
  const std::string other = "account-2";
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("127.0.0.1"), &other));
  // No known account: any registrar (gets 404), strangers not (403).
  EXPECT_TRUE(policy.MayStartDialog(ip::make_address("127.0.0.1"), nullptr));
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("127.0.0.2"), nullptr));
  EXPECT_FALSE(policy.MayStartDialog(ip::address(), nullptr));
}

TEST(InboundPolicyTest, ARegistrarNameIsKnownByTheAddressesItAnsweredFrom) {
  InboundPolicy policy(NetworkList(), 16);
  policy.SetRegistrar(kAccount, "pbx.example:5060");
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("192.0.2.10"), &kAccount));
  policy.LearnRegistrar(kAccount, ip::make_address("192.0.2.10"));
  EXPECT_TRUE(policy.MayStartDialog(ip::make_address("192.0.2.10"), &kAccount));
  // The same server again keeps them; a new server forgets them.
  policy.SetRegistrar(kAccount, "pbx.example:5060");
  EXPECT_TRUE(policy.MayStartDialog(ip::make_address("192.0.2.10"), &kAccount));
  policy.SetRegistrar(kAccount, "other.example:5060");
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("192.0.2.10"), &kAccount));
  policy.LearnRegistrar(kAccount, ip::make_address("192.0.2.20"));
  policy.ForgetAccount(kAccount);
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("192.0.2.20"), &kAccount));
}

TEST(InboundPolicyTest, AtMostEightAddressesAreKeptTheOldestGoingFirst) {
  InboundPolicy policy(NetworkList(), 16);
  policy.SetRegistrar(kAccount, "pbx.example");
  for (int i = 1; i <= 9; ++i) {
    policy.LearnRegistrar(kAccount, ip::make_address("192.0.2." + std::to_string(i)));
  }
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("192.0.2.1"), &kAccount));
  for (int i = 2; i <= 9; ++i) {
    EXPECT_TRUE(policy.MayStartDialog(ip::make_address("192.0.2." + std::to_string(i)), &kAccount));
  }
}

TEST(InboundPolicyTest, TrustedNetworksMayStartDialogsWithAnyAccount) {
  InboundPolicy policy(*NetworkList::Parse({"10.0.0.0/8"}), 16);
  EXPECT_TRUE(policy.MayStartDialog(ip::make_address("10.1.2.3"), &kAccount));
  EXPECT_TRUE(policy.MayStartDialog(ip::make_address("10.1.2.3"), nullptr));
  EXPECT_FALSE(policy.MayStartDialog(ip::make_address("11.0.0.1"), &kAccount));
}

TEST(InboundPolicyTest, RingingCallsAreCappedPerAccount) {
  InboundPolicy policy(NetworkList(), 2);
  EXPECT_TRUE(policy.MayRing(kAccount));
  policy.StartRinging(kAccount);
  policy.StartRinging(kAccount);
  EXPECT_FALSE(policy.MayRing(kAccount));
  EXPECT_TRUE(policy.MayRing("account-2"));
  policy.StopRinging(kAccount);
  EXPECT_TRUE(policy.MayRing(kAccount));
  policy.StopRinging(kAccount);
  policy.StopRinging(kAccount);  // never below zero
  policy.StartRinging(kAccount);
  policy.StartRinging(kAccount);
  EXPECT_FALSE(policy.MayRing(kAccount));
}

}  // namespace
}  // namespace telestra::backend
