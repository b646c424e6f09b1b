// One client connection of the native port (NativeServer): reading and
// framing its commands, writing its events and replies, its deadlines and
// its close. TLS handshake and authentication: native_auth.cc. Internal to
// gateway/native/.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "backend/fd_loop.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "gateway/native/framer.h"
#include "gateway/native/json_codec.h"
#include "gateway/session/outbox.h"
#include "gateway/session/session_registry.h"

namespace telestra::gateway {

class NativeServer;

// `event` as it goes on the wire: its JSON and the terminating null.
std::string WireFrame(const telestra::v1::Event& event, bool extended);

// One client connection.
//
// Thread: the session's strand runs its lifecycle (handshake, deadlines,
// close) and, for TLS connections or without Options::read_loop, its
// reading. With Options::read_loop (plaintext only), OnReadable, Consume
// and Handle run on the loop's thread (the SIP thread), which tells the
// strand only of the end of the stream (OnRead) and of a connection it
// wants closed (EndFromReader); the socket then never enters asio's reactor
// (Start releases it), so a command wakes no API thread.
//
// Writing is one path for every frame (docs/native-api.md, "Threads"):
// Send puts the frame in the Outbox; the thread that finds the outbox idle
// writes it at once with a non-blocking send and goes on while frames keep
// coming; when the socket is full, the strand waits for it to drain and
// writes the rest. The frames come from the event hub's delivering thread
// (OnDelivery: the delivery thread for broadcasts, the reading thread for
// the replies to the commands it just ran, see EventHub::ReplyScope) and
// from the session itself (auth replies). No lock is held while writing.
//
// With Options::token the session joins the event hub only once the client
// has authenticated: before that it gets no broadcast, and the session
// writes its replies ("Not authenticated", "authenticated") itself.
class NativeSession : public std::enable_shared_from_this<NativeSession>,
                      public backend::EventListener,
                      public SessionRegistry::Session {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;
  using SteadyTime = std::chrono::steady_clock::time_point;

  NativeSession(NativeServer* server, tcp::socket socket);

  // May run after the NativeServer is gone (the io_context destroys
  // pending handlers, the last owners of sessions, only when it is
  // destroyed itself): touches only the hub, which outlives the io_context.
  ~NativeSession() override;

  // The socket back, for a session the registry did not admit (Refuse).
  tcp::socket TakeSocket() { return std::move(socket_); }

  // SessionRegistry::Session. Thread: any (called under the registry's lock:
  // only posts).
  // Takes no reference here: the last one must never be dropped under the
  // registry's lock (the destructor removes the session from it).
  void CloseAfterFlush(absl::Time deadline) override;

  // The client has closed (or reset) the connection, unread yet.
  bool PeerGone() const override;

  void Start();

  // The connection's descriptor (open as long as the session exists).
  int fd() const { return raw_fd_; }

  void OnEvent(const backend::EventPtr& event) override;

  // Thread: the hub's delivering thread. Extended-only events that the
  // client did not subscribe to are skipped; the JSON is made once per
  // event and format and shared with every other client of that format.
  void OnDelivery(const backend::EventPtr& event, const backend::EncodingsPtr& encodings) override;

  // Thread: the hub's delivering thread. The answer to an extended
  // subscribe (EventHub::Resume), as one frame: `subscribed`, then the
  // replay, or the gap's `fail` and a `status` of every account.
  void OnResume(const backend::ResumePoint& point, const std::string& token) override;

 private:
  // How long a client that shut down its sending side still gets events.
  static constexpr std::chrono::seconds kLingerAfterEof{3};

  // Reads of a full buffer in a row before the read loop turns to others.
  static constexpr int kReadsPerWakeup = 4;

  // With Options::token: how long a connection may take to authenticate, and
  // how many messages it may send before (each answered "Not authenticated").
  static constexpr std::chrono::seconds kAuthDeadline{10};
  static constexpr int kMaxAuthFailures = 3;

  // How long a TLS handshake may take.
  static constexpr std::chrono::seconds kTlsHandshakeDeadline{10};

  // How long a connection closed for failing to authenticate may take to
  // receive its last fail.
  static constexpr std::chrono::seconds kFailFlush{2};

  // The outbound buffer of one write is freed after a write larger than this.
  static constexpr size_t kRetainedWriteBytes = 16384;

  bool IdleTimeoutOn() const;

  void LogConnected();

  void OnHandshake(error_code ec);

  // Joins the event hub: broadcasts and replies from now on. Thread: the
  // reader's (or Start).
  void AttachToHub();

  void Detach();

  // Queues a frame; writes it at once if no write is under way. Thread: any.
  void Send(Outbox::Frame frame);

  void SendBytes(std::string bytes);

  void DoRead();

  void OnRead(error_code ec, size_t n);

  // The read loop's thread (Options::read_loop): reads what the client
  // sent and runs its commands right there. False at the end of the
  // stream or on an error, which go to the strand (OnRead), and when the
  // connection is to be closed (EndFromReader); the watch ends.
  bool OnReadable();

  // Frames `n` bytes of read_buffer_ and runs each command. Thread: the
  // reader's (the strand, or the read loop's thread).
  //
  // The replies to these commands are written by this thread once the
  // commands have run (EventHub::ReplyScope): no hand-over to another
  // thread for a get-status; broadcasts they cause go to the hub's
  // delivery thread.
  void Consume(size_t n);

  void Handle(const Framer::Frame& frame);

  // Answers a message with `fail`. Before authentication the text is always
  // "Not authenticated" and the failure counts towards kMaxAuthFailures.
  void Fail(const std::string& account, const absl::Status& why, const std::string& token);

  // {"cmd":"auth","secret":...}. A connection that is already authenticated
  // (or a server without a token) answers any secret with authenticated.
  void Authenticate(const DecodedCommand& decoded);

  // The reader's: reads no more of the client's messages and has the
  // strand close the connection, at once or after writing what is queued
  // (at most kFailFlush).
  void EndFromReader(bool flush);

  // Strand: closes the connection when its TLS handshake, its
  // authentication or Options::idle_timeout is overdue; else waits for the
  // next of them.
  void CheckDeadlines();

  // The outbox's writer: writes until the outbox is empty, or hands the
  // rest to the strand when the socket is full. Thread: whichever became
  // the writer (Send), or the strand (after a wait).
  void Flush();

  // Strand: waits until the socket can take more, then flushes. A
  // duplicate descriptor carries the wait, so that the socket itself stays
  // out of asio with a read loop; made only when a client backs up.
  void ArmWriteWait();

  // Strand: the TLS writer (one async_write in flight).
  void WriteTls();

  // Runs `f` on the strand if the session is still alive. Thread: any.
  template <typename F>
  void PostToStrand(F f) {
    std::shared_ptr<NativeSession> self = weak_from_this().lock();
    if (!self) return;  // being destroyed
    boost::asio::post(strand_, [self = std::move(self), f] { f(self.get()); });
  }

  // Strand: stops reading and leaves the event hub, writes what is queued
  // (events that reached the session before, and replies), then closes;
  // at `deadline` it closes whatever is left.
  void CloseAfterFlush(SteadyTime deadline);

  void Shutdown();

  NativeServer* const server_;
  backend::EventHub* const hub_;
  // The server's (they outlive the server: a session may get an event
  // after the server is gone, see the destructor).
  backend::CommandDispatcher* const dispatcher_;
  const std::shared_ptr<std::atomic<uint64_t>> resume_gaps_;
  const std::shared_ptr<SessionRegistry> registry_;
  tcp::socket socket_;
  // socket_'s descriptor: the read loop reads it, the outbox's writer
  // writes to it.
  const int raw_fd_;
  // socket_'s strand, kept apart: socket_ gives up its descriptor with a
  // read loop.
  const tcp::socket::executor_type strand_;
  // TLS over socket_ (Options::cert); null: plaintext.
  std::unique_ptr<boost::asio::ssl::stream<tcp::socket&>> tls_;
  // Closes the connection at a set time: after the linger of a half-closed
  // client, or at the deadline of a close that flushes first.
  boost::asio::steady_timer linger_;
  // The TLS handshake's, authentication's and idle-timeout's deadlines.
  boost::asio::steady_timer deadline_;
  std::string peer_;
  SteadyTime started_;  // set by Start
  // Hub id; 0 before joining the hub and after leaving it. Written under
  // attach_mu_, read anywhere (logs).
  std::atomic<backend::ClientId> client_{0};
  // Lock order: taken before the hub's lock (Attach, Detach); never held
  // while writing. Detach waits for a delivery in progress, which never
  // takes attach_mu_.
  absl::Mutex attach_mu_;
  bool detached_ ABSL_GUARDED_BY(attach_mu_) = false;  // never joins again
  // The reader's: client_ as it was when the session joined the hub.
  backend::ClientId reader_client_ = 0;
  // Options::read_loop's watch of the socket (0: read by the strand).
  // Atomic: Start stores it after Watch has handed the socket to the loop,
  // whose first read may already end the session on its strand (Shutdown
  // reads it there).
  std::atomic<backend::FdLoop::WatchId> watch_{0};
  tcp protocol_ = tcp::v4();  // socket_'s, set by Start
  // socket_ has let go of raw_fd_ (read loop); the destructor closes it.
  bool released_ = false;
  bool handshake_done_ = false;  // strand only
  bool ended_input_ = false;     // strand: the client shut down its sending side
  Framer framer_;
  JsonCodec codec_;
  // Written by the reader (subscribe), read by OnDelivery.
  std::atomic<bool> extended_;
  // Set once by the reader when the client authenticates (at once without
  // Options::token); read by the strand's deadline check.
  std::atomic<bool> authenticated_;
  int auth_failures_ = 0;  // the reader's
  // steady_clock ticks of the last complete message (Options::idle_timeout
  // only): written by the reader, read by the strand's deadline check.
  std::atomic<SteadyTime::rep> last_message_{0};
  // Set by Shutdown (strand); the reader then runs no more of the
  // client's commands.
  std::atomic<bool> closed_{false};
  // The reader handles no more messages (the connection is being closed).
  std::atomic<bool> stop_reading_{false};
  bool closing_ = false;  // strand: CloseAfterFlush, waiting for the queue
  std::array<char, 16384> read_buffer_;
  Outbox outbox_;
  // Strand: a duplicate of raw_fd_ that waits for room to write.
  std::optional<tcp::socket> write_waiter_;
  std::string tls_out_;  // strand: the TLS write in flight
};

}  // namespace telestra::gateway
