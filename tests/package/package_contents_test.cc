// The Debian package as dpkg sees it: its fields, its files (paths, modes,
// root:root), its conffile and maintainer scripts, its Depends against the
// libraries its binaries load, and what installing, reinstalling, removing
// and purging it in a scratch root does.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/package/deb_support.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// One line of dpkg-deb --contents: "-rw-r--r-- root/root 3218 2026-12-06 23:47 ./etc/...".
struct Entry {
  std::string mode;   // ls-style, "-rw-r--r--"
  std::string owner;  // "root/root"
};

// The package's entries by path without the leading "." ("/etc/telestra/plan.ini").
std::map<std::string, Entry> Contents(const std::string& deb) {
  std::map<std::string, Entry> entries;
  CommandResult result = RunCommand({"dpkg-deb", "--contents", deb});
  EXPECT_EQ(result.status, 0) << result.output;
  for (absl::string_view line : absl::StrSplit(result.output, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 6) continue;
    std::string path(absl::StripPrefix(fields[5], "."));
    if (path.size() > 1) path = std::string(absl::StripSuffix(path, "/"));
    entries[path] = {std::string(fields[0]), std::string(fields[1])};
  }
  return entries;
}

// The package names of a Depends field (alternatives included, versions dropped).
std::set<std::string> DependedPackages(const std::string& depends) {
  std::set<std::string> names;
  for (absl::string_view item : absl::StrSplit(depends, absl::ByAnyChar(",|"), absl::SkipEmpty())) {
    item = absl::StripAsciiWhitespace(item);
    names.insert(std::string(item.substr(0, item.find_first_of(" (:"))));
  }
  return names;
}

// The package that ships each of `paths` (dpkg --search, all at once: each
// call reads the whole database), by path; a path no package ships is left
// out. A library is looked up under /lib and /usr/lib alike: the loader
// finds it under one, its package may ship it under the other.
std::map<std::string, std::string> OwningPackages(const std::vector<std::string>& paths) {
  std::vector<std::string> argv = {"dpkg", "--search"};
  std::map<std::string, std::string> by_alias;  // the path dpkg is asked -> the one asked for
  for (const std::string& path : paths) {
    const std::string alias = absl::StartsWith(path, "/usr/") ? path.substr(4) : "/usr" + path;
    for (const std::string& name : {path, alias}) {
      argv.push_back(name);
      by_alias[name] = path;
    }
  }
  std::map<std::string, std::string> owners;
  // "libfoo1:amd64: /lib/x86_64-linux-gnu/libfoo.so.1" (it also complains
  // on stderr about the aliases no package ships).
  for (absl::string_view line : absl::StrSplit(RunCommand(argv).output, '\n')) {
    const size_t separator = line.find(": /");
    if (separator == absl::string_view::npos || absl::StartsWith(line, "diversion")) continue;
    auto asked = by_alias.find(std::string(line.substr(separator + 2)));
    if (asked == by_alias.end()) continue;
    owners[asked->second] = std::string(line.substr(0, line.find_first_of(":,")));
  }
  return owners;
}

bool IsExecutableFile(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && access(path.c_str(), X_OK) == 0;
}

bool Exists(const std::string& path) {
  struct stat info;
  return lstat(path.c_str(), &info) == 0;
}

TEST(PackageTest, HasItsNameVersionArchitectureAndDescription) {
  const std::string deb = TestDebPath();
  EXPECT_EQ(ControlField(deb, "Package"), "telestra");
  EXPECT_EQ(ControlField(deb, "Version"), kTestDebVersion);
  CommandResult architecture = RunCommand({"dpkg", "--print-architecture"});
  EXPECT_EQ(ControlField(deb, "Architecture"),
            absl::StripTrailingAsciiWhitespace(architecture.output));
  EXPECT_THAT(ControlField(deb, "Maintainer"), HasSubstr("<"));
  EXPECT_THAT(ControlField(deb, "Description"), HasSubstr("Telestra SIP Gateway"));
  EXPECT_EQ(ControlField(deb, "Section"), "net");
}

TEST(PackageTest, ShipsEachFileWhereItBelongsWithItsMode) {
  const std::map<std::string, Entry> entries = Contents(TestDebPath());
  const std::map<std::string, std::string> expected = {
      {"/usr/sbin/telestra_gateway", "-rwxr-xr-x"},
      {"/usr/bin/telestra", "-rwxr-xr-x"},
      {"/etc/telestra", "drwxr-xr-x"},
      {"/etc/telestra/plan.ini", "-rw-r--r--"},
      {"/lib/systemd/system/telestra.service", "-rw-r--r--"},
      {"/usr/share/telestra/web/index.html", "-rw-r--r--"},
      {"/usr/share/telestra/web/app.js", "-rw-r--r--"},
      {"/usr/share/telestra/web/style.css", "-rw-r--r--"},
      {"/usr/share/doc/telestra/copyright", "-rw-r--r--"},
      {"/usr/share/doc/telestra/README.md", "-rw-r--r--"},
      {"/usr/share/doc/telestra/docs/deployment.md", "-rw-r--r--"},
      {"/usr/share/doc/telestra/docs/configuration.md", "-rw-r--r--"},
      {"/usr/share/doc/telestra/docs/cli.md", "-rw-r--r--"},
      {"/usr/share/doc/telestra/docs/restart.md", "-rw-r--r--"},
      {"/usr/share/doc/telestra/examples/plan.ini", "-rw-r--r--"},
  };
  for (const auto& [path, mode] : expected) {
    auto entry = entries.find(path);
    ASSERT_NE(entry, entries.end()) << path << " is not in the package";
    EXPECT_EQ(entry->second.mode, mode) << path;
  }
  // No BUILD file or other source leftover among the dashboard's files.
  for (const auto& [path, entry] : entries) {
    EXPECT_THAT(path, Not(HasSubstr("BUILD"))) << path;
  }
}

TEST(PackageTest, EveryEntryIsOwnedByRootAndWritableByRootOnly) {
  const std::map<std::string, Entry> entries = Contents(TestDebPath());
  ASSERT_GT(entries.size(), 20u);
  for (const auto& [path, entry] : entries) {
    EXPECT_EQ(entry.owner, "root/root") << path;
    ASSERT_EQ(entry.mode.size(), 10u) << path;
    EXPECT_TRUE(entry.mode[0] == '-' || entry.mode[0] == 'd') << path << " " << entry.mode;
    EXPECT_NE(entry.mode[5], 'w') << path << " " << entry.mode;  // group
    EXPECT_NE(entry.mode[8], 'w') << path << " " << entry.mode;  // others
    EXPECT_EQ(entry.mode.find_first_of("sSt"), std::string::npos) << path << " " << entry.mode;
  }
}

TEST(PackageTest, ThePlanIsAConffileAndTheMaintainerScriptsAreExecutable) {
  const std::string control = MakeTempDir("control");
  CommandResult extract = RunCommand({"dpkg-deb", "--control", TestDebPath(), control});
  ASSERT_EQ(extract.status, 0) << extract.output;
  EXPECT_EQ(ReadFileText(control + "/conffiles"), "/etc/telestra/plan.ini\n");
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    EXPECT_TRUE(IsExecutableFile(absl::StrCat(control, "/", script))) << script;
  }
  EXPECT_FALSE(Exists(control + "/preinst"));
}

// The packaged plan's "key = value" lines by section, comments dropped (a
// test failure and an empty map when the package cannot be extracted).
std::map<std::string, std::map<std::string, std::string>> PackagedPlan() {
  const std::string root = MakeTempDir("extract");
  CommandResult extract = RunCommand({"dpkg-deb", "--extract", TestDebPath(), root});
  EXPECT_EQ(extract.status, 0) << extract.output;
  std::string section;
  std::map<std::string, std::map<std::string, std::string>> sections;
  for (absl::string_view line :
       absl::StrSplit(ReadFileText(root + "/etc/telestra/plan.ini"), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    // Inline comments follow a space (docs/configuration.md).
    for (absl::string_view marker : {" ;", " #", "\t;", "\t#"}) {
      line = line.substr(0, line.find(marker));
    }
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "[")) {
      section = std::string(absl::StripSuffix(line, "]"));
      continue;
    }
    std::pair<std::string, std::string> pair = absl::StrSplit(line, absl::MaxSplits('=', 1));
    sections[section][std::string(absl::StripAsciiWhitespace(pair.first))] =
        std::string(absl::StripAsciiWhitespace(pair.second));
  }
  return sections;
}

// The default plan starts the gateway without reaching any SIP server: its
// one account never registers and its server's name never resolves.
TEST(PackageTest, TheDefaultPlanRegistersNoAccount) {
  std::map<std::string, std::map<std::string, std::string>> accounts = PackagedPlan();
  for (auto it = accounts.begin(); it != accounts.end();) {
    it = absl::EndsWith(it->first, "-settings") ? accounts.erase(it) : std::next(it);
  }
  ASSERT_THAT(accounts, Not(IsEmpty()));
  for (const auto& [name, keys] : accounts) {
    EXPECT_EQ(keys.count("register"), 1u) << "[" << name << "] must say register = false";
    if (keys.count("register") == 1) {
      EXPECT_EQ(keys.at("register"), "false") << name;
    }
    ASSERT_EQ(keys.count("server"), 1u) << name;
    EXPECT_TRUE(absl::EndsWith(keys.at("server"), ".invalid")) << name << ": " << keys.at("server");
    EXPECT_EQ(keys.count("pass"), 0u) << name;
  }
}

// The package turns the journal on (docs/restart.md): in the service's
// state directory, with the fixed SIP port it needs; a stop still ends the
// calls unless the operator asks otherwise.
TEST(PackageTest, TheDefaultPlanKeepsTheJournalInTheStateDirectory) {
  std::map<std::string, std::map<std::string, std::string>> plan = PackagedPlan();
  ASSERT_EQ(plan.count("state-settings"), 1u) << "no [state-settings] in the packaged plan";
  EXPECT_EQ(plan["state-settings"]["dir"], "/var/lib/telestra");
  EXPECT_EQ(plan["state-settings"].count("keep-calls-on-stop"), 0u);
  // Port 0 with the journal on is refused at start.
  int sip_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(plan["sip-settings"]["port"], &sip_port))
      << plan["sip-settings"]["port"];
  EXPECT_GT(sip_port, 0);
}

// Every shared library a packaged binary names (DT_NEEDED) belongs to a
// package of Depends, so `apt install ./telestra_*.deb` brings what the
// binaries load.
TEST(DependsTest, EveryLibraryTheBinariesNeedIsInAPackageOfDepends) {
  const std::string deb = TestDebPath();
  const std::set<std::string> depends = DependedPackages(ControlField(deb, "Depends"));
  ASSERT_THAT(depends, Contains("libc6"));
  const std::string root = MakeTempDir("extract");
  CommandResult extract = RunCommand({"dpkg-deb", "--extract", deb, root});
  ASSERT_EQ(extract.status, 0) << extract.output;
  const std::vector<std::string> binaries = {root + "/usr/sbin/telestra_gateway",
                                             root + "/usr/bin/telestra"};
  for (const std::string& binary : binaries) {
    // The libraries the binary names, and where the loader finds them.
    CommandResult dynamic = RunCommand({"readelf", "--dynamic", binary});
    ASSERT_EQ(dynamic.status, 0) << dynamic.output;
    std::vector<std::string> needed;
    for (absl::string_view line : absl::StrSplit(dynamic.output, '\n')) {
      if (!absl::StrContains(line, "(NEEDED)")) continue;
      const size_t open = line.find('['), close = line.find(']');
      if (open != absl::string_view::npos && close > open) {
        needed.emplace_back(line.substr(open + 1, close - open - 1));
      }
    }
    ASSERT_THAT(needed, Not(IsEmpty())) << binary;
    CommandResult ldd = RunCommand({"ldd", binary});
    ASSERT_EQ(ldd.status, 0) << ldd.output;
    std::map<std::string, std::string> found;  // soname -> path
    for (absl::string_view line : absl::StrSplit(ldd.output, '\n')) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (fields.size() >= 3 && fields[1] == "=>") {
        found[std::string(fields[0])] = std::string(fields[2]);
      } else if (!fields.empty() && absl::StartsWith(fields[0], "/")) {
        // The dynamic loader, named by its path: "/lib64/ld-linux-x86-64.so.2 (0x...)".
        found[std::string(fields[0].substr(fields[0].rfind('/') + 1))] = std::string(fields[0]);
      }
    }
    std::vector<std::string> paths;
    for (const std::string& library : needed) {
      ASSERT_EQ(found.count(library), 1u) << library << " is not found by ldd:\n" << ldd.output;
      paths.push_back(found[library]);
    }
    const std::map<std::string, std::string> owners = OwningPackages(paths);
    for (const std::string& library : needed) {
      auto owner = owners.find(found[library]);
      ASSERT_NE(owner, owners.end()) << library << " (" << found[library] << ") is in no package";
      // The package, or a name it provides (libspdlog1.10 provides the
      // libspdlog1.10-fmt9 that its shlibs file names), is in Depends.
      const std::string& package = owner->second;
      CommandResult provides =
          RunCommand({"dpkg-query", "--show", "--showformat=${Provides}", package});
      std::set<std::string> names = DependedPackages(provides.output);
      names.insert(package);
      EXPECT_TRUE(std::any_of(names.begin(), names.end(),
                              [&](const std::string& name) { return depends.count(name) > 0; }))
          << library << " comes from " << package << " (provides: " << provides.output
          << "), which is not in Depends";
    }
  }
}

// This machine, which built the binaries, has what Depends asks for (so
// apt install on a Debian 12 machine resolves it from the archive).
TEST(DependsTest, ThisMachineSatisfiesDepends) {
  const std::string depends = ControlField(TestDebPath(), "Depends");
  ASSERT_THAT(depends, Not(IsEmpty()));
  for (const char* tool : {"adduser", "init-system-helpers", "procps"}) {
    EXPECT_THAT(DependedPackages(depends), Contains(tool));
  }
  // dpkg-checkbuilddeps checks a relation list against the installed packages.
  const std::string source = MakeTempDir("source");
  ASSERT_EQ(mkdir((source + "/debian").c_str(), 0755), 0);
  std::ofstream(source + "/debian/control")
      << "Source: telestra\n\nPackage: telestra\nArchitecture: any\n";
  CommandResult check = RunCommand(
      {"/bin/sh", "-c", absl::StrCat("cd '", source, "' && dpkg-checkbuilddeps -d \"$DEPENDS\"")},
      {{"DEPENDS", depends}});
  EXPECT_EQ(check.status, 0) << check.output;
}

class ScratchInstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScratchRoot> root = ScratchRoot::Create();
    ASSERT_TRUE(root.ok()) << root.status();
    root_.emplace(*std::move(root));
    CommandResult install = root_->Install(TestDebPath());
    ASSERT_EQ(install.status, 0) << install.output;
  }

  std::optional<ScratchRoot> root_;
};

TEST_F(ScratchInstallTest, DpkgInstallsTheFilesWhereTheyBelong) {
  EXPECT_EQ(root_->Query("${Status} ${Version}"),
            absl::StrCat("install ok installed ", kTestDebVersion));
  EXPECT_TRUE(IsExecutableFile(root_->Path("/usr/sbin/telestra_gateway")));
  EXPECT_THAT(ReadFileText(root_->Path("/etc/telestra/plan.ini")), HasSubstr("[tcp-settings]"));
  EXPECT_THAT(ReadFileText(root_->Path("/lib/systemd/system/telestra.service")),
              HasSubstr("Type=notify"));
  EXPECT_THAT(ReadFileText(root_->Path("/usr/share/telestra/web/index.html")), HasSubstr("<html"));
  EXPECT_THAT(root_->Query("${Conffiles}"), HasSubstr("/etc/telestra/plan.ini "));
  CommandResult listed = root_->Dpkg({"--listfiles", "telestra"});
  EXPECT_THAT(listed.output, HasSubstr("/usr/sbin/telestra_gateway\n"));
  EXPECT_THAT(listed.output, HasSubstr("/lib/systemd/system/telestra.service\n"));
}

TEST_F(ScratchInstallTest, PostinstCreatesTheSystemUserAndProtectsThePlan) {
  const std::vector<std::string> calls = root_->TakeCalls();
  EXPECT_THAT(calls, Contains("adduser --system --group --quiet --home /var/lib/telestra "
                              "--no-create-home --comment Telestra SIP Gateway telestra"))
      << absl::StrJoin(calls, "\n");
  EXPECT_THAT(calls, Contains("dpkg-statoverride --update --add root telestra 0640 "
                              "/etc/telestra/plan.ini"));
  // A first install neither enables nor starts the service: the plan needs
  // the operator's accounts first (docs/deployment.md).
  for (const std::string& call : calls) {
    EXPECT_THAT(call, Not(HasSubstr(" enable "))) << call;
    EXPECT_THAT(call, Not(HasSubstr(" start "))) << call;
  }
}

TEST_F(ScratchInstallTest, ReinstallKeepsTheOperatorsPlan) {
  const std::string plan = root_->Path("/etc/telestra/plan.ini");
  std::ofstream(plan, std::ios::app) << "\n[office]\nuser = 2001\nserver = pbx.example.com\n";
  CommandResult again = root_->Install(TestDebPath());
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_THAT(ReadFileText(plan), HasSubstr("[office]"));
  // An existing user and statoverride are kept: postinst asks first.
  EXPECT_THAT(root_->TakeCalls(), Contains("getent passwd telestra"));
}

TEST_F(ScratchInstallTest, RemoveKeepsThePlanAndMasksTheUnit) {
  root_->TakeCalls();
  CommandResult remove = root_->Dpkg({"--remove", "telestra"});
  ASSERT_EQ(remove.status, 0) << remove.output;
  EXPECT_FALSE(Exists(root_->Path("/usr/sbin/telestra_gateway")));
  EXPECT_TRUE(Exists(root_->Path("/etc/telestra/plan.ini")));
  EXPECT_THAT(root_->TakeCalls(), Contains("deb-systemd-helper mask telestra.service"));
}

TEST_F(ScratchInstallTest, PurgeRemovesThePlanAndTheState) {
  ASSERT_EQ(mkdir(root_->Path("/var/lib/telestra").c_str(), 0750), 0);
  std::ofstream(root_->Path("/var/lib/telestra/state")) << "x";
  root_->TakeCalls();
  CommandResult purge = root_->Purge();
  ASSERT_EQ(purge.status, 0) << purge.output;
  EXPECT_FALSE(Exists(root_->Path("/etc/telestra/plan.ini")));
  EXPECT_FALSE(Exists(root_->Path("/etc/telestra")));
  EXPECT_FALSE(Exists(root_->Path("/var/lib/telestra")));
  EXPECT_EQ(root_->Query("${Status}"), "");
  EXPECT_THAT(root_->TakeCalls(), Contains("deb-systemd-helper purge telestra.service"));
}

}  // namespace
}  // namespace telestra::testing
