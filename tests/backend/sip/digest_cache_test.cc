#include "backend/sip/digest_cache.h"

#include <sofia-sip/sip_header.h>

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

AccountConfig Account(const std::string& password = "sip3001") {
  AccountConfig account;
  account.name = "account-1";
  account.user = "3001";
  account.password = password;
  account.server = "127.0.0.1:5060";
  return account;
}

class DigestCacheTest : public ::testing::Test {
 protected:
  ~DigestCacheTest() override { su_home_deinit(home_); }

  const msg_auth_t* Challenge(const std::string& value) {
    return sip_proxy_authenticate_make(home_, value.c_str());
  }
  std::string Header(DigestCache& cache, const AccountConfig& account) {
    const sip_header_t* header =
        cache.Credentials(account, "INVITE", "sip:3002@127.0.0.1:5060", home_);
    if (header == nullptr) return "";
    char buffer[1024];
    sip_header_e(buffer, sizeof(buffer), header, 0);
    return buffer;
  }

  su_home_t home_[1] = {SU_HOME_INIT(home_)};
};

TEST_F(DigestCacheTest, AnswersTheRememberedChallengeWithTheAccountsCredentials) {
  DigestCache cache;
  EXPECT_EQ(Header(cache, Account()), "");  // nothing remembered yet
  ASSERT_TRUE(cache.Remember(
      Account(), Challenge("Digest realm=\"telestra\", nonce=\"abc\", qop=\"auth\""), true));
  EXPECT_EQ(cache.realm(), "telestra");
  std::string header = Header(cache, Account());
  EXPECT_TRUE(absl::StartsWith(header, "Proxy-Authorization: Digest ")) << header;
  EXPECT_TRUE(absl::StrContains(header, "username=\"3001\"")) << header;
  EXPECT_TRUE(absl::StrContains(header, "realm=\"telestra\"")) << header;
  EXPECT_TRUE(absl::StrContains(header, "nonce=\"abc\"")) << header;
  EXPECT_TRUE(absl::StrContains(header, "nc=00000001")) << header;
  EXPECT_FALSE(absl::StrContains(header, "sip3001")) << header;  // never the password
  EXPECT_TRUE(absl::StrContains(Header(cache, Account()), "nc=00000002"));
}

TEST_F(DigestCacheTest, ANewPasswordMakesItStale) {
  DigestCache cache;
  ASSERT_TRUE(cache.Remember(Account(), Challenge("Digest realm=\"r\", nonce=\"n\""), true));
  EXPECT_TRUE(cache.MadeFor(Account()));
  EXPECT_FALSE(cache.MadeFor(Account("other")));
  EXPECT_EQ(Header(cache, Account("other")), "");
}

TEST_F(DigestCacheTest, RealmsAreReadUnquoted) {
  EXPECT_EQ(DigestCache::RealmOf(Challenge("Digest realm=\"a b\", nonce=\"n\"")), "a b");
  EXPECT_EQ(DigestCache::RealmOf(Challenge("Digest realm=plain, nonce=\"n\"")), "plain");
  EXPECT_EQ(DigestCache::RealmOf(Challenge("Digest nonce=\"n\"")), "");
  EXPECT_EQ(DigestCache::ChallengeOf(401, nullptr), nullptr);
}

}  // namespace
}  // namespace telestra::backend
