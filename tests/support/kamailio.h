// A private Kamailio registrar/proxy (examples/kamailio.cfg) for tests.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace telestra::testing {

struct KamailioOptions {
  // Config file; empty = examples/kamailio.cfg from the runfiles
  // ($TEST_SRCDIR/telestra/examples/kamailio.cfg), else $TELESTRA_KAMAILIO_CFG.
  std::string config_path;
  // Shared / private memory in MB (-m / -M). Sustained load needs about
  // 160 KB of shared memory per call/s: raise shm_mb for benchmarks.
  int shm_mb = 64;
  int pkg_mb = 8;
  // Kamailio's memory managers for shared / private memory (-x / -X): "qm"
  // (Kamailio's default, slow under load in Debian's build, which has
  // DBG_SR_MEMORY), "fm" or "tlsf". Empty = Kamailio's default.
  std::string shm_manager;
  std::string pkg_manager;
  // How long Start()/Restart() wait for Kamailio to answer.
  absl::Duration start_timeout = absl::Seconds(10);
};

// Runs /usr/sbin/kamailio in the foreground on a free 127.0.0.1 port (UDP and
// TCP), users 3001..3008 / sip3001..sip3008, realm "telestra":
//
//   kamailio -DD -E -f CFG -A SIP_PORT=PORT -A SIP_ADDR=127.0.0.1
//            -A CTL_SOCK="RUNDIR/ctl" -P RUNDIR/kamailio.pid -Y RUNDIR
//            -w RUNDIR -m 64 -M 8 [-x SHM_MANAGER] [-X PKG_MANAGER]
//
// RUNDIR is a fresh directory under $TEST_TMPDIR (else /tmp); Kamailio's
// output goes to RUNDIR/kamailio.log. The destructor stops Kamailio.
// Not thread-safe.
class KamailioProcess {
 public:
  static absl::StatusOr<std::unique_ptr<KamailioProcess>> Start();
  static absl::StatusOr<std::unique_ptr<KamailioProcess>> Start(const KamailioOptions& options);

  KamailioProcess(const KamailioProcess&) = delete;
  KamailioProcess& operator=(const KamailioProcess&) = delete;
  ~KamailioProcess();

  // SIP port (UDP and TCP) on 127.0.0.1.
  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string server() const;
  std::string log_path() const { return log_path_; }
  const std::string& run_dir() const { return run_dir_; }
  const std::string& config_path() const { return config_path_; }
  // The ctl unix socket, for `kamcmd -s unix:PATH`.
  const std::string& ctl_socket() const { return ctl_socket_; }
  // Pid of Kamailio's main process (also its process group), -1 if never
  // started. Still returns the old pid after Stop().
  pid_t pid() const { return pid_; }

  // True while the main process runs.
  bool IsRunning();

  // SIGTERM, waits for the whole process group to exit (SIGKILL after 5 s).
  // An error reports an abnormal exit (crash, or it had to be killed).
  absl::Status Stop();

  // Stop() and start again on the same port and ctl socket. Registrations
  // are lost (they live in memory only).
  absl::Status Restart();

  // Runs `kamcmd -s unix:CTL ARGS...`; returns its output.
  absl::StatusOr<std::string> Kamcmd(const std::vector<std::string>& args);

  // Number of live (not expired) contacts registered for `user` (the AoR is
  // the user name, e.g. "3001"), from `ul.dump`.
  absl::StatusOr<int> CountRegistered(const std::string& user);

 private:
  explicit KamailioProcess(const KamailioOptions& options) : options_(options) {}

  absl::Status Prepare();
  absl::Status Launch();
  absl::Status WaitUntilReady(absl::Time deadline);
  absl::StatusOr<std::string> KamcmdUntil(const std::vector<std::string>& args,
                                          absl::Time deadline);
  std::string LogTail() const;

  KamailioOptions options_;
  std::string config_path_;
  std::string run_dir_;
  bool remove_run_dir_ = false;
  std::string ctl_dir_;  // non-empty when the ctl socket lives apart (short path)
  std::string ctl_socket_;
  std::string log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
  int kamcmd_count_ = 0;
  std::unique_ptr<Subprocess> process_;
};

// Counts the live contacts of AoR `user` in `kamcmd ul.dump` output.
int CountContactsInUlDump(const std::string& ul_dump, const std::string& user);

}  // namespace telestra::testing
