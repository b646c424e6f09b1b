#include "gateway/web/ws_messages.h"

#include "absl/strings/str_cat.h"
#include "gateway/native/json_codec.h"

namespace telestra::gateway {
namespace {

// `text` is known not to need escaping (hex ids, fixed ASCII reasons); this
// keeps the output valid JSON should that ever change.
std::string Quoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string SnapshotMessage(absl::string_view instance, uint64_t seq,
                            const std::vector<telestra::v1::Status>& accounts) {
  std::string out = absl::StrCat(R"({"event":"snapshot","instance":)", Quoted(instance),
                                 R"(,"seq":)", seq, R"(,"accounts":[)");
  bool first = true;
  for (const telestra::v1::Status& status : accounts) {
    telestra::v1::Event event;
    event.set_seq(seq);
    *event.mutable_status() = status;
    if (!first) out.push_back(',');
    first = false;
    out.append(JsonCodec::Encode(event, /*extended=*/true));
  }
  out.append("]}");
  return out;
}

std::string ResumedMessage(absl::string_view instance, uint64_t after_seq, size_t replayed) {
  return absl::StrCat(R"({"event":"resumed","instance":)", Quoted(instance), R"(,"after_seq":)",
                      after_seq, R"(,"replayed":)", replayed, "}");
}

std::string GapMessage(uint64_t after_seq, absl::string_view reason) {
  return absl::StrCat(R"({"event":"gap","after_seq":)", after_seq, R"(,"reason":)", Quoted(reason),
                      "}");
}

WebResumePlan PlanWebResume(const backend::ResumePoint& point) {
  using Outcome = backend::ResumePoint::Outcome;
  WebResumePlan plan;
  switch (point.outcome) {
    case Outcome::kFresh:
      break;
    case Outcome::kComplete:
      plan.resume = true;
      break;
    case Outcome::kOtherInstance:
      plan.gap_reason = "the gateway restarted: its events start again at 1";
      break;
    case Outcome::kAhead:
      plan.gap_reason = "after_seq is ahead of the gateway's newest event (it restarted?)";
      break;
    case Outcome::kEvicted:
      plan.gap_reason = "the events after after_seq are no longer kept";
      break;
  }
  return plan;
}

}  // namespace telestra::gateway
