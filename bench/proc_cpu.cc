#include "bench/proc_cpu.h"

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace telestra::bench {
namespace {

// The name and the fields after it (from field 3, the state, on) of a
// /proc/.../stat line; false if it cannot be read.
bool ReadStat(const std::string& path, std::string* name, std::vector<std::string>* fields) {
  std::string line;
  if (!std::getline(std::ifstream(path), line)) return false;
  const size_t open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 > line.size()) {
    return false;
  }
  *name = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  fields->clear();
  for (std::string field; rest >> field;) fields->push_back(field);
  return true;
}

// Calls `visit` with the name of each numeric entry of `dir`.
template <typename Visit>
void ForEachNumericEntry(const std::string& dir, Visit visit) {
  DIR* entries = opendir(dir.c_str());
  if (entries == nullptr) return;
  // Bounded by the entries of the folder (threads or processes).
  while (dirent* entry = readdir(entries)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    visit(std::string(entry->d_name));
  }
  closedir(entries);
}

}  // namespace

std::map<std::string, ThreadGroupCpu> ThreadCpuByName(pid_t pid) {
  const std::string dir = pid == 0 ? "/proc/self/task" : absl::StrCat("/proc/", pid, "/task");
  std::map<std::string, ThreadGroupCpu> groups;
  ForEachNumericEntry(dir, [&](const std::string& tid) {
    const std::string task = absl::StrCat(dir, "/", tid);
    std::string name;
    std::vector<std::string> fields;
    long long running = 0, waiting = 0;
    if (!ReadStat(task + "/stat", &name, &fields) ||
        !(std::ifstream(task + "/schedstat") >> running >> waiting)) {
      return;
    }
    ThreadGroupCpu& group = groups[name];
    ++group.threads;
    group.cpu_seconds += running / 1e9;
    group.wait_seconds += waiting / 1e9;
  });
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

double MachineIdleSeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait;
  return (idle + iowait) / static_cast<double>(sysconf(_SC_CLK_TCK));
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

OtherProcessesCpu::OtherProcessesCpu(std::vector<pid_t> excluded)
    : excluded_(std::move(excluded)) {}

OtherProcessesCpu::~OtherProcessesCpu() { Stop(); }

void OtherProcessesCpu::Start() {
  thread_ = std::thread([this] { Run(); });
}

void OtherProcessesCpu::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::map<std::string, double> OtherProcessesCpu::seconds_by_name() {
  absl::MutexLock lock(&mu_);
  return used_;
}

void OtherProcessesCpu::Run() {
  pthread_setname_np(pthread_self(), "proc-sampler");
  std::map<pid_t, Seen> last;
  Sample(&last, /*first=*/true);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Seconds(1))) break;
    }
    Sample(&last, /*first=*/false);
  }
  Sample(&last, /*first=*/false);
}

void OtherProcessesCpu::Sample(std::map<pid_t, Seen>* last, bool first) {
  const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::map<pid_t, Seen> now;
  ForEachNumericEntry("/proc", [&](const std::string& entry) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry, &pid) ||
        std::find(excluded_.begin(), excluded_.end(), pid) != excluded_.end()) {
      return;
    }
    Seen seen;
    std::vector<std::string> fields;
    if (!ReadStat(absl::StrCat("/proc/", entry, "/stat"), &seen.name, &fields) ||
        fields.size() < 13) {
      return;
    }
    seen.seconds = (std::atof(fields[11].c_str()) + std::atof(fields[12].c_str())) * tick;
    now[pid] = seen;
  });
  if (!first) {
    absl::MutexLock lock(&mu_);
    for (const auto& [pid, seen] : now) {
      auto before = last->find(pid);
      // A process that started since the last sample used all of its time
      // since then.
      used_[seen.name] += seen.seconds - (before == last->end() ? 0.0 : before->second.seconds);
    }
  }
  *last = std::move(now);
}

std::string FormatProcessCpu(const std::map<std::string, double>& seconds_by_name, double seconds,
                             int count) {
  std::vector<std::pair<std::string, double>> sorted(seconds_by_name.begin(),
                                                     seconds_by_name.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (int i = 0; i < count && i < static_cast<int>(sorted.size()); ++i) {
    if (sorted[i].second <= 0) break;
    absl::StrAppend(
        &out, out.empty() ? "" : ", ",
        absl::StrFormat("%s %.1f%%", sorted[i].first, 100 * sorted[i].second / seconds));
  }
  return out.empty() ? "-" : out;
}

}  // namespace telestra::bench
