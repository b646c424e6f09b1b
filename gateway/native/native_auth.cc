// NativeSession: the TLS handshake and authentication ({"cmd":"auth"}).
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "boost/asio/ssl/error.hpp"
#include "gateway/native/native_server.h"
#include "gateway/native/native_session.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

// Constant time in the secret: compares SHA-256 digests with CRYPTO_memcmp
// (as the web front end's TokenEquals does).
bool SecretMatches(absl::string_view presented, absl::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof(a)) == 0 && !presented.empty();
}

}  // namespace

void NativeSession::OnHandshake(error_code ec) {
  if (closed_) return;
  if (ec) {
    // A client that closes before its hello (a port probe) is no failure.
    if (ec != asio::error::eof && ec != asio::ssl::error::stream_truncated) {
      server_->tls_failures_++;
      spdlog::info("native client from {}: TLS handshake failed: {}", peer_, ec.message());
    }
    Shutdown();
    return;
  }
  handshake_done_ = true;
  if (authenticated_) AttachToHub();
  LogConnected();
  DoRead();
}

void NativeSession::Authenticate(const DecodedCommand& decoded) {
  if (!decoded.secret.ok()) {
    if (authenticated_) {
      server_->dispatcher_->ReplyFail(reader_client_, decoded.account, decoded.secret.status(),
                                      decoded.token);
    } else {
      Fail(decoded.account, decoded.secret.status(), decoded.token);
    }
    return;
  }
  if (!authenticated_) {
    if (!SecretMatches(*decoded.secret, server_->options_.token)) {
      Fail(decoded.account, absl::PermissionDeniedError(""), decoded.token);
      return;
    }
    authenticated_ = true;
    // Written before joining the hub: it comes before any broadcast.
    SendBytes(JsonCodec::EncodeAuthenticated(decoded.token) + '\0');
    AttachToHub();
    spdlog::info("native client {} from {} authenticated", client_.load(), peer_);
    return;
  }
  SendBytes(JsonCodec::EncodeAuthenticated(decoded.token) + '\0');
}

}  // namespace telestra::gateway
