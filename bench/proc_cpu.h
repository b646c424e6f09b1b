// Where the CPU goes, from /proc: per thread of a process (grouped by thread
// name, since gRPC names all its threads alike) and for the whole machine,
// so that a benchmark can say what shared the cores with what it measured.
#pragma once

#include <map>
#include <string>

namespace telestra::bench {

struct ThreadGroupCpu {
  int threads = 0;
  double cpu_seconds = 0;   // utime + stime (/proc/PID/task/TID/stat)
  double wait_seconds = 0;  // runnable but waiting for a CPU (schedstat, 2nd field)
};

// Every thread of `pid` (0: this process), summed by thread name.
// Thread: any.
std::map<std::string, ThreadGroupCpu> ThreadCpuByName(int pid);

// `after` - `before`, by name (threads gone by `after` are left out; a
// group's thread count is `after`'s).
std::map<std::string, ThreadGroupCpu> Subtract(const std::map<std::string, ThreadGroupCpu>& after,
                                               const std::map<std::string, ThreadGroupCpu>& before);

// The sum over groups.
ThreadGroupCpu Total(const std::map<std::string, ThreadGroupCpu>& groups);

// The machine's CPU time from /proc/stat's first line, in seconds summed
// over all cores: busy (everything but idle and iowait) and all.
struct MachineCpu {
  double busy_seconds = 0;
  double total_seconds = 0;
};
MachineCpu MachineCpuNow();

// "name 12.3% (2 threads, waited 0.4%), ..." for the groups above
// `min_percent` of one core over `seconds`, biggest first.
std::string FormatThreadCpu(const std::map<std::string, ThreadGroupCpu>& groups, double seconds,
                            double min_percent = 0.5);

}  // namespace telestra::bench
