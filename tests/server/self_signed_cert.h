// A self-signed certificate made at test time, for TLS test servers: no
// private key is ever committed. Header-only, for the test suites.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace h2pool_testing {

// A self-signed EC P-256 certificate for 127.0.0.1 (and localhost), made
// for this process in a temporary directory that goes with it. It is its
// own CA: a client trusts it with the certificate file as its CA file.
class SelfSignedCert {
  template <typename T, void (*F)(T *)> struct Free {
    void operator()(T *p) const { F(p); }
  };
  using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
  using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
  struct FileCloser {
    void operator()(FILE *f) const { std::fclose(f); }
  };
  using FilePtr = std::unique_ptr<FILE, FileCloser>;

public:
  // `alt_names`: the subjectAltName, in OpenSSL's config syntax.
  explicit SelfSignedCert(
      const char *alt_names = "IP:127.0.0.1,DNS:localhost") {
    char tmpl[] = "/tmp/h2pool-rawtls.XXXXXX";
    if (!mkdtemp(tmpl)) {
      return;
    }
    dir_ = tmpl;
    PkeyPtr key(EVP_EC_gen("P-256"));
    X509Ptr cert(X509_new());
    if (!key || !cert) {
      return;
    }
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_NAME *name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_ASC,
        reinterpret_cast<const unsigned char *>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key.get());
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(
        nullptr, &ctx, NID_subject_alt_name, const_cast<char *>(alt_names));
    if (!san) {
      return;
    }
    X509_add_ext(cert.get(), san, -1);
    X509_EXTENSION_free(san);
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
      return;
    }
    FilePtr cf(std::fopen(cert_file().c_str(), "w"));
    FilePtr kf(std::fopen(key_file().c_str(), "w"));
    ok_ = cf && kf && PEM_write_X509(cf.get(), cert.get()) == 1 &&
          PEM_write_PrivateKey(kf.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) == 1;
  }
  ~SelfSignedCert() {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  SelfSignedCert(const SelfSignedCert &) = delete;
  SelfSignedCert &operator=(const SelfSignedCert &) = delete;

  bool ok() const { return ok_; }
  std::string cert_file() const { return dir_ + "/cert.pem"; }
  std::string key_file() const { return dir_ + "/key.pem"; }

private:
  std::string dir_;
  bool ok_ = false;
};

} // namespace h2pool_testing
