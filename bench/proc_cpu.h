// Where the CPU goes, from /proc: per thread of a process (grouped by thread
// name, since gRPC names all its threads alike), the machine's idle time,
// and the other processes of the machine, so that a benchmark can say what
// shared the cores with what it measured.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace telestra::bench {

struct ThreadGroupCpu {
  int threads = 0;
  // Time on a CPU and time runnable but waiting for one
  // (/proc/PID/task/TID/schedstat: nanosecond counters, unlike the tick
  // samples of /proc/stat, which miss much of threads that run in short
  // bursts on timers).
  double cpu_seconds = 0;
  double wait_seconds = 0;
};

// Every thread of `pid` (0: this process), summed by thread name.
// Thread: any.
std::map<std::string, ThreadGroupCpu> ThreadCpuByName(pid_t pid);

// `after` - `before`, by name (threads gone by `after` are left out; a
// group's thread count is `after`'s).
std::map<std::string, ThreadGroupCpu> Subtract(const std::map<std::string, ThreadGroupCpu>& after,
                                               const std::map<std::string, ThreadGroupCpu>& before);

// The sum over groups.
ThreadGroupCpu Total(const std::map<std::string, ThreadGroupCpu>& groups);

// The machine's idle time (idle + iowait of /proc/stat, summed over the
// cores; the kernel keeps it from nanosecond stamps on a tickless kernel):
// busy = cores x wall time - idle.
double MachineIdleSeconds();

// "name 12.3% (2, waited 0.4%), ..." for the groups above `min_percent` of
// one core over `seconds`, biggest first.
std::string FormatThreadCpu(const std::map<std::string, ThreadGroupCpu>& groups, double seconds,
                            double min_percent = 0.5);

// The CPU time (utime + stime) of every other process of the machine while
// it runs, by command name, sampled every second so that short-lived ones
// (a compiler's) are counted too; what a process used in its last second
// before it exited is missed.
// Thread: Start, Stop and seconds_by_name from one thread; it samples on
// its own ("proc-sampler").
class OtherProcessesCpu {
 public:
  explicit OtherProcessesCpu(std::vector<pid_t> excluded);
  ~OtherProcessesCpu();
  OtherProcessesCpu(const OtherProcessesCpu&) = delete;
  OtherProcessesCpu& operator=(const OtherProcessesCpu&) = delete;

  void Start();
  void Stop();
  // After Stop.
  std::map<std::string, double> seconds_by_name();

 private:
  struct Seen {
    std::string name;
    double seconds = 0;
  };
  void Run();
  // Adds what each process used since the last sample.
  void Sample(std::map<pid_t, Seen>* last, bool first);

  const std::vector<pid_t> excluded_;
  std::thread thread_;
  absl::Mutex mu_;  // Lock order: a leaf.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, double> used_ ABSL_GUARDED_BY(mu_);
};

// "cc1plus 45.0%, java 6.1%, ..." (percent of one core over `seconds`, the
// biggest `count`).
std::string FormatProcessCpu(const std::map<std::string, double>& seconds_by_name, double seconds,
                             int count = 5);

}  // namespace telestra::bench
