#include "gateway/grpc/bearer_auth.h"

#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

TEST(ConstantTimeEqualsTest, ComparesWholeValues) {
  EXPECT_TRUE(ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3creT", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3cre", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3crets3cret", "s3cret"));  // a repeat is not equal
  EXPECT_FALSE(ConstantTimeEquals("", "s3cret"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("x", ""));
}

TEST(BearerAuthTest, NoTokenConfiguredAdmitsEveryone) {
  BearerAuth auth("");
  EXPECT_FALSE(auth.required());
  EXPECT_TRUE(auth.Check(Metadata{}).ok());
}

TEST(BearerAuthTest, MissingMetadataIsUnauthenticated) {
  BearerAuth auth("s3cret");
  absl::Status status = auth.Check(Metadata{});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(status.message(),
            "Missing bearer token: send metadata 'authorization: Bearer <token>'");
}

TEST(BearerAuthTest, AcceptsTheTokenWithAnyCaseOfTheScheme) {
  BearerAuth auth("s3cret");
  for (const char* value : {"Bearer s3cret", "bearer s3cret", "BEARER s3cret "}) {
    Metadata metadata{{"authorization", value}};
    EXPECT_TRUE(auth.Check(metadata).ok()) << value;
  }
}

TEST(BearerAuthTest, WrongTokenOrSchemeIsUnauthenticatedWithoutEchoingIt) {
  BearerAuth auth("s3cret");
  Metadata wrong{{"authorization", "Bearer guess"}};
  absl::Status status = auth.Check(wrong);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(status.message(), "Invalid bearer token");
  Metadata basic{{"authorization", "Basic czNjcmV0"}};
  status = auth.Check(basic);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(status.message().find("czNjcmV0"), absl::string_view::npos);
  Metadata bare{{"authorization", "s3cret"}};
  EXPECT_EQ(auth.Check(bare).code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace telestra::gateway
