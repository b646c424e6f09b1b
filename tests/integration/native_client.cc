#include "tests/integration/native_client.h"

#include <simdjson.h>
#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "tests/support/loopback_socket.h"

namespace telestra::testing {
namespace {

// One parser per thread, reused: a parser's first parse allocates its
// buffers, which cost more than the parse of a small event (the CPS
// benchmark reads a few fields of every event on the same 2 cores as the
// gateway).
simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

bool Lookup(const std::string& json, const std::string& field, simdjson::dom::element* out) {
  simdjson::dom::element doc;
  if (ThreadParser().parse(json).get(doc) != simdjson::SUCCESS) return false;
  return doc[field].get(*out) == simdjson::SUCCESS;
}

}  // namespace

std::string NativeEvent::Str(const std::string& field) const {
  simdjson::dom::element value;
  std::string_view text;
  if (!Lookup(json, field, &value) || value.get(text) != simdjson::SUCCESS) return "";
  return std::string(text);
}

int64_t NativeEvent::Int(const std::string& field) const {
  simdjson::dom::element value;
  int64_t number;
  if (!Lookup(json, field, &value) || value.get(number) != simdjson::SUCCESS) return -1;
  return number;
}

double NativeEvent::Num(const std::string& field) const {
  simdjson::dom::element value;
  double number;
  if (!Lookup(json, field, &value) || value.get(number) != simdjson::SUCCESS) return std::nan("");
  return number;
}

bool NativeEvent::Has(const std::string& field) const {
  simdjson::dom::element value;
  return Lookup(json, field, &value);
}

absl::StatusOr<std::unique_ptr<NativeClient>> NativeClient::Connect(int port) {
  absl::StatusOr<int> fd = ConnectLoopback(port);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<NativeClient>(new NativeClient(*fd));
}

NativeClient::~NativeClient() { close(fd_); }

bool NativeClient::SendRaw(const std::string& bytes) { return SendAll(fd_, bytes); }

bool NativeClient::Send(const std::string& json) { return SendRaw(json + std::string(1, '\0')); }

void NativeClient::Queue(const std::string& json) {
  queued_.append(json);
  queued_.push_back('\0');
}

bool NativeClient::Flush() {
  if (queued_.empty()) return true;
  bool sent = SendRaw(queued_);
  queued_.clear();
  return sent;
}

std::optional<NativeEvent> NativeClient::Next(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    size_t nul = buffer_.find('\0', read_from_);
    if (nul != std::string::npos) {
      NativeEvent event{buffer_.substr(read_from_, nul - read_from_)};
      read_from_ = nul + 1;
      if (read_from_ == buffer_.size()) {
        buffer_.clear();
        read_from_ = 0;
      }
      return event;
    }
    if (read_from_ > 0) {  // keep only the partial event before reading on
      buffer_.erase(0, read_from_);
      read_from_ = 0;
    }
    if (closed_) return std::nullopt;
    const ReadResult read = ReadSome(fd_, deadline, &buffer_);
    if (read == ReadResult::kTimedOut) return std::nullopt;
    if (read == ReadResult::kClosed) closed_ = true;
  }
}

std::optional<NativeEvent> NativeClient::WaitFor(
    const std::function<bool(const NativeEvent&)>& match, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    std::optional<NativeEvent> event = Next(left);
    if (!event) return std::nullopt;
    if (match(*event)) return event;
    skipped_.push_back(*event);
  }
}

std::string NativeClient::ReadUntilClosed(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!closed_) {
    const ReadResult read = ReadSome(fd_, deadline, &buffer_);
    if (read == ReadResult::kTimedOut) break;
    if (read == ReadResult::kClosed) closed_ = true;
  }
  std::string all = buffer_.substr(read_from_);
  buffer_.clear();
  read_from_ = 0;
  return all;
}

bool NativeClient::WaitForAll(const std::vector<std::function<bool(const NativeEvent&)>>& matches,
                              absl::Duration timeout) {
  std::vector<bool> seen(matches.size(), false);
  size_t left = matches.size();
  absl::Time deadline = absl::Now() + timeout;
  while (left > 0) {
    absl::Duration remaining = deadline - absl::Now();
    if (remaining <= absl::ZeroDuration()) return false;
    std::optional<NativeEvent> event = Next(remaining);
    if (!event) return false;
    bool used = false;
    for (size_t i = 0; i < matches.size(); ++i) {
      if (!seen[i] && matches[i](*event)) {
        seen[i] = true;
        --left;
        used = true;
        break;
      }
    }
    if (!used) skipped_.push_back(*event);
  }
  return true;
}

int WaitForAccountStatus(NativeClient& client, const std::string& account, int want,
                         absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  int last = -1;
  while (absl::Now() < deadline) {
    client.Send(absl::StrCat(R"({"cmd":"get-status","account":")", account, R"("})"));
    auto status = client.WaitFor(
        [&](const NativeEvent& e) { return e.event() == "status" && e.Str("account") == account; },
        absl::Seconds(5));
    if (!status) return last;
    last = static_cast<int>(status->Int("account_status"));
    if (last == want) return last;
    absl::SleepFor(absl::Milliseconds(20));  // poll interval while registering
  }
  return last;
}

}  // namespace telestra::testing
