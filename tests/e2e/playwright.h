// playwright-core for the end-to-end tests: installed on first use from the
// npm cache (ensure_playwright.sh), with Debian's headless Chromium.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace telestra::testing {

// Runs ensure_playwright.sh (5 minutes at most); the node_modules directory
// that holds playwright-core, for node's --modules.
absl::StatusOr<std::string> EnsurePlaywright();

}  // namespace telestra::testing
