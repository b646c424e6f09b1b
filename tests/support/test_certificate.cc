#include "tests/support/test_certificate.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"

namespace telestra::testing {

absl::StatusOr<SelfSignedCertificate> MakeSelfSignedCertificate(const std::string& dir,
                                                                const std::string& name) {
  SelfSignedCertificate cert{dir + "/" + name + "-cert.pem", dir + "/" + name + "-key.pem", ""};
  const std::string log = dir + "/" + name + "-openssl.log";
  auto openssl =
      Subprocess::Start({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", cert.key_path, "-out",
                         cert.cert_path, "-days", "2", "-subj", "/CN=localhost", "-addext",
                         "subjectAltName=DNS:localhost,IP:127.0.0.1"},
                        log);
  if (!openssl.ok()) return openssl.status();
  auto exit = (*openssl)->WaitForExit(absl::Now() + absl::Seconds(20));
  if (!exit.ok()) return exit.status();
  if (*exit != 0) {
    return absl::InternalError("openssl failed (" + log + "):\n" + ReadFileText(log));
  }
  cert.cert_pem = ReadFileText(cert.cert_path);
  return cert;
}

}  // namespace telestra::testing
