// libFuzzer target: the SIP plan parser (gateway/plan/plan.h).
//
// Every input is the text of a plan file. Properties checked:
//  - ParsePlan never crashes; an error is InvalidArgument and starts with
//    "<file>:<line>: ";
//  - an accepted plan keeps every documented bound (ports, sizes, RTP range
//    even-sized and starting even, codecs, retry min <= max, at least one
//    account with a user and a server);
//  - secrets never reach an error message: the input is parsed a second
//    time with every `pass` and `token` value replaced by a sentinel, which
//    must not appear in the error (the parse is otherwise the same).
// Built by scripts/fuzz.sh and replayed over fuzz/corpus/plan by
// //tests/hardening:fuzz_corpus_test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gateway/plan/plan.h"

namespace {

using telestra::gateway::Plan;

constexpr char kSentinel[] = "S3NT1NEL-SECRET-VALUE";

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "plan_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

// The same text with every secret value replaced by kSentinel, following
// the parser's own line rules (BOM, comments after whitespace, first '=').
std::string WithSentinelSecrets(absl::string_view text) {
  std::string bom;
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) {
    bom = "\xEF\xBB\xBF";
    text.remove_prefix(3);
  }
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (std::string& line : lines) {
    absl::string_view content = line;
    for (size_t i = 0; i < content.size(); ++i) {
      if ((content[i] == ';' || content[i] == '#') &&
          (i == 0 || absl::ascii_isspace(static_cast<unsigned char>(content[i - 1])))) {
        content = content.substr(0, i);
        break;
      }
    }
    content = absl::StripAsciiWhitespace(content);
    if (content.empty() || content.front() == '[') continue;
    size_t eq = content.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view key = absl::StripAsciiWhitespace(content.substr(0, eq));
    if (key == "pass" || key == "token") line = std::string(key) + " = " + kSentinel;
  }
  return bom + absl::StrJoin(lines, "\n");
}

void CheckPlan(const Plan& plan) {
  Check(!plan.accounts.empty(), "at least one account");
  for (const auto& account : plan.accounts) {
    Check(!account.name.empty() && !account.user.empty() && !account.server.empty(),
          "accounts have a name, user and server");
  }
  Check(plan.tcp.port >= 1 && plan.tcp.port <= 65535, "tcp port");
  Check(plan.tcp.max_clients >= 1, "max-clients");
  Check(plan.tcp.max_message_bytes >= 256 && plan.tcp.max_message_bytes <= 16 << 20,
        "max-message-bytes");
  Check(!plan.tcp.bind.empty() && !plan.sip.bind.empty(), "bind addresses");
  Check(plan.grpc.cert.empty() == plan.grpc.key.empty(), "grpc cert and key together");
  Check(plan.web.cert.empty() == plan.web.key.empty(), "web cert and key together");
  Check(plan.sip.port >= 0 && plan.sip.port <= 65535, "sip port");
  Check(plan.sip.transport == "udp" || plan.sip.transport == "tcp", "transport");
  Check(plan.sip.register_retry_min <= plan.sip.register_retry_max, "retry min <= max");
  Check(plan.rtp.port_min <= plan.rtp.port_max, "rtp range not empty");
  Check(plan.rtp.port_min % 2 == 0, "rtp range starts even");
  Check((plan.rtp.port_max - plan.rtp.port_min + 1) % 2 == 0, "rtp range even-sized");
  Check(!plan.rtp.codecs.empty(), "codecs");
  for (const std::string& codec : plan.rtp.codecs) {
    Check(codec == "PCMU" || codec == "PCMA", "known codec");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Plan> plan = telestra::gateway::ParsePlan(text, "fuzz.ini");
  if (plan.ok()) {
    CheckPlan(*plan);
  } else {
    Check(plan.status().code() == absl::StatusCode::kInvalidArgument, "InvalidArgument");
    Check(absl::StartsWith(plan.status().message(), "fuzz.ini:"), "error names the file");
  }
  // (An input that holds the sentinel itself cannot tell where it came from.)
  if (absl::StrContains(text, kSentinel)) return 0;
  const std::string masked = WithSentinelSecrets(text);
  absl::StatusOr<Plan> again = telestra::gateway::ParsePlan(masked, "fuzz.ini");
  Check(again.ok() == plan.ok(), "secret values do not change the outcome");
  if (!again.ok()) {
    Check(!absl::StrContains(again.status().message(), kSentinel), "no secret in an error message");
  }
  return 0;
}
