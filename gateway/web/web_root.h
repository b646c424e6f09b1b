#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace telestra::gateway {

// Finds the folder with the dashboard's files (the repository's `web/`).
//
// `flag_value` (--web_root) wins when set; it must then be a folder holding
// index.html. Otherwise the first of these that holds index.html:
//   1. <the running binary>.runfiles/telestra/web (`bazel build` / `bazel run`;
//      the binary is found through /proc/self/exe, then `argv0`),
//   2. $RUNFILES_DIR/telestra/web, then $TEST_SRCDIR/telestra/web (tests),
//   3. ./web (started from the source tree's root).
// NotFound lists every place tried.
// Thread: any.
absl::StatusOr<std::string> FindWebRoot(const std::string& flag_value, const std::string& argv0);

// The candidates FindWebRoot tries when no flag is given, in order.
std::vector<std::string> WebRootCandidates(const std::string& argv0);

}  // namespace telestra::gateway
