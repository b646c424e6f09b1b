#include "gateway/web/static_files.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace telestra::gateway {

StaticFiles::StaticFiles(std::string root) : root_(std::move(root)) {}

absl::StatusOr<StaticFile> StaticFiles::Resolve(absl::string_view url_path) const {
  if (url_path.empty() || url_path.front() != '/') {
    return absl::PermissionDeniedError("path must start with '/'");
  }
  if (url_path.find('\\') != absl::string_view::npos ||
      url_path.find('\0') != absl::string_view::npos) {
    return absl::PermissionDeniedError("refused character in path");
  }
  std::string relative;
  for (absl::string_view segment : absl::StrSplit(url_path.substr(1), '/')) {
    if (segment.empty()) continue;  // "//" and the trailing "/"
    if (segment.front() == '.') {
      // ".", ".." and hidden files (".git", ".env" ...).
      return absl::PermissionDeniedError("refused path segment");
    }
    absl::StrAppend(&relative, "/", segment);
  }
  if (root_.empty()) return absl::NotFoundError("no web root");
  if (url_path.back() == '/') absl::StrAppend(&relative, "/index.html");

  StaticFile file;
  file.path = absl::StrCat(root_, relative);
  struct stat info;
  if (stat(file.path.c_str(), &info) != 0) return absl::NotFoundError("no such file");
  if (S_ISDIR(info.st_mode)) {
    // "/folder" without the slash: the caller redirects to "/folder/", so
    // that relative links in its index resolve inside the folder.
    return absl::FailedPreconditionError("a folder: add a trailing '/'");
  }
  if (!S_ISREG(info.st_mode)) return absl::NotFoundError("not a regular file");
  file.mime_type = MimeType(file.path);
  file.size = static_cast<uint64_t>(info.st_size);
  const int64_t mtime_ns =
      static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  file.etag = absl::StrFormat("W/\"%x-%x\"", file.size, mtime_ns);
  return file;
}

const char* StaticFiles::MimeType(absl::string_view file_name) {
  size_t dot = file_name.rfind('.');
  size_t slash = file_name.rfind('/');
  if (dot == absl::string_view::npos || (slash != absl::string_view::npos && dot < slash)) {
    return "application/octet-stream";
  }
  const std::string ext = absl::AsciiStrToLower(file_name.substr(dot + 1));
  struct Entry {
    const char* ext;
    const char* type;
  };
  static constexpr Entry kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"wasm", "application/wasm"},
  };
  for (const Entry& entry : kTypes) {
    if (ext == entry.ext) return entry.type;
  }
  return "application/octet-stream";
}

}  // namespace telestra::gateway
