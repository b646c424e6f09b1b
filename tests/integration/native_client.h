#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace telestra::testing {

// One parsed event from the native port: the raw JSON plus field access.
struct NativeEvent {
  std::string json;
  std::string Str(const std::string& field) const;  // "" if absent
  int64_t Int(const std::string& field) const;      // -1 if absent
  double Num(const std::string& field) const;       // any number; NaN if absent
  bool Has(const std::string& field) const;
  std::string event() const { return Str("event"); }
};

// A blocking test client for the native port (NUL-framed JSON).
// Thread: one thread.
class NativeClient {
 public:
  static absl::StatusOr<std::unique_ptr<NativeClient>> Connect(int port);
  ~NativeClient();

  // Sends `json` followed by a NUL (or raw bytes with SendRaw).
  bool Send(const std::string& json);
  bool SendRaw(const std::string& bytes);

  // Pipelining: Queue frames `json` as Send does but only keeps it;
  // Flush sends everything queued in one write (true if nothing was).
  void Queue(const std::string& json);
  bool Flush();

  // The next event, or nullopt if none arrives before the timeout (or the
  // connection closed: see closed()).
  std::optional<NativeEvent> Next(absl::Duration timeout = absl::Seconds(5));

  // Reads events until one satisfies `match`; the ones skipped are kept in
  // skipped(). nullopt on timeout.
  std::optional<NativeEvent> WaitFor(const std::function<bool(const NativeEvent&)>& match,
                                     absl::Duration timeout = absl::Seconds(10));

  // Reads events until each of `matches` has matched one of them, in any
  // order. False on timeout.
  bool WaitForAll(const std::vector<std::function<bool(const NativeEvent&)>>& matches,
                  absl::Duration timeout = absl::Seconds(10));

  // Everything the server sends until it closes the connection (or the
  // timeout), raw: for plain HTTP requests in tests.
  std::string ReadUntilClosed(absl::Duration timeout = absl::Seconds(5));

  // True if a whole event has been read and not yet returned by Next (so
  // Next would not wait for the network).
  bool HasBufferedEvent() const { return buffer_.find('\0', read_from_) != std::string::npos; }

  // True once the server closed the connection.
  bool closed() const { return closed_; }
  const std::vector<NativeEvent>& skipped() const { return skipped_; }

 private:
  explicit NativeClient(int fd) : fd_(fd) {}
  int fd_;
  bool closed_ = false;
  std::string buffer_;
  size_t read_from_ = 0;  // buffer_ before this offset has been returned
  std::string queued_;    // framed commands for Flush
  std::vector<NativeEvent> skipped_;
};

// Asks for an account's status until it equals `want` (or the deadline).
// Returns the last status seen.
int WaitForAccountStatus(NativeClient& client, const std::string& account, int want,
                         absl::Duration timeout = absl::Seconds(10));

}  // namespace telestra::testing
