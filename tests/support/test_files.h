// Files of a test: reading one whole, the test's scratch directory.
#pragma once

#include <string>

namespace telestra::testing {

// The whole content of the file at `path` ("" if it cannot be read).
std::string ReadFileText(const std::string& path);

// The test's scratch directory: $TEST_TMPDIR, else /tmp.
std::string TestTempDir();

}  // namespace telestra::testing
