// Subprocess: children do not outlive a test process stopped by a signal.
#include "tests/support/subprocess.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

// True while `pid` exists and is not a zombie.
bool Alive(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return false;
  return state != "Z" && state != "X";
}

bool GoneWithin(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Alive(pid)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// A helper process starts a child (`sleep 60`), reports its pid, waits;
// then gets `sig`. Returns the child's pid and the helper's wait status.
struct Outcome {
  pid_t child = -1;
  int helper_status = 0;
};

Outcome StopHelperWith(int sig) {
  Outcome outcome;
  int fds[2];
  if (pipe(fds) != 0) return outcome;
  pid_t helper = fork();
  if (helper == 0) {
    close(fds[0]);
    auto sleeper = Subprocess::Start({"sleep", "60"}, TestTempDir() + "/sleeper.log");
    pid_t child = sleeper.ok() ? (*sleeper)->pid() : -1;
    if (write(fds[1], &child, sizeof(child)) != sizeof(child)) _exit(3);
    for (;;) pause();
  }
  close(fds[1]);
  if (helper < 0 || read(fds[0], &outcome.child, sizeof(outcome.child)) != sizeof(outcome.child)) {
    close(fds[0]);
    return outcome;
  }
  close(fds[0]);
  kill(helper, sig);
  waitpid(helper, &outcome.helper_status, 0);
  return outcome;
}

class StopSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(StopSignalTest, ChildrenDieWithATestStoppedByTheSignal) {
  const int sig = GetParam();
  Outcome outcome = StopHelperWith(sig);
  ASSERT_GT(outcome.child, 0);
  // The helper still ends by the signal (the default action after the
  // clean-up), and its child does not outlive it.
  ASSERT_TRUE(WIFSIGNALED(outcome.helper_status));
  EXPECT_EQ(WTERMSIG(outcome.helper_status), sig);
  EXPECT_TRUE(GoneWithin(outcome.child, absl::Seconds(5))) << "sleep " << outcome.child;
}

INSTANTIATE_TEST_SUITE_P(Signals, StopSignalTest, ::testing::Values(SIGTERM, SIGINT, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

TEST(SubprocessTest, ReapedChildIsNoLongerSignalledAndKillStillWorks) {
  auto first = Subprocess::Start({"true"}, TestTempDir() + "/true.log");
  ASSERT_TRUE(first.ok()) << first.status();
  auto status = (*first)->WaitForExit(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
  auto sleeper = Subprocess::Start({"sleep", "60"}, TestTempDir() + "/sleeper2.log");
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  pid_t pid = (*sleeper)->pid();
  EXPECT_TRUE(Alive(pid));
  (*sleeper)->Kill();
  EXPECT_FALSE(Alive(pid));
}

}  // namespace
}  // namespace telestra::testing
