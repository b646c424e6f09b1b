#include "bench/proc_cpu.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace telestra::bench {

std::map<std::string, ThreadGroupCpu> ThreadCpuByName(int pid) {
  const std::string dir = pid == 0 ? "/proc/self/task" : absl::StrCat("/proc/", pid, "/task");
  const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::map<std::string, ThreadGroupCpu> groups;
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return groups;
  // Bounded by the process's threads.
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    const std::string task = absl::StrCat(dir, "/", entry->d_name);
    std::string line;
    std::getline(std::ifstream(task + "/stat"), line);
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));  // field 3 (state) on
    std::vector<std::string> fields;
    for (std::string field; rest >> field;) fields.push_back(field);
    if (fields.size() < 13) continue;
    ThreadGroupCpu& group = groups[line.substr(open + 1, close - open - 1)];
    ++group.threads;
    group.cpu_seconds += (std::stod(fields[11]) + std::stod(fields[12])) * tick;  // utime, stime
    long long running = 0, waiting = 0;
    if (std::ifstream(task + "/schedstat") >> running >> waiting)
      group.wait_seconds += waiting / 1e9;
  }
  closedir(tasks);
  return groups;
}

std::map<std::string, ThreadGroupCpu> Subtract(
    const std::map<std::string, ThreadGroupCpu>& after,
    const std::map<std::string, ThreadGroupCpu>& before) {
  std::map<std::string, ThreadGroupCpu> delta = after;
  for (auto& [name, group] : delta) {
    auto it = before.find(name);
    if (it == before.end()) continue;
    group.cpu_seconds = std::max(0.0, group.cpu_seconds - it->second.cpu_seconds);
    group.wait_seconds = std::max(0.0, group.wait_seconds - it->second.wait_seconds);
  }
  return delta;
}

ThreadGroupCpu Total(const std::map<std::string, ThreadGroupCpu>& groups) {
  ThreadGroupCpu total;
  for (const auto& [name, group] : groups) {
    total.threads += group.threads;
    total.cpu_seconds += group.cpu_seconds;
    total.wait_seconds += group.wait_seconds;
  }
  return total;
}

MachineCpu MachineCpuNow() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  // user nice system idle iowait irq softirq steal (guest time is in user).
  double value[8] = {};
  stat >> cpu;
  for (double& v : value) stat >> v;
  const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  MachineCpu machine;
  for (int i = 0; i < 8; ++i) {
    machine.total_seconds += value[i] * tick;
    if (i != 3 && i != 4) machine.busy_seconds += value[i] * tick;
  }
  return machine;
}

std::string FormatThreadCpu(const std::map<std::string, ThreadGroupCpu>& groups, double seconds,
                            double min_percent) {
  std::vector<std::pair<std::string, ThreadGroupCpu>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.cpu_seconds > b.second.cpu_seconds;
  });
  std::string out;
  for (const auto& [name, group] : sorted) {
    const double percent = 100 * group.cpu_seconds / seconds;
    if (percent < min_percent) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ",
                    absl::StrFormat("%s %.1f%% (%d, waited %.1f%%)", name, percent, group.threads,
                                    100 * group.wait_seconds / seconds));
  }
  return out.empty() ? "-" : out;
}

}  // namespace telestra::bench
