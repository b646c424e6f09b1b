#include "tests/support/kamailio.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

constexpr char kSipp[] = "/usr/bin/sipp";

std::string TmpDir() {
  const char* dir = getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::string Runfile(const std::string& path) {
  const char* root = getenv("TEST_SRCDIR");
  return root != nullptr ? absl::StrCat(root, "/telestra/", path) : path;
}

// Registers `user` with sipp and tests/support/sipp/register.xml; returns
// sipp's exit status (0: 401 then 200). `transport` is sipp's -t value.
int SippRegister(const KamailioProcess& kamailio, const std::string& user,
                 const std::string& password, const std::string& transport = "u1") {
  static int run = 0;
  int local_port = PickFreePort(transport == "t1" ? SOCK_STREAM : SOCK_DGRAM);
  EXPECT_NE(local_port, 0);
  std::string log = absl::StrCat(TmpDir(), "/sipp-register-", user, "-", ++run, ".log");
  std::vector<std::string> argv = {
      kSipp,
      "-sf",
      Runfile("tests/support/sipp/register.xml"),
      "-i",
      "127.0.0.1",
      "-mi",
      "127.0.0.1",
      "-p",
      absl::StrCat(local_port),
      "-t",
      transport,
      "-m",
      "1",
      "-s",
      user,
      "-au",
      user,
      "-ap",
      password,
      "-nostdin",
      "-timeout",
      "10s",
      "-timeout_error",
      kamailio.server(),
  };
  absl::StatusOr<std::unique_ptr<Subprocess>> sipp = Subprocess::Start(argv, log);
  EXPECT_TRUE(sipp.ok()) << sipp.status();
  if (!sipp.ok()) return -1;
  absl::StatusOr<int> status = (*sipp)->WaitForExit(absl::Now() + absl::Seconds(20));
  EXPECT_TRUE(status.ok()) << status.status() << "\n" << ReadFileText(log);
  return status.ok() ? *status : -1;
}

// ---------------------------------------------------------------- ports

TEST(PortsTest, PicksFreePorts) {
  EXPECT_GT(PickFreePort(SOCK_STREAM), 0);
  EXPECT_GT(PickFreePort(SOCK_DGRAM), 0);
  EXPECT_EQ(PickFreePort(SOCK_RAW), 0);
  EXPECT_GT(PickFreeUdpTcpPort(), 0);
}

TEST(PortsTest, PicksDistinctTcpPortsOutsideTheExcludedOnes) {
  for (int round = 0; round < 50; ++round) {
    const int excluded = PickFreePort(SOCK_STREAM);
    std::vector<int> ports = PickFreeTcpPorts(4, {excluded});
    ASSERT_EQ(ports.size(), 4u);
    std::sort(ports.begin(), ports.end());
    EXPECT_EQ(std::adjacent_find(ports.begin(), ports.end()), ports.end());
    for (int port : ports) {
      EXPECT_GT(port, 0);
      EXPECT_NE(port, excluded);
    }
  }
}

TEST(PortsTest, WaitsForTcpPort) {
  int port = PickFreePort(SOCK_STREAM);
  ASSERT_GT(port, 0);
  absl::Time start = absl::Now();
  EXPECT_FALSE(WaitForTcpPort(port, absl::Milliseconds(50)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  EXPECT_TRUE(WaitForTcpPort(port, absl::ZeroDuration()));
  close(fd);
}

// ----------------------------------------------------------- subprocess

TEST(SubprocessTest, LogsOutputAndReturnsExitCode) {
  std::string log = absl::StrCat(TmpDir(), "/subprocess-exit.log");
  auto process =
      Subprocess::Start({"/bin/sh", "-c", "echo out $TELESTRA_PROBE; echo err >&2; exit 3"}, log,
                        {{"TELESTRA_PROBE", "probe-value"}});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> status = (*process)->WaitForExit(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 3);
  EXPECT_FALSE((*process)->IsRunning());
  std::string output = ReadFileText(log);
  EXPECT_NE(output.find("out probe-value"), std::string::npos) << output;
  EXPECT_NE(output.find("err"), std::string::npos) << output;
}

TEST(SubprocessTest, ReportsMissingProgram) {
  auto process = Subprocess::Start({"/nonexistent/program"}, "/dev/null");
  EXPECT_FALSE(process.ok());
}

TEST(SubprocessTest, WaitForExitHonoursDeadline) {
  auto process = Subprocess::Start({"/bin/sleep", "30"}, "/dev/null");
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> status = (*process)->WaitForExit(absl::Now() + absl::Milliseconds(20));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status.status())) << status.status();
  EXPECT_TRUE((*process)->IsRunning());
  EXPECT_EQ((*process)->pid(), getpgid((*process)->pid()));  // own group
  absl::StatusOr<int> terminated = (*process)->Terminate(absl::Seconds(5));
  ASSERT_TRUE(terminated.ok()) << terminated.status();
  EXPECT_EQ(*terminated, 128 + SIGTERM);
}

TEST(SubprocessTest, TerminateEscalatesToKillForWholeGroup) {
  // The shell ignores SIGTERM; its background child is in the same group.
  std::string log = absl::StrCat(TmpDir(), "/subprocess-term.log");
  auto process = Subprocess::Start(
      {"/bin/sh", "-c",
       "trap '' TERM; /bin/sleep 30 & echo ready; while :; do /bin/sleep 0.05; done"},
      log);
  ASSERT_TRUE(process.ok()) << process.status();
  pid_t group = (*process)->pid();
  // Signal only once the trap is in place.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (ReadFileText(log).find("ready") == std::string::npos && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_NE(ReadFileText(log).find("ready"), std::string::npos);
  absl::Time start = absl::Now();
  absl::StatusOr<int> status = (*process)->Terminate(absl::Milliseconds(200));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 128 + SIGKILL);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_NE(kill(-group, 0), 0);  // nothing left in the group
}

TEST(SubprocessTest, DestructorKillsGroup) {
  pid_t group;
  {
    auto process = Subprocess::Start({"/bin/sleep", "30"}, "/dev/null");
    ASSERT_TRUE(process.ok()) << process.status();
    group = (*process)->pid();
  }
  EXPECT_NE(kill(-group, 0), 0);
}

// ------------------------------------------------------------- ul.dump

TEST(UlDumpTest, CountsLiveContactsPerAor) {
  const std::string dump = R"({
	Domains: {
		Domain: {
			Domain: location
			AoRs: {
				Info: {
					AoR: 3001
					Contacts: {
						Contact: {
							Address: sip:3001@127.0.0.1:5060;transport=UDP
							Expires: 3600
						}
						Contact: {
							Address: sip:3001@127.0.0.1:5062
							Expires: expired
						}
					}
				}
				Info: {
					AoR: 30011
					Contacts: {
						Contact: {
							Address: sip:30011@127.0.0.1:5064
							Expires: 60
						}
					}
				}
			}
		}
	}
})";
  EXPECT_EQ(CountContactsInUlDump(dump, "3001"), 1);
  EXPECT_EQ(CountContactsInUlDump(dump, "30011"), 1);
  EXPECT_EQ(CountContactsInUlDump(dump, "3002"), 0);
  EXPECT_EQ(CountContactsInUlDump("", "3001"), 0);
}

// ------------------------------------------------------------- kamailio

TEST(KamailioTest, StartsOnFreeLoopbackPort) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  KamailioProcess& kam = **kamailio;
  EXPECT_GT(kam.port(), 0);
  EXPECT_EQ(kam.server(), absl::StrCat("127.0.0.1:", kam.port()));
  EXPECT_TRUE(kam.IsRunning());
  EXPECT_TRUE(WaitForTcpPort(kam.port(), absl::ZeroDuration()));
  EXPECT_EQ(access(kam.log_path().c_str(), R_OK), 0);

  absl::StatusOr<std::string> version = kam.Kamcmd({"core.version"});
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_NE(version->find("kamailio"), std::string::npos) << *version;

  absl::StatusOr<int> count = kam.CountRegistered("3001");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 0);
}

TEST(KamailioTest, TwoInstancesRunSideBySide) {
  auto first = KamailioProcess::Start();
  auto second = KamailioProcess::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*first)->port(), (*second)->port());
  EXPECT_NE((*first)->ctl_socket(), (*second)->ctl_socket());
  // Stopping right after start-up exits cleanly (no hang, no SIGKILL).
  absl::Status stopped = (*first)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
  stopped = (*second)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

TEST(KamailioTest, RegisterNeedsTheRightPassword) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  KamailioProcess& kam = **kamailio;

  EXPECT_EQ(SippRegister(kam, "3001", "sip3001"), 0) << "log: " << kam.log_path();
  absl::StatusOr<int> count = kam.CountRegistered("3001");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 1);

  // Wrong password: a second 401, which the scenario does not expect.
  EXPECT_NE(SippRegister(kam, "3002", "wrong"), 0);
  count = kam.CountRegistered("3002");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 0);

  // Another user's password does not work either.
  EXPECT_NE(SippRegister(kam, "3002", "sip3001"), 0);

  // Over TCP too.
  EXPECT_EQ(SippRegister(kam, "3003", "sip3003", "t1"), 0);
  count = kam.CountRegistered("3003");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 1);
}

TEST(KamailioTest, KeepsOnlyTheNewestContact) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  KamailioProcess& kam = **kamailio;

  // Each sipp run registers from a different local port (a new contact).
  ASSERT_EQ(SippRegister(kam, "3004", "sip3004"), 0);
  ASSERT_EQ(SippRegister(kam, "3004", "sip3004"), 0);
  absl::StatusOr<int> count = kam.CountRegistered("3004");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 1);
}

TEST(KamailioTest, RestartKeepsThePort) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  KamailioProcess& kam = **kamailio;
  ASSERT_EQ(SippRegister(kam, "3005", "sip3005"), 0);

  const int port = kam.port();
  const pid_t old_pid = kam.pid();
  absl::Status restarted = kam.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_EQ(kam.port(), port);
  EXPECT_NE(kam.pid(), old_pid);
  EXPECT_NE(kill(old_pid, 0), 0);
  EXPECT_TRUE(kam.IsRunning());

  // Registrations live in memory only; registering works again.
  absl::StatusOr<int> count = kam.CountRegistered("3005");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 0);
  EXPECT_EQ(SippRegister(kam, "3005", "sip3005"), 0);
  count = kam.CountRegistered("3005");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 1);
}

TEST(KamailioTest, StopLeavesNoProcess) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  KamailioProcess& kam = **kamailio;
  const pid_t pid = kam.pid();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);

  absl::Status stopped = kam.Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
  errno = 0;
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_NE(kill(-pid, 0), 0);  // no worker left in the group either
  EXPECT_FALSE(kam.IsRunning());
  EXPECT_FALSE(WaitForTcpPort(kam.port(), absl::ZeroDuration()));
  EXPECT_TRUE(kam.Stop().ok());  // idempotent
}

}  // namespace
}  // namespace telestra::testing
