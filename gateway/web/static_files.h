#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::gateway {

// One file of the dashboard, ready to be served.
struct StaticFile {
  std::string path;  // filesystem path
  std::string mime_type;
  uint64_t size = 0;
  std::string etag;  // weak validator from size and modification time
};

// Maps URL paths to the files under one folder (the dashboard's `web/`).
//
// Only regular files below the root are served: a path with a "." or ".."
// segment, a segment starting with "." (hidden files), a backslash or a NUL
// is refused (PermissionDenied) before the filesystem is touched, so a path
// can never name anything outside the root. "/" and paths ending in "/" mean
// "index.html" in that folder. Symbolic links inside the root are followed
// (Bazel's runfiles are symbolic links): whoever can write the root decides
// what it serves.
//
// Thread: any (immutable after construction).
class StaticFiles {
 public:
  // `root` is a folder; "" serves nothing (every path is NotFound).
  explicit StaticFiles(std::string root);

  // `url_path` is the decoded path of the request target.
  // NotFound when no such regular file exists, PermissionDenied when the
  // path is refused, FailedPrecondition when it names a folder without the
  // trailing "/" (redirect to url_path + "/").
  absl::StatusOr<StaticFile> Resolve(absl::string_view url_path) const;

  const std::string& root() const { return root_; }

  // Content-Type for a file name, by extension ("application/octet-stream"
  // for unknown ones). Text types carry "; charset=utf-8".
  static const char* MimeType(absl::string_view file_name);

 private:
  const std::string root_;
};

}  // namespace telestra::gateway
