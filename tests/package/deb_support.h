// The Debian package built for the tests (//tests/package:telestra_deb), the
// commands that look into it, and installs of it into scratch roots.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace telestra::testing {

// The version //tests/package:telestra_deb is built with.
inline constexpr char kTestDebVersion[] = "0.0.0~test";

// What a command printed (stdout and stderr together) and how it ended.
struct CommandResult {
  int status = -1;  // exit code, 128 + signal, or -1: it did not start or finish in time
  std::string output;
};

// Runs argv to its end (at most `timeout`) with PATH set to the system's
// folders, sbin included (dpkg looks for ldconfig there), plus `env`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const Subprocess::Environment& env = {},
                         absl::Duration timeout = absl::Seconds(60));

// The system's PATH for the commands above.
inline constexpr char kSystemPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The .deb of //tests/package:telestra_deb.
std::string TestDebPath();

// One field of the package's control file (dpkg-deb --field), "" if absent.
std::string ControlField(const std::string& deb, const std::string& field);

// A new, empty folder under the test's temporary folder.
std::string MakeTempDir(const std::string& prefix);

// A folder that dpkg installs packages into (dpkg --root, with a database
// of its own). The maintainer scripts run outside a chroot
// (--force-script-chrootless, with DPKG_ROOT set to the folder, as
// mmdebstrap's chrootless mode runs them), and the tools they call that
// would change this machine (adduser, getent, dpkg-statoverride, systemctl,
// deb-systemd-helper, deb-systemd-invoke) are recorders first in PATH: the
// host is not changed. Dependencies are not checked here (the root holds no
// other package); see DependsTest for them.
class ScratchRoot {
 public:
  static absl::StatusOr<ScratchRoot> Create();

  // dpkg ARGS in this root (--install DEB, --purge telestra, ...).
  CommandResult Dpkg(const std::vector<std::string>& args) const;
  CommandResult Install(const std::string& deb) const { return Dpkg({"--install", deb}); }
  CommandResult Purge() const { return Dpkg({"--purge", "telestra"}); }
  // dpkg-query --show --showformat=FORMAT telestra in this root.
  std::string Query(const std::string& format) const;

  // Where the package's absolute `path` is in this root.
  std::string Path(const std::string& path) const { return dir_ + path; }
  const std::string& dir() const { return dir_; }

  // The recorded calls of the maintainer scripts, in order, one a line:
  // "adduser --system ...". Clears the record.
  std::vector<std::string> TakeCalls() const;

 private:
  ScratchRoot(std::string dir, std::string tools)
      : dir_(std::move(dir)), tools_(std::move(tools)) {}
  std::string dir_;    // the root
  std::string tools_;  // the recorders and their calls file
};

}  // namespace telestra::testing
