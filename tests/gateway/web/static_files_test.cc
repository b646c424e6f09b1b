#include "gateway/web/static_files.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/test_files.h"

namespace telestra::gateway {
namespace {

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = telestra::testing::TestTempDir() + "/static.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ + "/web";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/docs").c_str(), 0755), 0);
    Write(root_ + "/index.html", "<!doctype html>");
    Write(root_ + "/app.js", "export {};");
    Write(root_ + "/docs/index.html", "docs");
    Write(root_ + "/.secret", "hidden");
    Write(base_ + "/outside.txt", "outside");
    // Bazel's runfiles are symbolic links: they must be served.
    ASSERT_EQ(symlink((base_ + "/outside.txt").c_str(), (root_ + "/linked.txt").c_str()), 0);
  }

  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  std::string base_;
  std::string root_;
};

TEST_F(StaticFilesTest, ServesFilesAndIndexesWithTypes) {
  StaticFiles files(root_);
  auto index = files.Resolve("/");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->path, root_ + "/index.html");
  EXPECT_EQ(index->mime_type, "text/html; charset=utf-8");
  EXPECT_EQ(index->size, 15u);
  EXPECT_EQ(index->etag.rfind("W/\"", 0), 0u);
  auto script = files.Resolve("/app.js");
  ASSERT_TRUE(script.ok());
  EXPECT_EQ(script->mime_type, "text/javascript; charset=utf-8");
  auto docs = files.Resolve("/docs/");
  ASSERT_TRUE(docs.ok());
  EXPECT_EQ(docs->path, root_ + "/docs/index.html");
  EXPECT_TRUE(files.Resolve("//app.js").ok());
  EXPECT_TRUE(files.Resolve("/linked.txt").ok());
}

TEST_F(StaticFilesTest, AFolderWithoutTheSlashAsksForARedirect) {
  StaticFiles files(root_);
  EXPECT_EQ(files.Resolve("/docs").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StaticFilesTest, RefusesTraversalAndHiddenFilesBeforeTouchingTheDisk) {
  StaticFiles files(root_);
  for (const char* path : {"/../outside.txt", "/docs/../../outside.txt", "/..", "/./app.js",
                           "/.secret", "/docs/.git/config", "/a\\..\\outside.txt", "relative.js"}) {
    EXPECT_EQ(files.Resolve(path).status().code(), absl::StatusCode::kPermissionDenied) << path;
  }
  EXPECT_EQ(files.Resolve(std::string("/app.js\0.png", 12)).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(StaticFilesTest, MissingFilesAndAnEmptyRootAreNotFound) {
  StaticFiles files(root_);
  EXPECT_EQ(files.Resolve("/nope.js").status().code(), absl::StatusCode::kNotFound);
  StaticFiles none("");
  EXPECT_EQ(none.Resolve("/").status().code(), absl::StatusCode::kNotFound);
  // Traversal is refused even without a root.
  EXPECT_EQ(none.Resolve("/../x").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(StaticFilesTest, EtagChangesWithTheContent) {
  StaticFiles files(root_);
  auto before = files.Resolve("/app.js");
  Write(root_ + "/app.js", "export const changed = true;");
  auto after = files.Resolve("/app.js");
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_NE(before->etag, after->etag);
}

TEST(MimeTypeTest, KnowsTheDashboardsTypes) {
  EXPECT_STREQ(StaticFiles::MimeType("a/b/style.CSS"), "text/css; charset=utf-8");
  EXPECT_STREQ(StaticFiles::MimeType("x.mjs"), "text/javascript; charset=utf-8");
  EXPECT_STREQ(StaticFiles::MimeType("logo.svg"), "image/svg+xml");
  EXPECT_STREQ(StaticFiles::MimeType("shot.png"), "image/png");
  EXPECT_STREQ(StaticFiles::MimeType("data.json"), "application/json");
  EXPECT_STREQ(StaticFiles::MimeType("README"), "application/octet-stream");
  EXPECT_STREQ(StaticFiles::MimeType("dir.d/README"), "application/octet-stream");
  EXPECT_STREQ(StaticFiles::MimeType("x.exe"), "application/octet-stream");
}

}  // namespace
}  // namespace telestra::gateway
