#include "gateway/plan/plan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "backend/media_engine.h"
#include "backend/sip_syntax.h"
#include "boost/asio/ip/network_v4.hpp"
#include "boost/asio/ip/network_v6.hpp"

namespace telestra::gateway {

std::string DeprecatedKnobWarning(absl::string_view knob) {
  return absl::StrCat(knob,
                      " is deprecated and ignored: the SIP thread's wake-ups are no longer "
                      "tuned by settings (docs/configuration.md, \"Deprecated settings\")");
}

namespace {

// The known settings sections; every other section whose name does not end
// in "-settings" is an account.
constexpr absl::string_view kTcpSection = "tcp-settings";
constexpr absl::string_view kGrpcSection = "grpc-settings";
constexpr absl::string_view kWebSection = "web-settings";
constexpr absl::string_view kSipSection = "sip-settings";
constexpr absl::string_view kRtpSection = "rtp-settings";
constexpr absl::string_view kMetricsSection = "metrics-settings";
constexpr absl::string_view kStateSection = "state-settings";

constexpr int64_t kMaxMessageBytesLimit = 16 * 1024 * 1024;

// The one wording of a range error, for plan keys and flags alike:
// "<name> must be at least <min>, got <value>" or "... must be <min>..<max>, ...".
std::string RangeProblem(absl::string_view name, int64_t min, int64_t max, int64_t value) {
  if (max == INT_MAX) return absl::StrFormat("%s must be at least %d, got %d", name, min, value);
  return absl::StrFormat("%s must be %d..%d, got %d", name, min, max, value);
}

// One `key = value` line.
struct Entry {
  std::string key;
  std::string value;
  int line = 0;
};

// One `[name]` section with its entries in file order.
struct Section {
  std::string name;
  int line = 0;
  std::vector<Entry> entries;
};

absl::Status LineError(absl::string_view file, int line, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", problem));
}

// Removes an inline or full-line comment: `;` or `#` at the start of the line
// or preceded by whitespace. `a;b` keeps its `;`.
absl::string_view StripComment(absl::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if ((line[i] == ';' || line[i] == '#') &&
        (i == 0 || absl::ascii_isspace(static_cast<unsigned char>(line[i - 1])))) {
      return line.substr(0, i);
    }
  }
  return line;
}

bool IsSettingsName(absl::string_view name) {
  return absl::EndsWith(absl::AsciiStrToLower(name), "-settings");
}

bool IsKnownSettings(absl::string_view name) {
  return name == kTcpSection || name == kGrpcSection || name == kWebSection ||
         name == kSipSection || name == kRtpSection || name == kMetricsSection ||
         name == kStateSection;
}

// Pass 1: splits the text into sections. Reports syntax errors (malformed
// lines, keys outside sections, bad or duplicate section headers). Error
// messages never echo a whole line, since it may hold a password.
absl::Status Tokenize(absl::string_view text, absl::string_view file,
                      std::vector<Section>* sections, int* line_count) {
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);  // BOM
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  *line_count = static_cast<int>(lines.size());
  std::map<std::string, int> section_lines;
  for (size_t i = 0; i < lines.size(); ++i) {
    const int line_no = static_cast<int>(i) + 1;
    absl::string_view line = absl::StripAsciiWhitespace(StripComment(lines[i]));
    if (line.empty()) continue;
    const std::string where =
        sections->empty() ? "" : absl::StrCat("[", sections->back().name, "] ");
    if (line.front() == '[') {
      if (line.back() != ']') {
        if (line.find(']') == absl::string_view::npos) {
          return LineError(file, line_no, "malformed section header: unterminated '['");
        }
        return LineError(file, line_no,
                         "malformed section header: unexpected text after "
                         "']' (a comment needs whitespace before ';' or '#')");
      }
      absl::string_view name = absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
      if (name.empty()) {
        return LineError(file, line_no, "malformed section header: empty name");
      }
      if (name.find_first_of("[]") != absl::string_view::npos) {
        return LineError(file, line_no, "malformed section header: '[' or ']' inside the name");
      }
      const std::string section_name(name);
      if (IsSettingsName(section_name) && !IsKnownSettings(section_name)) {
        return LineError(file, line_no,
                         absl::StrCat("[", section_name,
                                      "] unknown section; the settings sections are "
                                      "[tcp-settings], [grpc-settings], [web-settings], "
                                      "[sip-settings], [rtp-settings], [metrics-settings] "
                                      "and [state-settings]"));
      }
      auto [it, inserted] = section_lines.emplace(section_name, line_no);
      if (!inserted) {
        return LineError(
            file, line_no,
            absl::StrFormat("[%s] duplicate section (first on line %d)", section_name, it->second));
      }
      sections->push_back(Section{section_name, line_no, {}});
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return LineError(
          file, line_no,
          absl::StrCat(where, "malformed line: expected 'key = value' or '[section]'"));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits('=', 1));
    absl::string_view key = absl::StripAsciiWhitespace(parts[0]);
    absl::string_view value = absl::StripAsciiWhitespace(parts[1]);
    if (key.empty()) {
      return LineError(file, line_no,
                       absl::StrCat(where, "malformed line: missing key before '='"));
    }
    if (sections->empty()) {
      return LineError(
          file, line_no,
          absl::StrCat("key '", key, "' outside any section (add a [section] header above it)"));
    }
    sections->back().entries.push_back(Entry{std::string(key), std::string(value), line_no});
  }
  return absl::OkStatus();
}

// Pass 2 helper: applies one section's entries through a table of key
// handlers and formats errors as "<file>:<line>: [<section>] <problem>".
class SectionReader {
 public:
  using Handler = std::function<absl::Status(const Entry&)>;

  SectionReader(absl::string_view file, const Section& section) : file_(file), section_(section) {}

  absl::Status Error(int line, absl::string_view problem) const {
    return LineError(file_, line, absl::StrCat("[", section_.name, "] ", problem));
  }

  // For problems not tied to one line: reported at the section header.
  absl::Status HeaderError(absl::string_view problem) const {
    return Error(section_.line, problem);
  }

  // Runs `handlers` over the entries in file order. Unknown and duplicate
  // keys are errors.
  absl::Status Apply(const std::vector<std::pair<absl::string_view, Handler>>& handlers) {
    for (const Entry& entry : section_.entries) {
      const Handler* handler = nullptr;
      for (const auto& [key, h] : handlers) {
        if (key == entry.key) handler = &h;
      }
      if (handler == nullptr) {
        return Error(entry.line, absl::StrCat("unknown key '", entry.key, "'"));
      }
      auto [it, inserted] = seen_.emplace(entry.key, entry.line);
      if (!inserted) {
        return Error(entry.line, absl::StrFormat("duplicate key '%s' (first on line %d)", entry.key,
                                                 it->second));
      }
      if (absl::Status status = (*handler)(entry); !status.ok()) return status;
    }
    return absl::OkStatus();
  }

  // The line of `key` if it was seen so far, else 0.
  int LineOf(absl::string_view key) const {
    auto it = seen_.find(std::string(key));
    return it == seen_.end() ? 0 : it->second;
  }

  absl::Status Int(const Entry& e, int64_t min, int64_t max, int* out) const {
    int64_t value = 0;
    if (!absl::SimpleAtoi(e.value, &value)) {
      return Error(e.line, absl::StrFormat("%s must be an integer, got '%s'", e.key, e.value));
    }
    if (value < min || value > max) return Error(e.line, RangeProblem(e.key, min, max, value));
    *out = static_cast<int>(value);
    return absl::OkStatus();
  }

  absl::Status Bool(const Entry& e, bool* out) const {
    const std::string v = absl::AsciiStrToLower(e.value);
    if (v == "true" || v == "yes" || v == "1" || v == "on") {
      *out = true;
    } else if (v == "false" || v == "no" || v == "0" || v == "off") {
      *out = false;
    } else {
      return Error(e.line, absl::StrFormat("%s must be a boolean (true/false, yes/no, "
                                           "1/0, on/off), got '%s'",
                                           e.key, e.value));
    }
    return absl::OkStatus();
  }

  absl::Status NonEmpty(const Entry& e, std::string* out) const {
    if (e.value.empty()) {
      return Error(e.line, absl::StrCat(e.key, " must not be empty"));
    }
    *out = e.value;
    return absl::OkStatus();
  }

  // Reads the environment variable named by `e` (e.g. pass-env, token-env).
  // The variable's value never appears in an error.
  absl::Status Env(const Entry& e, std::string* out) const {
    if (e.value.empty()) {
      return Error(e.line, absl::StrCat(e.key, " must name an environment variable"));
    }
    const char* value = std::getenv(e.value.c_str());
    if (value == nullptr) {
      return Error(e.line, absl::StrCat(e.key, " names environment variable '", e.value,
                                        "', which is not set"));
    }
    *out = value;
    return absl::OkStatus();
  }

  // `secret` given inline (`inline_key`) or through `env_key`, never both.
  absl::Status Exclusive(const Entry& e, absl::string_view inline_key,
                         absl::string_view env_key) const {
    absl::string_view other = e.key == inline_key ? env_key : inline_key;
    if (LineOf(other) != 0) {
      return Error(e.line, absl::StrFormat("%s and %s are mutually exclusive "
                                           "(%s is set on line %d)",
                                           inline_key, env_key, other, LineOf(other)));
    }
    return absl::OkStatus();
  }

 private:
  absl::string_view file_;
  const Section& section_;
  std::map<std::string, int> seen_;
};

absl::Status ParseMetrics(SectionReader& r, MetricsSettings* metrics) {
  return r.Apply({
      {"port", [&](const Entry& e) { return r.Int(e, 0, 65535, &metrics->port); }},
      {"bind", [&](const Entry& e) { return r.NonEmpty(e, &metrics->bind); }},
  });
}

absl::Status ParseState(SectionReader& r, StateSettings* state) {
  return r.Apply({
      {"dir",
       [&](const Entry& e) {
         struct stat info;
         if (stat(e.value.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
           return r.Error(e.line,
                          absl::StrCat("dir: '", e.value, "' is not an existing directory"));
         }
         if (access(e.value.c_str(), W_OK | X_OK) != 0) {
           return r.Error(e.line, absl::StrCat("dir: '", e.value, "' is not writable"));
         }
         state->dir = e.value;
         return absl::OkStatus();
       }},
      {"keep-calls-on-stop", [&](const Entry& e) { return r.Bool(e, &state->keep_calls_on_stop); }},
  });
}

// The items of a comma-separated list value, trimmed; empty ones (such as
// the one a trailing comma leaves) are left out.
std::vector<absl::string_view> ListItems(absl::string_view value) {
  std::vector<absl::string_view> items;
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    items.push_back(absl::StripAsciiWhitespace(part));
  }
  return items;
}

// `allow = <CIDR list>` (and [sip-settings] `trusted`): comma-separated IPv4/IPv6 networks; a bare address
// is one host (/32, /128). Parsed with Boost.Asio's network_v4/v6 and stored
// in canonical form (host bits cleared: 10.1.2.3/8 -> 10.0.0.0/8).
absl::Status ParseAllow(const SectionReader& r, const Entry& e, std::vector<std::string>* out) {
  std::vector<std::string> networks;
  for (absl::string_view part : ListItems(e.value)) {
    std::string text(part);
    const bool v6 = absl::StrContains(part, ':');
    if (!absl::StrContains(part, '/')) absl::StrAppend(&text, v6 ? "/128" : "/32");
    boost::system::error_code ec;
    std::string canonical;
    if (v6) {
      auto network = boost::asio::ip::make_network_v6(text, ec);
      if (!ec) canonical = network.canonical().to_string();
    } else {
      auto network = boost::asio::ip::make_network_v4(text, ec);
      if (!ec) canonical = network.canonical().to_string();
    }
    if (ec) {
      return r.Error(e.line, absl::StrCat(e.key, ": '", part,
                                          "' is not an IPv4 or IPv6 network (CIDR such as "
                                          "10.0.0.0/8, 127.0.0.1 or ::1/128)"));
    }
    networks.push_back(std::move(canonical));
  }
  if (networks.empty()) {
    return r.Error(e.line, absl::StrCat(e.key, " must list at least one network (leave it out ",
                                        e.key == "allow" ? "to allow every address)"
                                                         : "to trust only the registrars)"));
  }
  *out = std::move(networks);
  return absl::OkStatus();
}

absl::Status ParseTcp(SectionReader& r, TcpSettings* tcp) {
  absl::Status status = r.Apply({
      {"port", [&](const Entry& e) { return r.Int(e, 1, 65535, &tcp->port); }},
      {"bind", [&](const Entry& e) { return r.NonEmpty(e, &tcp->bind); }},
      {"extended-events", [&](const Entry& e) { return r.Bool(e, &tcp->extended_events); }},
      {"max-clients", [&](const Entry& e) { return r.Int(e, 1, INT_MAX, &tcp->max_clients); }},
      {"max-message-bytes",
       [&](const Entry& e) {
         return r.Int(e, 256, kMaxMessageBytesLimit, &tcp->max_message_bytes);
       }},
      {"allow", [&](const Entry& e) { return ParseAllow(r, e, &tcp->allow); }},
      {"token",
       [&](const Entry& e) {
         if (absl::Status st = r.Exclusive(e, "token", "token-env"); !st.ok()) return st;
         tcp->token = e.value;
         return absl::OkStatus();
       }},
      {"token-env",
       [&](const Entry& e) {
         if (absl::Status st = r.Exclusive(e, "token", "token-env"); !st.ok()) return st;
         return r.Env(e, &tcp->token);
       }},
      {"cert", [&](const Entry& e) { return r.NonEmpty(e, &tcp->cert); }},
      {"key", [&](const Entry& e) { return r.NonEmpty(e, &tcp->key); }},
      {"idle-timeout", [&](const Entry& e) { return r.Int(e, 0, 86400, &tcp->idle_timeout); }},
      {"history-events",
       [&](const Entry& e) { return r.Int(e, 16, 1000000, &tcp->history_events); }},
  });
  if (!status.ok()) return status;
  if (r.LineOf("cert") != 0 && r.LineOf("key") == 0) {
    return r.Error(r.LineOf("cert"), "cert is set but key is not (TLS needs both cert and key)");
  }
  if (r.LineOf("key") != 0 && r.LineOf("cert") == 0) {
    return r.Error(r.LineOf("key"), "key is set but cert is not (TLS needs both cert and key)");
  }
  return absl::OkStatus();
}

// [web-settings] `hosts = <name list>`: comma-separated host names (letters,
// digits, '-', '.', '_'; no port), stored lower-case without a trailing dot.
absl::Status ParseHosts(const SectionReader& r, const Entry& e, std::vector<std::string>* out) {
  std::vector<std::string> hosts;
  for (absl::string_view part : ListItems(e.value)) {
    std::string host = absl::AsciiStrToLower(part);
    if (absl::EndsWith(host, ".")) host.pop_back();
    const bool valid = !host.empty() && host.size() <= 253 && host.front() != '.' &&
                       host.front() != '-' &&
                       std::all_of(host.begin(), host.end(), [](char c) {
                         return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                                c == '.' || c == '_';
                       });
    if (!valid) {
      return r.Error(e.line, absl::StrCat("hosts: '", part,
                                          "' is not a host name (letters, digits, '-' and '.', "
                                          "without a port, e.g. gateway.example.com)"));
    }
    hosts.push_back(std::move(host));
  }
  if (hosts.empty()) {
    return r.Error(e.line,
                   "hosts must list at least one host name (leave it out to allow only "
                   "addresses and localhost)");
  }
  *out = std::move(hosts);
  return absl::OkStatus();
}

// [grpc-settings] and [web-settings] share their keys; `own` adds a
// section's own keys.
template <typename Settings>
absl::Status ParseServer(SectionReader& r, Settings* s,
                         std::vector<std::pair<absl::string_view, SectionReader::Handler>> own) {
  std::vector<std::pair<absl::string_view, SectionReader::Handler>> handlers = {
      {"port", [&](const Entry& e) { return r.Int(e, 1, 65535, &s->port); }},
      {"bind", [&](const Entry& e) { return r.NonEmpty(e, &s->bind); }},
      {"token",
       [&](const Entry& e) {
         if (absl::Status st = r.Exclusive(e, "token", "token-env"); !st.ok()) {
           return st;
         }
         s->token = e.value;
         return absl::OkStatus();
       }},
      {"token-env",
       [&](const Entry& e) {
         if (absl::Status st = r.Exclusive(e, "token", "token-env"); !st.ok()) {
           return st;
         }
         return r.Env(e, &s->token);
       }},
      {"cert", [&](const Entry& e) { return r.NonEmpty(e, &s->cert); }},
      {"key", [&](const Entry& e) { return r.NonEmpty(e, &s->key); }},
  };
  for (auto& handler : own) handlers.push_back(std::move(handler));
  absl::Status status = r.Apply(handlers);
  if (!status.ok()) return status;
  if (r.LineOf("cert") != 0 && r.LineOf("key") == 0) {
    return r.Error(r.LineOf("cert"), "cert is set but key is not (TLS needs both cert and key)");
  }
  if (r.LineOf("key") != 0 && r.LineOf("cert") == 0) {
    return r.Error(r.LineOf("key"), "key is set but cert is not (TLS needs both cert and key)");
  }
  return absl::OkStatus();
}

// A key kept only so that plans written for older versions still load: its
// value is checked as before (a plan that failed still fails) and then
// ignored, with a warning.
absl::Status Deprecated(const SectionReader& r, const Entry& e, int min, int max,
                        std::vector<std::string>* warnings) {
  int ignored = 0;
  if (absl::Status status = r.Int(e, min, max, &ignored); !status.ok()) return status;
  warnings->push_back(DeprecatedKnobWarning(absl::StrCat("[sip-settings] ", e.key)));
  return absl::OkStatus();
}

absl::Status ParseSip(SectionReader& r, backend::SipConfig* sip,
                      std::vector<std::string>* warnings) {
  absl::Status status = r.Apply({
      {"bind", [&](const Entry& e) { return r.NonEmpty(e, &sip->bind); }},
      {"port", [&](const Entry& e) { return r.Int(e, 0, 65535, &sip->port); }},
      {"transport",
       [&](const Entry& e) {
         const std::string v = absl::AsciiStrToLower(e.value);
         if (v != "udp" && v != "tcp") {
           return r.Error(e.line,
                          absl::StrCat("transport must be udp or tcp, got '", e.value, "'"));
         }
         sip->transport = v;
         return absl::OkStatus();
       }},
      {"register-expires",
       [&](const Entry& e) { return r.Int(e, 10, 86400, &sip->register_expires); }},
      {"register-retry-min",
       [&](const Entry& e) { return r.Int(e, 1, 3600, &sip->register_retry_min); }},
      {"register-retry-max",
       [&](const Entry& e) { return r.Int(e, 1, 86400, &sip->register_retry_max); }},
      {"thread-nice", [&](const Entry& e) { return r.Int(e, -20, 19, &sip->thread_nice); }},
      {"busy-poll-us", [&](const Entry& e) { return Deprecated(r, e, 0, 100000, warnings); }},
      {"answer-poll-us", [&](const Entry& e) { return Deprecated(r, e, 0, 100000, warnings); }},
      {"trusted", [&](const Entry& e) { return ParseAllow(r, e, &sip->trusted); }},
      {"ring-timeout", [&](const Entry& e) { return r.Int(e, 0, 86400, &sip->ring_timeout); }},
      {"session-expires",
       [&](const Entry& e) {
         // One message for every integer out of range (below 90 too, which
         // a plain 0..86400 would not name); Int's for a non-integer.
         int64_t seconds = 0;
         if (absl::SimpleAtoi(e.value, &seconds) && seconds != 0 &&
             (seconds < 90 || seconds > 86400)) {
           return r.Error(e.line,
                          absl::StrCat("session-expires must be 0 (off) or 90..86400 (RFC 4028), "
                                       "got ",
                                       seconds));
         }
         return r.Int(e, 0, 86400, &sip->session_expires);
       }},
      {"invite-timeout", [&](const Entry& e) { return r.Int(e, 0, 86400, &sip->invite_timeout); }},
      {"max-ringing", [&](const Entry& e) { return r.Int(e, 1, 10000, &sip->max_ringing); }},
  });
  if (!status.ok()) return status;
  if (sip->register_retry_max < sip->register_retry_min) {
    return r.Error(r.LineOf("register-retry-max") != 0 ? r.LineOf("register-retry-max")
                                                       : r.LineOf("register-retry-min"),
                   "register-retry-max must not be less than register-retry-min");
  }
  return absl::OkStatus();
}

absl::Status ParseCodecs(const SectionReader& r, const Entry& e, std::vector<std::string>* out) {
  std::vector<std::string> codecs;
  for (absl::string_view part : ListItems(e.value)) {
    const std::string codec = absl::AsciiStrToUpper(part);
    if (codec != "PCMU" && codec != "PCMA") {
      return r.Error(
          e.line, absl::StrCat("codecs: unsupported codec '", part, "' (supported: PCMU, PCMA)"));
    }
    for (const std::string& seen : codecs) {
      if (seen == codec) {
        return r.Error(e.line, absl::StrCat("codecs: '", codec, "' listed twice"));
      }
    }
    codecs.push_back(codec);
  }
  if (codecs.empty()) {
    return r.Error(e.line, "codecs must list at least one codec (PCMU, PCMA)");
  }
  *out = std::move(codecs);
  return absl::OkStatus();
}

absl::Status ParseRtp(SectionReader& r, backend::RtpConfig* rtp) {
  absl::Status status = r.Apply({
      {"port-min", [&](const Entry& e) { return r.Int(e, 1, 65535, &rtp->port_min); }},
      {"port-max", [&](const Entry& e) { return r.Int(e, 1, 65535, &rtp->port_max); }},
      {"codecs", [&](const Entry& e) { return ParseCodecs(r, e, &rtp->codecs); }},
      {"rtp-timeout", [&](const Entry& e) { return r.Int(e, 0, 3600, &rtp->rtp_timeout); }},
      {"jitter-buffer-ms",
       [&](const Entry& e) { return r.Int(e, 20, 1000, &rtp->jitter_buffer_ms); }},
      {"latch", [&](const Entry& e) { return r.Bool(e, &rtp->latch); }},
      {"max-streams-per-call",
       [&](const Entry& e) { return r.Int(e, 1, 64, &rtp->max_streams_per_call); }},
      {"quality-interval",
       [&](const Entry& e) { return r.Int(e, 0, 3600, &rtp->quality_interval); }},
  });
  if (!status.ok()) return status;
  // Range errors are reported on the port-max line (else port-min's).
  const int min_line = r.LineOf("port-min") != 0 ? r.LineOf("port-min") : r.LineOf("port-max");
  const int max_line = r.LineOf("port-max") != 0 ? r.LineOf("port-max") : min_line;
  if (rtp->port_min > rtp->port_max) {
    return r.Error(max_line, absl::StrFormat("port-max %d is below port-min %d: the RTP "
                                             "port range is empty",
                                             rtp->port_max, rtp->port_min));
  }
  if (rtp->port_min % 2 != 0) {
    return r.Error(min_line, absl::StrFormat("port-min must be even (RTP uses an even port "
                                             "and the next odd one for RTCP), got %d",
                                             rtp->port_min));
  }
  const int count = rtp->port_max - rtp->port_min + 1;
  if (count % 2 != 0) {
    return r.Error(max_line, absl::StrFormat("port-max %d makes an odd-sized RTP port range "
                                             "(%d..%d holds %d ports); it must hold an even "
                                             "number, so port-max must be odd",
                                             rtp->port_max, rtp->port_min, rtp->port_max, count));
  }
  return absl::OkStatus();
}

// The same syntax as the login command's (backend/sip_syntax.h).
absl::Status ValidateServer(const SectionReader& r, const Entry& e) {
  absl::Status status = backend::ValidateSipServer(e.value);
  return status.ok() ? status : r.Error(e.line, std::string(status.message()));
}

absl::Status ValidateUser(SectionReader& r, const Entry& e, std::string* user) {
  if (absl::Status st = r.NonEmpty(e, user); !st.ok()) return st;
  absl::Status status = backend::ValidateSipUser(e.value);
  return status.ok() ? status : r.Error(e.line, std::string(status.message()));
}

absl::Status ParseAccount(SectionReader& r, const Section& section,
                          backend::AccountConfig* account) {
  account->name = section.name;
  absl::Status status = r.Apply({
      {"user", [&](const Entry& e) { return ValidateUser(r, e, &account->user); }},
      // Never echo e.value for pass: it is a password.
      {"pass",
       [&](const Entry& e) {
         if (absl::Status st = r.Exclusive(e, "pass", "pass-env"); !st.ok()) {
           return st;
         }
         account->password = e.value;
         return absl::OkStatus();
       }},
      {"pass-env",
       [&](const Entry& e) {
         if (absl::Status st = r.Exclusive(e, "pass", "pass-env"); !st.ok()) {
           return st;
         }
         return r.Env(e, &account->password);
       }},
      {"server",
       [&](const Entry& e) {
         if (absl::Status st = ValidateServer(r, e); !st.ok()) return st;
         account->server = e.value;
         return absl::OkStatus();
       }},
      {"display-name",
       [&](const Entry& e) {
         account->display_name = e.value;
         return absl::OkStatus();
       }},
      {"register", [&](const Entry& e) { return r.Bool(e, &account->register_on_start); }},
      {"audio",
       [&](const Entry& e) {
         absl::StatusOr<backend::AudioSource> source = backend::ParseAudioSource(e.value);
         if (!source.ok()) {
           return r.Error(e.line, absl::StrCat("audio: ", source.status().message()));
         }
         account->audio = e.value;
         return absl::OkStatus();
       }},
      {"record",
       [&](const Entry& e) {
         struct stat info;
         if (stat(e.value.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
           return r.Error(e.line,
                          absl::StrCat("record: '", e.value, "' is not an existing directory"));
         }
         account->record_dir = e.value;
         return absl::OkStatus();
       }},
      {"accept-refer", [&](const Entry& e) { return r.Bool(e, &account->accept_refer); }},
      {"dtmf",
       [&](const Entry& e) {
         if (e.value != "rfc4733" && e.value != "info") {
           return r.Error(e.line, absl::StrCat("dtmf: '", e.value,
                                               "' is not one of rfc4733, info"));
         }
         account->dtmf_info = e.value == "info";
         return absl::OkStatus();
       }},
  });
  if (!status.ok()) return status;
  if (r.LineOf("user") == 0) return r.HeaderError("missing required key 'user'");
  if (r.LineOf("server") == 0) {
    return r.HeaderError("missing required key 'server'");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Plan> ParsePlan(absl::string_view text, absl::string_view file_name) {
  std::vector<Section> sections;
  int line_count = 0;
  if (absl::Status status = Tokenize(text, file_name, &sections, &line_count); !status.ok()) {
    return status;
  }
  Plan plan;
  for (const Section& section : sections) {
    SectionReader reader(file_name, section);
    absl::Status status;
    if (IsSettingsName(section.name)) {
      std::vector<std::string> lines;
      for (const Entry& entry : section.entries) {
        lines.push_back(absl::StrCat(entry.key, " = ", entry.value));
      }
      std::sort(lines.begin(), lines.end());
      plan.settings_text[section.name] += absl::StrJoin(lines, "\n");
    }
    if (section.name == kTcpSection) {
      status = ParseTcp(reader, &plan.tcp);
    } else if (section.name == kGrpcSection) {
      status = ParseServer(reader, &plan.grpc,
                           {{"max-streams", [&](const Entry& e) {
                               return reader.Int(e, 1, INT_MAX, &plan.grpc.max_streams);
                             }}});
    } else if (section.name == kWebSection) {
      status = ParseServer(reader, &plan.web, {{"hosts", [&](const Entry& e) {
                                                  return ParseHosts(reader, e, &plan.web.hosts);
                                                }}});
    } else if (section.name == kSipSection) {
      status = ParseSip(reader, &plan.sip, &plan.warnings);
    } else if (section.name == kRtpSection) {
      status = ParseRtp(reader, &plan.rtp);
    } else if (section.name == kMetricsSection) {
      status = ParseMetrics(reader, &plan.metrics);
    } else if (section.name == kStateSection) {
      status = ParseState(reader, &plan.state);
    } else {
      backend::AccountConfig account;
      status = ParseAccount(reader, section, &account);
      if (status.ok()) plan.accounts.push_back(std::move(account));
    }
    if (!status.ok()) return status;
  }
  if (plan.accounts.empty()) {
    return LineError(file_name, line_count > 0 ? line_count : 1,
                     "no accounts: add at least one account section (any "
                     "[name] not ending in -settings) with user and server");
  }
  return plan;
}

std::vector<std::string> ChangedSettingsSections(const Plan& before, const Plan& after) {
  std::vector<std::string> changed;
  for (const auto& [name, text] : before.settings_text) {
    auto it = after.settings_text.find(name);
    if (it == after.settings_text.end() || it->second != text) changed.push_back(name);
  }
  for (const auto& [name, text] : after.settings_text) {
    if (before.settings_text.count(name) == 0) changed.push_back(name);
  }
  std::sort(changed.begin(), changed.end());
  return changed;
}

absl::StatusOr<Plan> LoadPlanFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot read plan file '", path, "': ", std::strerror(errno)));
  }
  std::string text;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    text.append(buffer, n);
  }
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::NotFoundError(
        absl::StrCat("cannot read plan file '", path, "': ", std::strerror(error)));
  }
  return ParsePlan(text, path);
}

absl::Status ApplyCommandLine(const CommandLineOverrides& overrides, Plan* plan) {
  Plan result = *plan;
  absl::Status status;
  // Sets `*out` from the flag `name` when it is set and within min..max.
  auto apply = [&status](const char* name, const std::optional<int>& value, int64_t min,
                         int64_t max, int* out) {
    if (!status.ok() || !value.has_value()) return;
    if (*value < min || *value > max) {
      status = absl::InvalidArgumentError(RangeProblem(absl::StrCat("--", name), min, max, *value));
      return;
    }
    *out = *value;
  };
  apply("native_port", overrides.native_port, 0, 65535, &result.tcp.port);
  apply("sip_port", overrides.sip_port, 0, 65535, &result.sip.port);
  apply("sip_thread_nice", overrides.sip_thread_nice, -20, 19, &result.sip.thread_nice);
  apply("grpc_port", overrides.grpc_port, 0, 65535, &result.grpc.port);
  apply("web_port", overrides.web_port, 0, 65535, &result.web.port);
  apply("metrics_port", overrides.metrics_port, 0, 65535, &result.metrics.port);
  apply("io_threads", overrides.io_threads, 1, 64, &result.process.io_threads);
  apply("shutdown_seconds", overrides.shutdown_seconds, 0, 3600, &result.process.shutdown_seconds);
  apply("grpc_max_queued_events", overrides.grpc_max_queued_events, 1, INT_MAX,
        &result.grpc.max_queued_events);
  apply("web_max_sessions", overrides.web_max_sessions, 1, INT_MAX, &result.web.max_sessions);
  apply("web_max_message_bytes", overrides.web_max_message_bytes, 256, kMaxMessageBytesLimit,
        &result.web.max_message_bytes);
  apply("web_max_queued_bytes", overrides.web_max_queued_bytes, 1024, INT_MAX,
        &result.web.max_queued_bytes);
  apply("web_idle_timeout_seconds", overrides.web_idle_timeout_seconds, 1, 86400,
        &result.web.idle_timeout_seconds);
  apply("web_header_timeout_seconds", overrides.web_header_timeout_seconds, 1, 3600,
        &result.web.header_timeout_seconds);
  apply("web_max_connections_per_address", overrides.web_max_connections_per_address, 1, INT_MAX,
        &result.web.max_connections_per_address);
  if (!status.ok()) return status;
  if (overrides.native_bind.has_value()) {
    if (overrides.native_bind->empty()) {
      return absl::InvalidArgumentError("--native_bind must not be empty");
    }
    result.tcp.bind = *overrides.native_bind;
  }
  if (!result.state.dir.empty() && result.sip.port == 0) {
    return absl::InvalidArgumentError(
        "[state-settings] dir needs a fixed [sip-settings] port: restored calls keep their "
        "dialogs' Contact, and port = 0 picks another port at every start");
  }
  *plan = std::move(result);
  return absl::OkStatus();
}

}  // namespace telestra::gateway
