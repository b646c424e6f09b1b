#include "tests/e2e/playwright.h"

#include "absl/status/status.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/integration/gateway_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"

namespace telestra::testing {

absl::StatusOr<std::string> EnsurePlaywright() {
  const std::string out = TestTempDir() + "/node_modules.path";
  const std::string log = TestTempDir() + "/ensure_playwright.log";
  auto ensure =
      Subprocess::Start({"/bin/bash", Runfile("tests/e2e/ensure_playwright.sh"), out}, log);
  if (!ensure.ok()) return ensure.status();
  auto status = (*ensure)->WaitForExit(absl::Now() + absl::Minutes(5));
  if (!status.ok() || *status != 0) {
    return absl::UnavailableError("cannot install playwright-core:\n" + ReadFileText(log));
  }
  return std::string(absl::StripAsciiWhitespace(ReadFileText(out)));
}

}  // namespace telestra::testing
