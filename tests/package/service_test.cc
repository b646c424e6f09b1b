// The packaged service: systemd-analyze verify accepts the unit, the unit is
// a hardened notify service of its own user, and the packaged gateway,
// started as the unit starts it from the packaged plan (its ports moved to
// free loopback ones), tells a fake NOTIFY_SOCKET READY=1 once every port is
// open (the packaged `telestra` client reaches it), RELOADING=1 and READY=1
// around a reload (SIGHUP, the unit's ExecReload) and STOPPING=1 after
// SIGTERM. The packaged plan's journal (in the unit's StateDirectory; here a
// scratch folder) is on: its metrics, its files, and a SIGKILLed gateway
// back as the same instance. What only a running systemd does (the user
// switch, the sandbox in effect, the state directory's creation, the reload
// job, the restart after a crash) is not run here (docs/deployment.md).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/native_client.h"
#include "tests/package/deb_support.h"
#include "tests/support/loopback_socket.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kUnit[] = "/lib/systemd/system/telestra.service";
constexpr char kPlan[] = "/etc/telestra/plan.ini";

// An INI-style file's "key = value" lines by section (comments dropped).
using Sections = std::map<std::string, std::multimap<std::string, std::string>>;

Sections ParseSections(const std::string& text) {
  Sections sections;
  std::string section;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    for (absl::string_view marker : {" ;", " #", "\t;", "\t#"}) {
      line = absl::StripAsciiWhitespace(line.substr(0, line.find(marker)));
    }
    if (absl::ConsumePrefix(&line, "[")) {
      section = std::string(absl::StripSuffix(line, "]"));
      continue;
    }
    std::pair<std::string, std::string> pair = absl::StrSplit(line, absl::MaxSplits('=', 1));
    sections[section].emplace(std::string(absl::StripAsciiWhitespace(pair.first)),
                              std::string(absl::StripAsciiWhitespace(pair.second)));
  }
  return sections;
}

// The one value of `key` in `section`; "(absent)" or "(repeated)" otherwise.
std::string Value(const Sections& sections, const std::string& section, const std::string& key) {
  auto found = sections.find(section);
  if (found == sections.end() || found->second.count(key) == 0) return "(absent)";
  if (found->second.count(key) > 1) return "(repeated)";
  return found->second.find(key)->second;
}

// `plan` with the value of each [section] key in `values` replaced (the
// whole line rewritten); an error names a key the plan does not set.
absl::StatusOr<std::string> WithValues(
    const std::string& plan, std::map<std::string, std::map<std::string, std::string>> values) {
  std::vector<std::string> lines;
  std::string section;
  for (absl::string_view line : absl::StrSplit(plan, '\n')) {
    absl::string_view content = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&content, "[")) {
      section = std::string(absl::StripAsciiWhitespace(content.substr(0, content.find(']'))));
    } else if (values.count(section) != 0 && !content.empty() && content[0] != ';' &&
               content[0] != '#') {
      const std::string key(absl::StripAsciiWhitespace(content.substr(0, content.find('='))));
      auto value = values[section].find(key);
      if (value != values[section].end()) {
        lines.push_back(absl::StrCat(key, " = ", value->second));
        values[section].erase(value);
        continue;
      }
    }
    lines.emplace_back(line);
  }
  for (const auto& [name, left] : values) {
    for (const auto& [key, value] : left) {
      return absl::NotFoundError(absl::StrCat("the plan sets no [", name, "] ", key));
    }
  }
  return absl::StrJoin(lines, "\n");
}

// A Unix datagram socket standing in for systemd's NOTIFY_SOCKET.
class FakeNotifySocket {
 public:
  FakeNotifySocket() {
    char pattern[] = "/tmp/telestra-notify.XXXXXX";  // sun_path is short: not under TEST_TMPDIR
    if (mkdtemp(pattern) == nullptr) return;
    dir_ = pattern;
    path_ = dir_ + "/notify";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path_.copy(address.sun_path, sizeof(address.sun_path) - 1);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~FakeNotifySocket() {
    if (fd_ >= 0) close(fd_);
    if (!path_.empty()) unlink(path_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }

  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // Waits until a message holding the line `state` has arrived, from the
  // `first`-th message on (true), the deadline passes or `alive` says the
  // sender has gone (false). Every message read is kept in messages().
  bool WaitFor(
      const std::string& state, absl::Time deadline,
      const std::function<bool()>& alive = [] { return true; }, size_t first = 0) {
    for (;;) {
      for (size_t i = first; i < messages_.size(); ++i) {
        std::vector<std::string> lines = absl::StrSplit(messages_[i], '\n');
        if (std::find(lines.begin(), lines.end(), state) != lines.end()) return true;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration() || !alive()) return false;
      pollfd readable{fd_, POLLIN, 0};
      if (poll(&readable, 1,
               static_cast<int>(std::min(left, absl::Milliseconds(100)) / absl::Milliseconds(1)) +
                   1) == 1) {
        char buffer[4096];
        ssize_t size = recv(fd_, buffer, sizeof(buffer), 0);
        if (size > 0) messages_.emplace_back(buffer, size);
      }
    }
  }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

// The response to one HTTP/1.1 GET on 127.0.0.1:port ("" if none).
std::string HttpGet(int port, const std::string& target) {
  absl::StatusOr<int> fd = ConnectLoopback(port);
  if (!fd.ok()) return "";
  SendAll(*fd, absl::StrCat("GET ", target,
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  std::string response;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (ReadSome(*fd, deadline, &response) == ReadResult::kData) {
  }
  close(*fd);
  return response;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScratchRoot> root = ScratchRoot::Create();
    ASSERT_TRUE(root.ok()) << root.status();
    root_.emplace(*std::move(root));
    CommandResult install = root_->Install(TestDebPath());
    ASSERT_EQ(install.status, 0) << install.output;
    unit_text_ = ReadFileText(root_->Path(kUnit));
    unit_ = ParseSections(unit_text_);
    ASSERT_THAT(unit_text_, HasSubstr("[Service]"));
  }

  // The unit's ExecStart, its paths moved into the scratch root, and the
  // plan's into `plan`.
  std::vector<std::string> ExecStart(const std::string& plan) const {
    std::vector<std::string> argv =
        absl::StrSplit(Value(unit_, "Service", "ExecStart"), ' ', absl::SkipEmpty());
    for (std::string& arg : argv) {
      const size_t equals = arg.find('=');
      const size_t path = equals == std::string::npos ? 0 : equals + 1;
      if (arg.compare(path, std::string::npos, kPlan) == 0) {
        arg = arg.substr(0, path) + plan;
      } else if (arg.compare(path, 1, "/") == 0) {
        arg = arg.substr(0, path) + root_->Path(arg.substr(path));
      }
    }
    return argv;
  }

  // The packaged plan with its ports moved to free loopback ones and its
  // journal to `dir`/state (standing in for the unit's StateDirectory),
  // written to `dir`/plan.ini.
  struct MovedPlan {
    std::string path;
    std::string state_dir;
    int native_port = 0, grpc_port = 0, web_port = 0, metrics_port = 0;
  };
  absl::StatusOr<MovedPlan> WriteMovedPlan(const std::string& dir) const {
    const int sip_port = PickFreeUdpTcpPort();
    const std::vector<int> ports = PickFreeTcpPorts(4, {sip_port});
    const int rtp_min = PickFreeUdpRun(4);
    if (sip_port == 0 || ports.size() != 4 || rtp_min == 0) {
      return absl::UnavailableError("no free loopback ports");
    }
    MovedPlan moved;
    moved.native_port = ports[0];
    moved.grpc_port = ports[1];
    moved.web_port = ports[2];
    moved.metrics_port = ports[3];
    moved.state_dir = dir + "/state";
    if (mkdir(moved.state_dir.c_str(), 0750) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot make ", moved.state_dir));
    }
    absl::StatusOr<std::string> plan = WithValues(
        ReadFileText(root_->Path(kPlan)),
        {{"tcp-settings", {{"port", absl::StrCat(moved.native_port)}}},
         {"grpc-settings", {{"port", absl::StrCat(moved.grpc_port)}}},
         {"web-settings", {{"port", absl::StrCat(moved.web_port)}}},
         {"metrics-settings", {{"port", absl::StrCat(moved.metrics_port)}}},
         {"sip-settings", {{"port", absl::StrCat(sip_port)}}},
         {"state-settings", {{"dir", moved.state_dir}}},
         {"rtp-settings",
          {{"port-min", absl::StrCat(rtp_min)}, {"port-max", absl::StrCat(rtp_min + 3)}}}});
    if (!plan.ok()) return plan.status();
    moved.path = dir + "/plan.ini";
    std::ofstream(moved.path) << *plan;
    return moved;
  }

  std::optional<ScratchRoot> root_;
  std::string unit_text_;
  Sections unit_;
};

// systemd's own parser, with every executable the unit names checked. It
// reports problems (an unknown key, a bad value) as warnings with a zero
// exit status: anything it prints is a failure.
TEST_F(ServiceTest, SystemdAnalyzeVerifyAcceptsTheUnit) {
  const std::string dir = MakeTempDir("unit");
  const std::string binary = root_->Path("/usr/sbin/telestra_gateway");
  std::ofstream(dir + "/telestra.service")
      << absl::StrReplaceAll(unit_text_, {{"/usr/sbin/telestra_gateway", binary}});
  CommandResult verify = RunCommand({"systemd-analyze", "verify", dir + "/telestra.service"});
  EXPECT_EQ(verify.status, 0) << verify.output;
  EXPECT_EQ(verify.output, "");
}

TEST_F(ServiceTest, TheUnitIsAHardenedNotifyServiceOfItsOwnUser) {
  const std::map<std::string, std::string> expected = {
      {"Type", "notify"},
      {"User", "telestra"},
      {"Group", "telestra"},
      {"ExecReload", "/bin/kill -HUP $MAINPID"},
      {"Restart", "on-failure"},
      {"StateDirectory", "telestra"},
      {"ProtectSystem", "strict"},
      {"ProtectHome", "yes"},
      {"NoNewPrivileges", "yes"},
      {"PrivateTmp", "yes"},
      {"PrivateDevices", "yes"},
      {"ProtectKernelTunables", "yes"},
      {"ProtectControlGroups", "yes"},
      {"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK"},
      {"CapabilityBoundingSet", ""},
      {"AmbientCapabilities", ""},
      {"MemoryDenyWriteExecute", "yes"},
      {"SystemCallArchitectures", "native"},
      {"SystemCallFilter", "@system-service"},
  };
  for (const auto& [key, value] : expected) {
    EXPECT_EQ(Value(unit_, "Service", key), value) << key;
  }
  EXPECT_EQ(Value(unit_, "Install", "WantedBy"), "multi-user.target");
  // ExecStart reads the packaged plan and serves the packaged dashboard.
  const std::vector<std::string> argv = ExecStart("PLAN");
  EXPECT_EQ(argv[0], root_->Path("/usr/sbin/telestra_gateway"));
  EXPECT_THAT(argv, Contains("--plan=PLAN"));
  EXPECT_THAT(argv, Contains("--web_root=" + root_->Path("/usr/share/telestra/web")));

  const Sections plan = ParseSections(ReadFileText(root_->Path(kPlan)));
  // No capability, so no port below 1024 in the default plan.
  for (const char* section :
       {"tcp-settings", "grpc-settings", "web-settings", "metrics-settings", "sip-settings"}) {
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(Value(plan, section, "port"), &port)) << section;
    EXPECT_GE(port, 1024) << section;
  }
  // The journal of the packaged plan lives in the unit's StateDirectory,
  // which systemd creates for the service's user; its port is fixed.
  EXPECT_EQ(Value(plan, "state-settings", "dir"),
            "/var/lib/" + Value(unit_, "Service", "StateDirectory"));
  EXPECT_EQ(Value(unit_, "Service", "StateDirectoryMode"), "0750");
  EXPECT_NE(Value(plan, "sip-settings", "port"), "0");
  // Descriptors: a socket per RTP and RTCP port, and the API clients on top.
  int port_min = 0, port_max = 0, limit = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Value(plan, "rtp-settings", "port-min"), &port_min));
  ASSERT_TRUE(absl::SimpleAtoi(Value(plan, "rtp-settings", "port-max"), &port_max));
  ASSERT_TRUE(absl::SimpleAtoi(Value(unit_, "Service", "LimitNOFILE"), &limit));
  EXPECT_GE(limit, (port_max - port_min + 1) + 4096);
}

TEST_F(ServiceTest, PackagedGatewayStartsFromThePackagedPlanAndReportsItsStates) {
  const std::string dir = MakeTempDir("service");
  absl::StatusOr<MovedPlan> plan = WriteMovedPlan(dir);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string& plan_path = plan->path;
  const int native_port = plan->native_port, grpc_port = plan->grpc_port, web_port = plan->web_port,
            metrics_port = plan->metrics_port;
  const std::vector<int> ports = {native_port, grpc_port, web_port, metrics_port};

  FakeNotifySocket notify;
  ASSERT_TRUE(notify.ok());
  absl::StatusOr<std::unique_ptr<Subprocess>> gateway = Subprocess::Start(
      ExecStart(plan_path), dir + "/gateway.log", {{"NOTIFY_SOCKET", notify.path()}});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  Subprocess& process = **gateway;
  ASSERT_TRUE(notify.WaitFor("READY=1", absl::Now() + absl::Seconds(30),
                             [&] { return process.IsRunning(); }))
      << "no READY=1; messages: " << absl::StrJoin(notify.messages(), " | ") << "\nlog:\n"
      << ReadFileText(process.log_path());

  // READY=1 came once every port was open: each accepts at once.
  for (int port : ports) {
    absl::StatusOr<int> fd = ConnectLoopback(port);
    ASSERT_TRUE(fd.ok()) << "port " << port << " is not open at READY=1: " << fd.status();
    close(*fd);
  }
  EXPECT_THAT(HttpGet(web_port, "/healthz"), HasSubstr("200 OK"));
  // The dashboard comes from the packaged web root.
  const std::string page = HttpGet(web_port, "/");
  EXPECT_THAT(page, HasSubstr("200 OK"));
  EXPECT_THAT(page, HasSubstr("<title>Telestra SIP Gateway</title>"));
  // The packaged plan's journal is on: its figures are in /metrics.
  EXPECT_THAT(HttpGet(metrics_port, "/metrics"), HasSubstr("telestra_journal_calls "));
  absl::StatusOr<std::unique_ptr<NativeClient>> client = NativeClient::Connect(native_port);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Send(R"({"cmd":"get-status","account":"example"})"));
  std::optional<NativeEvent> status = (*client)->Next(absl::Seconds(5));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status") << status->json;
  EXPECT_EQ(status->Str("account"), "example");

  // The packaged command-line client reaches the gateway's gRPC port.
  CommandResult accounts = RunCommand({root_->Path("/usr/bin/telestra"), "accounts", "--json",
                                       absl::StrCat("--address=127.0.0.1:", grpc_port)});
  EXPECT_EQ(accounts.status, 0) << accounts.output;
  EXPECT_THAT(accounts.output, HasSubstr(R"("account":"example")"));

  // SIGHUP (systemctl reload): RELOADING=1, the plan's new account, READY=1.
  std::ofstream(plan_path, std::ios::app)
      << "\n[reloaded]\nuser = 1001\nserver = pbx.example.invalid\nregister = false\n";
  const size_t before_reload = notify.messages().size();
  ASSERT_EQ(kill(process.pid(), SIGHUP), 0);
  auto alive = [&] { return process.IsRunning(); };
  ASSERT_TRUE(notify.WaitFor("READY=1", absl::Now() + absl::Seconds(10), alive, before_reload))
      << absl::StrJoin(notify.messages(), " | ") << "\nlog:\n"
      << ReadFileText(process.log_path());
  ASSERT_EQ(notify.messages().size(), before_reload + 2) << absl::StrJoin(notify.messages(), " | ");
  EXPECT_THAT(notify.messages()[before_reload], HasSubstr("RELOADING=1\n"));
  ASSERT_TRUE((*client)->Send(R"({"cmd":"get-status","account":"reloaded"})"));
  status = (*client)->Next(absl::Seconds(5));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status") << status->json;
  EXPECT_EQ(status->Str("account"), "reloaded");
  client->reset();

  // SIGTERM: STOPPING=1, then a clean exit.
  absl::StatusOr<int> exit_status = process.Terminate(absl::Seconds(15));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0) << ReadFileText(process.log_path());
  EXPECT_TRUE(notify.WaitFor("STOPPING=1", absl::Now() + absl::Seconds(5)))
      << absl::StrJoin(notify.messages(), " | ");
  ASSERT_THAT(notify.messages(), ::testing::SizeIs(4));
  EXPECT_THAT(notify.messages().front(), HasSubstr("READY=1"));
  EXPECT_THAT(notify.messages().back(), HasSubstr("STOPPING=1"));
  // The journal's files, in the state directory.
  EXPECT_NE(ReadFileText(plan->state_dir + "/instance"), "");
  for (const char* file : {"calls.pb", "events.log", "lock"}) {
    EXPECT_EQ(access((plan->state_dir + "/" + file).c_str(), F_OK), 0) << file;
  }
}

// The packaged gateway killed (a crash; the unit restarts it) comes back as
// the same instance, its seqs above those of the run that was killed:
// clients resume across it (docs/restart.md).
TEST_F(ServiceTest, PackagedGatewayKilledComesBackAsTheSameInstance) {
  const std::string dir = MakeTempDir("service");
  absl::StatusOr<MovedPlan> plan = WriteMovedPlan(dir);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Starts the gateway as the unit does, and waits for its READY=1.
  auto start = [&](const std::string& log) -> absl::StatusOr<std::unique_ptr<Subprocess>> {
    FakeNotifySocket notify;
    if (!notify.ok()) return absl::UnavailableError("no notify socket");
    absl::StatusOr<std::unique_ptr<Subprocess>> gateway = Subprocess::Start(
        ExecStart(plan->path), dir + "/" + log, {{"NOTIFY_SOCKET", notify.path()}});
    if (!gateway.ok()) return gateway.status();
    Subprocess& process = **gateway;
    if (!notify.WaitFor("READY=1", absl::Now() + absl::Seconds(30),
                        [&] { return process.IsRunning(); })) {
      return absl::UnavailableError(
          absl::StrCat("no READY=1; log:\n", ReadFileText(process.log_path())));
    }
    return gateway;
  };
  // A native client subscribed with resume ("extended"); its "subscribed".
  auto subscribe = [&](std::unique_ptr<NativeClient>& client) -> std::optional<NativeEvent> {
    absl::StatusOr<std::unique_ptr<NativeClient>> connected =
        NativeClient::Connect(plan->native_port);
    EXPECT_TRUE(connected.ok()) << connected.status();
    if (!connected.ok()) return std::nullopt;
    client = *std::move(connected);
    if (!client->Send(R"({"cmd":"subscribe","extended":true})")) return std::nullopt;
    std::optional<NativeEvent> event = client->Next(absl::Seconds(5));
    EXPECT_TRUE(event.has_value() && event->event() == "subscribed")
        << (event ? event->json : "no answer");
    return event;
  };

  absl::StatusOr<std::unique_ptr<Subprocess>> first = start("first.log");
  ASSERT_TRUE(first.ok()) << first.status();
  std::unique_ptr<NativeClient> client;
  std::optional<NativeEvent> before = subscribe(client);
  ASSERT_TRUE(before.has_value());
  const std::string instance = before->Str("instance");
  ASSERT_FALSE(instance.empty()) << before->json;
  // One broadcast for the journal to keep: the account renamed in the plan
  // and the plan reloaded (the old name's status, "Removed from the plan").
  const std::string text = ReadFileText(plan->path);
  ASSERT_THAT(text, HasSubstr("\n[example]\n"));
  std::ofstream(plan->path) << absl::StrReplaceAll(text, {{"\n[example]\n", "\n[renamed]\n"}});
  ASSERT_EQ(kill((*first)->pid(), SIGHUP), 0);
  int64_t kept = 0;
  for (std::optional<NativeEvent> event; kept <= 0;) {
    event = client->Next(absl::Seconds(10));
    ASSERT_TRUE(event.has_value()) << "no broadcast after the reload; log:\n"
                                   << ReadFileText((*first)->log_path());
    kept = event->Int("seq");
  }
  client.reset();
  (*first)->Kill();  // SIGKILL: nothing is written at the end

  absl::StatusOr<std::unique_ptr<Subprocess>> second = start("second.log");
  ASSERT_TRUE(second.ok()) << second.status();
  std::optional<NativeEvent> after = subscribe(client);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->Str("instance"), instance) << after->json;
  // The seqs go on above every one the killed run may have used.
  EXPECT_GT(after->Int("seq"), kept) << after->json;
  client.reset();
  absl::StatusOr<int> exit_status = (*second)->Terminate(absl::Seconds(15));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0) << ReadFileText((*second)->log_path());
}

}  // namespace
}  // namespace telestra::testing
