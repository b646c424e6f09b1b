// A bare sofia-sip user agent for the call benchmarks: the SIP flow the
// gateway runs for a call, with nothing of the gateway around it (no API
// port, no thread hand-over, no media, no events). What it reaches is the
// floor that any service built on sofia-sip stands on, on this machine
// (bench/call_setup.cc --sofia_floor, bench/cps.cc --sofia_floor).
//
// Like the gateway's SIP thread: one thread runs one su_root with one nua
// (su_root_threading 0: no extra stack thread), every account registers
// through it, our SDP (PCMU, PCMA, telephone-event) is parsed once and
// passed per call with its port, a 407 on INVITE is answered with the
// account's credentials and those are sent pre-emptively on the next INVITE
// (nonce count advanced).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace telestra::bench {

class BareSofia {
 public:
  struct Account {
    std::string user;      // "3003"
    std::string password;  // "sip3003"
  };
  // Called on the sofia thread.
  struct Hooks {
    // An INVITE arrived (for any account); `call` is its id. A 180 has been
    // sent already.
    std::function<void(uint64_t call)> on_incoming;
    // An outgoing call got a final response (2xx: established, ACK sent).
    std::function<void(uint64_t call, int status)> on_final;
    // A call (either direction) is over; `status` is the last final status
    // seen on it (the INVITE's, or the BYE's).
    std::function<void(uint64_t call, int status)> on_ended;
  };
  struct Options {
    std::string server;  // registrar/proxy "127.0.0.1:PORT"
    std::vector<Account> accounts;
    int nice = 0;  // the sofia thread's nice value (as [sip-settings] thread-nice)
    // False: nua without its offer/answer engine (NUTAG_MEDIA_ENABLE(0));
    // our SDP goes as a plain body and nothing parses the far end's.
    bool soa = true;
    Hooks hooks;
  };

  // Starts the thread and registers every account (401 answered); fails
  // after 10 s.
  static absl::StatusOr<std::unique_ptr<BareSofia>> Start(Options options);
  ~BareSofia();
  BareSofia(const BareSofia&) = delete;
  BareSofia& operator=(const BareSofia&) = delete;

  // Any thread: runs `task` on the sofia thread.
  void Post(std::function<void()> task);

  // Sofia thread only.
  // INVITE sip:<user>@<server> from accounts[account]; returns the call id.
  uint64_t Invite(int account, const std::string& user);
  void Cancel(uint64_t call);  // an outgoing call not answered yet
  void Bye(uint64_t call);     // an established call

 private:
  struct Impl;
  explicit BareSofia(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace telestra::bench
