// Replays one fuzz target's corpus, fuzz/corpus/<FUZZ_TARGET>/ (the vendor
// document's examples, hand-written seeds and every input that ever made a
// fuzzer fail), through the target's LLVMFuzzerTestOneInput, which aborts
// when one of its properties is violated. So the fuzzers' findings stay
// fixed in the normal suite and are rechecked under --config=asan, without
// clang or libFuzzer.
#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> CorpusFiles() {
  const char* root = std::getenv("TEST_SRCDIR");
  const std::string dir =
      absl::StrCat(root != nullptr ? root : ".", "/telestra/fuzz/corpus/", FUZZ_TARGET);
  std::vector<std::string> files;
  DIR* listing = opendir(dir.c_str());
  if (listing == nullptr) return files;
  while (dirent* entry = readdir(listing)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") files.push_back(absl::StrCat(dir, "/", name));
  }
  closedir(listing);
  return files;
}

TEST(FuzzCorpusTest, EveryCorpusInputKeepsTheTargetsProperties) {
  const std::vector<std::string> files = CorpusFiles();
  ASSERT_GE(files.size(), 5u) << "corpus of " << FUZZ_TARGET << " not found";
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string data = bytes.str();
    SCOPED_TRACE(file);
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
              0);
  }
}

}  // namespace
