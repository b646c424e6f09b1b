#include "backend/network_list.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

namespace ip = boost::asio::ip;

TEST(NetworkListTest, MatchesHostsAndNetworksOfBothFamilies) {
  absl::StatusOr<NetworkList> list = NetworkList::Parse({"10.0.0.0/8", "127.0.0.1", "fd00::/8"});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->Contains(ip::make_address("10.1.2.3")));
  EXPECT_TRUE(list->Contains(ip::make_address("127.0.0.1")));
  EXPECT_FALSE(list->Contains(ip::make_address("127.0.0.2")));
  EXPECT_TRUE(list->Contains(ip::make_address("::ffff:10.9.9.9")));  // v4-mapped
  EXPECT_TRUE(list->Contains(ip::make_address("fd12::1")));
  EXPECT_FALSE(list->Contains(ip::make_address("fe80::1")));
  EXPECT_FALSE(NetworkList().Contains(ip::make_address("127.0.0.1")));
  EXPECT_TRUE(NetworkList().empty());
}

TEST(NetworkListTest, ReadsSocketAddresses) {
  NetworkList list = *NetworkList::Parse({"127.0.0.0/30"});
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.3", &in.sin_addr);
  EXPECT_TRUE(list.Contains(reinterpret_cast<sockaddr*>(&in)));
  inet_pton(AF_INET, "127.0.0.4", &in.sin_addr);
  EXPECT_FALSE(list.Contains(reinterpret_cast<sockaddr*>(&in)));
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.2", &in6.sin6_addr);
  EXPECT_TRUE(list.Contains(reinterpret_cast<sockaddr*>(&in6)));
  EXPECT_EQ(NetworkList::AddressOf(reinterpret_cast<sockaddr*>(&in6)).to_string(), "127.0.0.2");
  EXPECT_FALSE(list.Contains(nullptr));
}

TEST(NetworkListTest, RefusesWhatIsNotANetwork) {
  absl::StatusOr<NetworkList> list = NetworkList::Parse({"10.0.0.0/33"});
  EXPECT_FALSE(list.ok());
  EXPECT_EQ(list.status().message(), "'10.0.0.0/33' is not an IPv4 or IPv6 network");
  EXPECT_FALSE(NetworkList::Parse({"pbx.example"}).ok());
}

}  // namespace
}  // namespace telestra::backend
