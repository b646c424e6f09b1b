// Real SIP peers for integration tests and benchmarks: sipp runs and a
// baresip user agent driven over its ctrl_tcp port. Loopback only; every
// child is killed by its destructor, every wait has a deadline.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"  // ReadFileText

namespace telestra::testing {

// An even UDP port P on 127.0.0.1 with P..P+3 free a moment ago: room for an
// RTP/RTCP pair (sipp binds P and P+2 for its media echo). 0 if none found.
int PickFreeMediaPort();

// A directory under $TEST_TMPDIR (else /tmp), created fresh.
std::string MakeTempDir(const std::string& prefix);

// One sipp (/usr/bin/sipp) run:
//   sipp -sf SCENARIO -i 127.0.0.1 -mi 127.0.0.1 -p PORT -mp MEDIA -m CALLS
//        -nostdin -timeout 20s -timeout_error -trace_msg -message_file ...
//        -trace_err -error_file ... ARGS... [REMOTE]
// `scenario` is a path; Scenario("x.xml") names tests/integration/sipp/x.xml
// in the runfiles. Logs go to a fresh directory (dir()).
// Thread: one thread.
class SippProcess {
 public:
  struct Options {
    std::string scenario;
    std::string ip = "127.0.0.1";                // local address (-i, -mi): any of 127.0.0.0/8
    int port = 0;                                // local SIP port (UDP); 0 = pick a free one
    int calls = 1;                               // -m
    std::vector<std::string> args;               // e.g. {"-s", "3005"}
    std::string remote;                          // "127.0.0.1:PORT" for a UAC, "" for a UAS
    absl::Duration timeout = absl::Seconds(20);  // -timeout (sipp fails then)
    bool trace = true;                           // -trace_msg / -trace_err
  };

  static absl::StatusOr<std::unique_ptr<SippProcess>> Start(const Options& options);
  static std::string Scenario(const std::string& name);
  ~SippProcess();

  int port() const { return port_; }
  int media_port() const { return media_port_; }
  pid_t pid() const { return process_->pid(); }
  const std::string& dir() const { return dir_; }

  // sipp's exit status (0: every call succeeded), or DeadlineExceeded.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  bool IsRunning() { return process_->IsRunning(); }
  // True once sipp has bound its SIP port (false if it exited or the
  // timeout passed).
  bool WaitUntilListening(absl::Duration timeout);

  std::string Messages() const;  // the -trace_msg log
  std::string Errors() const;    // the -trace_err log
  std::string Output() const;    // stdout + stderr
  // All three, for failure messages.
  std::string Describe() const;

 private:
  SippProcess() = default;
  std::string ip_;
  int port_ = 0;
  int media_port_ = 0;
  std::string dir_;
  std::unique_ptr<Subprocess> process_;
};

// The SIP messages sipp received (from its -trace_msg log, Messages()), in
// order, with LF line ends; retransmissions (same first line and CSeq) are
// dropped.
std::vector<std::string> ReceivedMessages(const std::string& log);
// Those of `messages` that are `method` requests.
std::vector<std::string> Requests(const std::vector<std::string>& messages,
                                  const std::string& method);

// Registers user `user` (password "sip<user>") at `server` from local port
// `port` with tests/support/sipp/register.xml, so that Kamailio routes calls
// for `user` to a sipp started next on the same port. True on 200.
bool SippRegister(const std::string& server, const std::string& user, int port);

// baresip 1.0 (/usr/bin/baresip) as a user agent registered at a Kamailio,
// with config and accounts in a fresh directory:
//   - SIP on 127.0.0.1:sip_port (UDP, TCP, and TLS on sip_port + 1), ctrl_tcp on
//     127.0.0.1:ctrl_port (menu commands, netstring JSON);
//   - G.711 only; sends a sine tone (ausine) of `tone_hz`; plays into the
//     silent aubridge; with `record` the sndfile module writes what it sends
//     and receives to record_dir()/dump-*-enc.wav / -dec.wav;
//   - answers incoming calls at once when `auto_answer`.
// Thread: one thread.
class BaresipProcess {
 public:
  struct Options {
    std::string user;    // password sip<user>
    std::string server;  // Kamailio, "127.0.0.1:PORT"
    int tone_hz = 1000;
    bool auto_answer = true;
    bool record = false;
    absl::Duration register_timeout = absl::Seconds(10);
  };

  // Starts baresip, waits until it is registered and its ctrl_tcp port
  // accepts a connection (which it keeps).
  static absl::StatusOr<std::unique_ptr<BaresipProcess>> Start(const Options& options);
  ~BaresipProcess();

  int sip_port() const { return sip_port_; }
  int ctrl_port() const { return ctrl_port_; }
  const std::string& dir() const { return dir_; }
  // Under /tmp: baresip truncates a longer snd_path (such as one under
  // $TEST_TMPDIR). Removed by the destructor.
  const std::string& record_dir() const { return record_dir_; }
  std::string Log() const;

  // Sends a menu command ("dial", "hangup", "accept" ...) and waits for its
  // response; the response's "data" on ok, else an error. Events read
  // meanwhile are queued for WaitEvent.
  absl::StatusOr<std::string> Command(const std::string& command, const std::string& params,
                                      absl::Duration timeout = absl::Seconds(5));
  // Sends a command without waiting for the response (it is dropped when it
  // arrives).
  bool SendCommand(const std::string& command, const std::string& params);

  // The next event of `type` (e.g. "CALL_INCOMING", "CALL_ESTABLISHED",
  // "CALL_CLOSED"); the JSON text. Earlier events of other types are dropped.
  std::optional<std::string> WaitEvent(const std::string& type,
                                       absl::Duration timeout = absl::Seconds(10));

 private:
  BaresipProcess() = default;
  static absl::StatusOr<std::unique_ptr<BaresipProcess>> StartOnce(const Options& options);
  bool ConnectCtrl(absl::Duration timeout);
  // One netstring payload, or nullopt on timeout/close.
  std::optional<std::string> ReadMessage(absl::Time deadline);
  bool Send(const std::string& command, const std::string& params, const std::string& token);

  int sip_port_ = 0;
  int ctrl_port_ = 0;
  int ctrl_fd_ = -1;
  int next_token_ = 0;
  std::string dir_;
  std::string record_dir_;
  std::string buffer_;
  std::deque<std::string> events_;
  std::unique_ptr<Subprocess> process_;
};

// Extracts a string field from a flat JSON object ("" if absent).
std::string JsonField(const std::string& json, const std::string& field);

// A WAV file as float samples in [-1, 1], one vector per channel.
struct WavAudio {
  int sample_rate = 0;
  std::vector<std::vector<double>> channels;
  size_t frames() const { return channels.empty() ? 0 : channels[0].size(); }
};
absl::StatusOr<WavAudio> ReadWav(const std::string& path);

// The share (0..1) of the signal's energy at `hz` (Goertzel): about 1 for a
// pure tone of that frequency, about 0 for another tone or for silence.
double ToneShare(const std::vector<double>& samples, int sample_rate, double hz);
// Root mean square (full scale = 1).
double Rms(const std::vector<double>& samples);

}  // namespace telestra::testing
