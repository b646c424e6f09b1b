#include "gateway/web/web_root.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace telestra::gateway {
namespace {

bool HasIndex(const std::string& folder) {
  struct stat info;
  return stat(absl::StrCat(folder, "/index.html").c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

std::vector<std::string> WebRootCandidates(const std::string& argv0) {
  std::vector<std::string> candidates;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    candidates.push_back(absl::StrCat(std::string(exe, n), ".runfiles/telestra/web"));
  }
  if (!argv0.empty()) candidates.push_back(absl::StrCat(argv0, ".runfiles/telestra/web"));
  for (const char* variable : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    const char* value = getenv(variable);
    if (value != nullptr && *value != '\0') {
      candidates.push_back(absl::StrCat(value, "/telestra/web"));
    }
  }
  candidates.push_back("web");
  return candidates;
}

absl::StatusOr<std::string> FindWebRoot(const std::string& flag_value, const std::string& argv0) {
  if (!flag_value.empty()) {
    if (HasIndex(flag_value)) return flag_value;
    return absl::NotFoundError(
        absl::StrCat("--web_root=", flag_value, " is not a folder holding index.html"));
  }
  std::vector<std::string> candidates = WebRootCandidates(argv0);
  for (const std::string& candidate : candidates) {
    if (HasIndex(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("dashboard files (web/index.html) not found in ",
                                          absl::StrJoin(candidates, ", "),
                                          "; pass --web_root=FOLDER"));
}

}  // namespace telestra::gateway
