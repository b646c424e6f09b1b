#include "tests/package/deb_support.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

// The recorders: each appends "NAME ARGS" to calls.log and answers as a
// machine without the telestra user, statoverride or enabled unit would.
constexpr const char* kRecordedTools[] = {
    "adduser",  "getent", "dpkg-statoverride", "deb-systemd-helper", "deb-systemd-invoke",
    "systemctl"};

std::string RecorderScript(const std::string& name, const std::string& calls) {
  return absl::StrCat("#!/bin/sh\necho \"", name, " $*\" >>'", calls, "'\n", "case \"", name,
                      " $1\" in\n",
                      "  'getent '*) exit 2 ;;\n",  // no such user
                      "  'dpkg-statoverride --list') exit 1 ;;\n",
                      "  'deb-systemd-helper debian-installed') exit 1 ;;\n",
                      "  'deb-systemd-helper --quiet') exit 1 ;;\n",  // was-enabled: no
                      "esac\nexit 0\n");
}

bool WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return out.good() && chmod(path.c_str(), mode) == 0;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, const Subprocess::Environment& env,
                         absl::Duration timeout) {
  static std::atomic<int> counter{0};
  const std::string log = absl::StrCat(TestTempDir(), "/command-", counter++, ".log");
  Subprocess::Environment full_env = {{"PATH", kSystemPath}, {"LC_ALL", "C"}};
  for (const auto& [name, value] : env) full_env[name] = value;
  CommandResult result;
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv, log, full_env);
  if (!process.ok()) {
    result.output = std::string(process.status().message());
    return result;
  }
  absl::StatusOr<int> status = (*process)->WaitForExit(absl::Now() + timeout);
  if (status.ok()) result.status = *status;
  result.output = ReadFileText(log);
  if (!status.ok()) absl::StrAppend(&result.output, "\n(", status.status().message(), ")");
  return result;
}

std::string TestDebPath() {
  const char* root = getenv("TEST_SRCDIR");
  return absl::StrCat(root != nullptr ? root : ".", "/telestra/tests/package/telestra_test.deb");
}

std::string ControlField(const std::string& deb, const std::string& field) {
  CommandResult result = RunCommand({"dpkg-deb", "--field", deb, field});
  if (result.status != 0) return "";
  return std::string(absl::StripTrailingAsciiWhitespace(result.output));
}

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = absl::StrCat(TestTempDir(), "/", prefix, ".XXXXXX");
  return mkdtemp(pattern.data()) != nullptr ? pattern : "";
}

absl::StatusOr<ScratchRoot> ScratchRoot::Create() {
  const std::string dir = MakeTempDir("root");
  const std::string tools = MakeTempDir("tools");
  if (dir.empty() || tools.empty()) return absl::InternalError("mkdtemp failed");
  for (const char* folder : {"/var", "/var/lib", "/var/lib/dpkg", "/var/lib/dpkg/info",
                             "/var/lib/dpkg/updates", "/var/log"}) {
    if (mkdir((dir + folder).c_str(), 0755) != 0) return absl::InternalError("mkdir failed");
  }
  if (!WriteFile(dir + "/var/lib/dpkg/status", "", 0644)) {
    return absl::InternalError("cannot write the dpkg status file");
  }
  for (const char* name : kRecordedTools) {
    if (!WriteFile(absl::StrCat(tools, "/", name), RecorderScript(name, tools + "/calls.log"),
                   0755)) {
      return absl::InternalError(absl::StrCat("cannot write the recorder ", name));
    }
  }
  return ScratchRoot(dir, tools);
}

CommandResult ScratchRoot::Dpkg(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"dpkg",
                                   "--root=" + dir_,
                                   "--log=" + dir_ + "/var/log/dpkg.log",
                                   "--force-not-root",
                                   "--force-script-chrootless",
                                   "--force-depends"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {{"PATH", absl::StrCat(tools_, ":", kSystemPath)}});
}

std::string ScratchRoot::Query(const std::string& format) const {
  CommandResult result = RunCommand({"dpkg-query", "--admindir=" + dir_ + "/var/lib/dpkg", "--show",
                                     "--showformat=" + format, "telestra"});
  return result.status == 0 ? result.output : "";
}

std::vector<std::string> ScratchRoot::TakeCalls() const {
  const std::string path = tools_ + "/calls.log";
  std::vector<std::string> calls = absl::StrSplit(ReadFileText(path), '\n', absl::SkipEmpty());
  WriteFile(path, "", 0644);
  return calls;
}

}  // namespace telestra::testing
