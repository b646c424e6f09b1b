// A self-signed certificate for TLS tests (native port, gRPC, web).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace telestra::testing {

struct SelfSignedCertificate {
  std::string cert_path;
  std::string key_path;
  std::string cert_pem;
};

// An EC (prime256v1) certificate for "localhost" / 127.0.0.1, valid two days,
// made with /usr/bin/openssl as `dir`/`name`-cert.pem and `dir`/`name`-key.pem
// (openssl's output in `dir`/`name`-openssl.log, named in the error).
absl::StatusOr<SelfSignedCertificate> MakeSelfSignedCertificate(const std::string& dir,
                                                                const std::string& name = "test");

}  // namespace telestra::testing
