#include "tests/integration/sip_peers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <simdjson.h>
#include <sndfile.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/integration/gateway_process.h"
#include "tests/support/loopback_socket.h"
#include "tests/support/ports.h"

namespace telestra::testing {
namespace {

constexpr char kSipp[] = "/usr/bin/sipp";
constexpr char kBaresip[] = "/usr/bin/baresip";
constexpr char kBaresipModules[] = "/usr/lib/baresip/modules";

bool PortFree(int type, int port, const std::string& ip = "127.0.0.1") {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return false;
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool UdpPortFree(int port) { return PortFree(SOCK_DGRAM, port); }

// A port P free for UDP and TCP, with P + 1 free too: baresip listens on
// UDP and TCP at its SIP port and on TCP (TLS) at SIP port + 1.
int PickFreeSipPortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int port = PickFreeUdpTcpPort();
    if (port != 0 && port < 65535 && PortFree(SOCK_DGRAM, port + 1) &&
        PortFree(SOCK_STREAM, port + 1)) {
      return port;
    }
  }
  return 0;
}

}  // namespace

// sipp binds audio RTP (and RTCP) at the media port and video at + 2.
int PickFreeMediaPort() { return PickFreeUdpRun(4); }

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", prefix, ".XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

// ------------------------------------------------------------------ sipp

std::string SippProcess::Scenario(const std::string& name) {
  return Runfile(absl::StrCat("tests/integration/sipp/", name));
}

absl::StatusOr<std::unique_ptr<SippProcess>> SippProcess::Start(const Options& options) {
  std::unique_ptr<SippProcess> sipp(new SippProcess());
  sipp->dir_ = MakeTempDir("sipp");
  if (sipp->dir_.empty()) return absl::InternalError("mkdtemp failed");
  sipp->ip_ = options.ip;
  sipp->port_ = options.port != 0 ? options.port : PickFreePort(SOCK_DGRAM);
  sipp->media_port_ = PickFreeMediaPort();
  if (sipp->port_ == 0 || sipp->media_port_ == 0) {
    return absl::UnavailableError("no free port for sipp");
  }
  std::vector<std::string> argv = {
      kSipp,
      "-sf",
      options.scenario,
      "-i",
      options.ip,
      "-mi",
      options.ip,
      "-p",
      absl::StrCat(sipp->port_),
      "-mp",
      absl::StrCat(sipp->media_port_),
      "-m",
      absl::StrCat(options.calls),
      "-nostdin",
      "-timeout",
      absl::StrCat(absl::ToInt64Seconds(options.timeout), "s"),
      "-timeout_error",
  };
  if (options.trace) {
    argv.insert(argv.end(), {"-trace_msg", "-message_file", sipp->dir_ + "/messages.log",
                             "-trace_err", "-error_file", sipp->dir_ + "/errors.log"});
  }
  argv.insert(argv.end(), options.args.begin(), options.args.end());
  if (!options.remote.empty()) argv.push_back(options.remote);
  // sipp may write files (screen dumps, statistics) into its working
  // directory: run it in dir_.
  std::vector<std::string> shell = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", sipp->dir_};
  shell.insert(shell.end(), argv.begin(), argv.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(shell, sipp->dir_ + "/output.log");
  if (!process.ok()) return process.status();
  sipp->process_ = *std::move(process);
  return sipp;
}

SippProcess::~SippProcess() {
  if (process_ && process_->IsRunning()) (void)process_->Terminate(absl::Seconds(2));
}

absl::StatusOr<int> SippProcess::Wait(absl::Duration timeout) {
  return process_->WaitForExit(absl::Now() + timeout);
}

bool SippProcess::WaitUntilListening(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!PortFree(SOCK_DGRAM, port_, ip_)) return true;
    if (!process_->IsRunning()) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

std::string SippProcess::Messages() const { return ReadFileText(dir_ + "/messages.log"); }
std::string SippProcess::Errors() const { return ReadFileText(dir_ + "/errors.log"); }
std::string SippProcess::Output() const { return ReadFileText(dir_ + "/output.log"); }

std::string SippProcess::Describe() const {
  return absl::StrCat("--- sipp output:\n", Output(), "\n--- sipp errors:\n", Errors(),
                      "\n--- sipp messages:\n", Messages());
}

// The SIP messages sipp received (from its -trace_msg log), in order, with
// LF line ends; retransmissions (same first line and CSeq) are dropped.
std::vector<std::string> ReceivedMessages(const std::string& log) {
  std::vector<std::string> messages;
  std::vector<std::string> seen;
  constexpr absl::string_view kSeparator = "----------------------------------------------- ";
  for (absl::string_view block : absl::StrSplit(log, kSeparator)) {
    if (!absl::StrContains(block, "message received")) continue;
    size_t start = block.find("\n\n");
    if (start == absl::string_view::npos) continue;
    std::string message = absl::StrReplaceAll(block.substr(start + 2), {{"\r", ""}});
    std::string first_line = message.substr(0, message.find('\n'));
    size_t cseq = message.find("\nCSeq:");
    std::string cseq_line =
        cseq == std::string::npos ? "" : message.substr(cseq, message.find('\n', cseq + 1) - cseq);
    std::string key = absl::StrCat(first_line, cseq_line);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    messages.push_back(std::move(message));
  }
  return messages;
}

std::vector<std::string> Requests(const std::vector<std::string>& messages,
                                  const std::string& method) {
  std::vector<std::string> found;
  for (const std::string& m : messages) {
    if (absl::StartsWith(m, method + " ")) found.push_back(m);
  }
  return found;
}

bool SippRegister(const std::string& server, const std::string& user, int port) {
  SippProcess::Options options;
  options.scenario = Runfile("tests/support/sipp/register.xml");
  options.port = port;
  options.args = {"-s", user, "-au", user, "-ap", absl::StrCat("sip", user)};
  options.remote = server;
  options.timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<SippProcess>> sipp = SippProcess::Start(options);
  if (!sipp.ok()) return false;
  absl::StatusOr<int> status = (*sipp)->Wait(absl::Seconds(15));
  return status.ok() && *status == 0;
}

// --------------------------------------------------------------- baresip

absl::StatusOr<std::unique_ptr<BaresipProcess>> BaresipProcess::Start(const Options& options) {
  // The ports were free a moment ago; a parallel test may take one first.
  // baresip then exits at once ("Address already in use"): try new ones.
  absl::StatusOr<std::unique_ptr<BaresipProcess>> baresip;
  for (int attempt = 0; attempt < 3; ++attempt) {
    baresip = StartOnce(options);
    if (baresip.ok() || !absl::StrContains(baresip.status().message(), "already in use")) break;
  }
  return baresip;
}

absl::StatusOr<std::unique_ptr<BaresipProcess>> BaresipProcess::StartOnce(const Options& options) {
  std::unique_ptr<BaresipProcess> baresip(new BaresipProcess());
  baresip->dir_ = MakeTempDir("baresip");
  if (baresip->dir_.empty()) return absl::InternalError("mkdtemp failed");
  baresip->sip_port_ = PickFreeSipPortPair();
  baresip->ctrl_port_ = PickFreePort(SOCK_STREAM);
  if (baresip->sip_port_ == 0 || baresip->ctrl_port_ == 0) {
    return absl::UnavailableError("no free port for baresip");
  }
  std::vector<std::string> config = {
      "poll_method epoll",
      absl::StrCat("sip_listen 127.0.0.1:", baresip->sip_port_),
      // The interface name "lo" does not work; the address does.
      "net_interface 127.0.0.1",
      // No sound card: a sine source (it needs 48 kHz stereo) and a silent sink.
      absl::StrCat("audio_source ausine,", options.tone_hz),
      "audio_player aubridge,x",
      "audio_alert aubridge,x",
      "ausrc_srate 48000",
      "ausrc_channels 2",
      "rtp_ports 40000-49998",
      absl::StrCat("module_path ", kBaresipModules),
      "module g711.so",
      "module ausine.so",
      "module aubridge.so",
      "module_app account.so",
      "module_app menu.so",
      "module_app ctrl_tcp.so",
      absl::StrCat("ctrl_tcp_listen 127.0.0.1:", baresip->ctrl_port_),
  };
  if (options.record) {
    config.push_back("module sndfile.so");
    std::string pattern = "/tmp/telestra-baresip.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("cannot create the recording directory");
    }
    baresip->record_dir_ = pattern;
    config.push_back(absl::StrCat("snd_path ", baresip->record_dir_));
  }
  std::ofstream(baresip->dir_ + "/config") << absl::StrJoin(config, "\n") << "\n";
  std::ofstream(baresip->dir_ + "/accounts")
      << "<sip:" << options.user << "@" << options.server << ">;auth_pass=sip" << options.user
      << ";regint=600" << (options.auto_answer ? ";answermode=auto" : ";answermode=manual") << "\n";
  // Empty contacts file: otherwise baresip writes a sample one.
  std::ofstream(baresip->dir_ + "/contacts") << "";

  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start({kBaresip, "-f", baresip->dir_}, baresip->dir_ + "/baresip.log");
  if (!process.ok()) return process.status();
  baresip->process_ = *std::move(process);

  absl::Time deadline = absl::Now() + options.register_timeout;
  if (!baresip->ConnectCtrl(deadline - absl::Now())) {
    return absl::UnavailableError(
        absl::StrCat("baresip ctrl_tcp did not open; log:\n", baresip->Log()));
  }
  // Registered when reginfo shows the account "OK".
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> info = baresip->Command("reginfo", "", absl::Seconds(2));
    if (info.ok() && absl::StrContains(*info, "OK ")) return baresip;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("baresip did not register; log:\n", baresip->Log()));
}

BaresipProcess::~BaresipProcess() {
  if (ctrl_fd_ >= 0) close(ctrl_fd_);
  if (process_ && process_->IsRunning()) (void)process_->Terminate(absl::Seconds(3));
  if (!record_dir_.empty() && absl::StartsWith(record_dir_, "/tmp/telestra-baresip.")) {
    if (DIR* dir = opendir(record_dir_.c_str())) {
      while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] != '.') unlink((record_dir_ + "/" + entry->d_name).c_str());
      }
      closedir(dir);
    }
    rmdir(record_dir_.c_str());
  }
}

std::string BaresipProcess::Log() const { return ReadFileText(dir_ + "/baresip.log"); }

bool BaresipProcess::ConnectCtrl(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!process_->IsRunning()) return false;
    absl::StatusOr<int> fd = ConnectLoopback(ctrl_port_);
    if (fd.ok()) {
      ctrl_fd_ = *fd;
      return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

bool BaresipProcess::Send(const std::string& command, const std::string& params,
                          const std::string& token) {
  std::string json = absl::StrCat(R"({"command":")", command, R"(","params":")", params,
                                  R"(","token":")", token, R"("})");
  return SendAll(ctrl_fd_, absl::StrCat(json.size(), ":", json, ","));
}

std::optional<std::string> BaresipProcess::ReadMessage(absl::Time deadline) {
  for (;;) {
    // A netstring: <decimal length>:<payload>,
    size_t colon = buffer_.find(':');
    if (colon != std::string::npos) {
      size_t length = 0;
      if (!absl::SimpleAtoi(buffer_.substr(0, colon), &length)) {
        buffer_.clear();  // out of sync: drop what we have
      } else if (buffer_.size() >= colon + 1 + length + 1) {
        std::string payload = buffer_.substr(colon + 1, length);
        buffer_.erase(0, colon + 1 + length + 1);
        return payload;
      }
    }
    if (ReadSome(ctrl_fd_, deadline, &buffer_) != ReadResult::kData) return std::nullopt;
    // baresip answers after a delayed-ACK stall unless we ack at once.
    int one = 1;
    setsockopt(ctrl_fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
  }
}

bool BaresipProcess::SendCommand(const std::string& command, const std::string& params) {
  return Send(command, params, "async");
}

absl::StatusOr<std::string> BaresipProcess::Command(const std::string& command,
                                                    const std::string& params,
                                                    absl::Duration timeout) {
  std::string token = absl::StrCat("t", ++next_token_);
  if (!Send(command, params, token)) return absl::UnavailableError("ctrl_tcp send failed");
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    std::optional<std::string> message = ReadMessage(deadline);
    if (!message) {
      return absl::DeadlineExceededError(absl::StrCat("no response to ", command));
    }
    if (absl::StrContains(*message, R"("event":true)")) {
      if (events_.size() < 1000) events_.push_back(*message);
      continue;
    }
    if (JsonField(*message, "token") != token) continue;  // an async command's
    if (!absl::StrContains(*message, R"("ok":true)")) {
      return absl::InternalError(absl::StrCat(command, " failed: ", *message));
    }
    return JsonField(*message, "data");
  }
}

std::optional<std::string> BaresipProcess::WaitEvent(const std::string& type,
                                                     absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    while (!events_.empty()) {
      std::string event = std::move(events_.front());
      events_.pop_front();
      if (JsonField(event, "type") == type) return event;
    }
    std::optional<std::string> message = ReadMessage(deadline);
    if (!message) return std::nullopt;
    if (absl::StrContains(*message, R"("event":true)")) events_.push_back(*message);
  }
}

std::string JsonField(const std::string& json, const std::string& field) {
  // Reused per thread, as NativeEvent's (so that the call-setup benchmark's
  // two flows read their events alike).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view value;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return "";
  if (doc[field].get(value) != simdjson::SUCCESS) return "";
  return std::string(value);
}

// ----------------------------------------------------------------- audio

absl::StatusOr<WavAudio> ReadWav(const std::string& path) {
  SF_INFO info = {};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", sf_strerror(nullptr)));
  }
  WavAudio audio;
  audio.sample_rate = info.samplerate;
  audio.channels.assign(static_cast<size_t>(info.channels), {});
  std::vector<double> interleaved(static_cast<size_t>(info.frames * info.channels));
  sf_count_t frames = sf_readf_double(file, interleaved.data(), info.frames);
  sf_close(file);
  for (sf_count_t i = 0; i < frames; ++i) {
    for (int c = 0; c < info.channels; ++c) {
      audio.channels[static_cast<size_t>(c)].push_back(
          interleaved[static_cast<size_t>(i * info.channels + c)]);
    }
  }
  return audio;
}

double ToneShare(const std::vector<double>& samples, int sample_rate, double hz) {
  if (samples.empty() || sample_rate <= 0) return 0;
  double k = 2 * std::cos(2 * M_PI * hz / sample_rate);
  double s1 = 0, s2 = 0, energy = 0;
  for (double x : samples) {
    double s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
    energy += x * x;
  }
  if (energy <= 0) return 0;
  double power = s1 * s1 + s2 * s2 - k * s1 * s2;  // |X(hz)|^2
  // A pure tone of amplitude A over N samples: |X|^2 = (A N / 2)^2 and
  // energy = A^2 N / 2, so 2 |X|^2 / (N energy) = 1.
  return 2 * power / (static_cast<double>(samples.size()) * energy);
}

double Rms(const std::vector<double>& samples) {
  if (samples.empty()) return 0;
  double sum = 0;
  for (double x : samples) sum += x * x;
  return std::sqrt(sum / static_cast<double>(samples.size()));
}

}  // namespace telestra::testing
