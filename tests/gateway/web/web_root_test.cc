#include "gateway/web/web_root.h"

#include <stdlib.h>

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/support/test_files.h"

namespace telestra::gateway {
namespace {

TEST(WebRootTest, FindsTheDashboardInTheTestsRunfiles) {
  // This test has //web as data: $TEST_SRCDIR/telestra/web/index.html.
  auto root = FindWebRoot("", "");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_TRUE(absl::EndsWith(*root, "/telestra/web")) << *root;
}

TEST(WebRootTest, AnExplicitFolderMustHoldIndexHtml) {
  const std::string runfiles_web = std::string(getenv("TEST_SRCDIR")) + "/telestra/web";
  auto root = FindWebRoot(runfiles_web, "");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(*root, runfiles_web);
  auto bad = FindWebRoot(telestra::testing::TestTempDir(), "");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "is not a folder holding index.html"));
}

TEST(WebRootTest, CandidatesEndWithTheWorkingDirectorysWeb) {
  auto candidates = WebRootCandidates("/opt/telestra/bin/telestra_gateway");
  ASSERT_GE(candidates.size(), 2u);
  EXPECT_EQ(candidates.back(), "web");
  bool has_argv0 = false;
  for (const auto& c : candidates) {
    has_argv0 |= c == "/opt/telestra/bin/telestra_gateway.runfiles/telestra/web";
  }
  EXPECT_TRUE(has_argv0);
}

}  // namespace
}  // namespace telestra::gateway
