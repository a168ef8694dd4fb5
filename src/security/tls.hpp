// sslProfile: certificates, keys and TLS settings in qdrouterd's attributes, as the contexts
// each protocol needs: Proton SSL domains for AMQP (Proton's own TLS layer, so SASL knows the
// connection is encrypted and EXTERNAL sees the client certificate) and OpenSSL SSL_CTXs for
// MQTT and HTTP. Files are watched: a changed certificate or key is loaded for new
// connections, existing ones go on with the old (docs/security.md, "Certificate rotation").
#pragma once

#include <proton/ssl.h>

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "security/file_watch.hpp"

namespace trestle::security {

struct TlsSettings {
    std::string name;
    std::string cert_file, key_file, password, ca_file;
    std::string ciphers;                        // OpenSSL cipher list (TLS 1.2); empty = default
    std::string protocols = "TLSv1.2 TLSv1.3";  // space-separated
    std::string uid_format;                     // EXTERNAL / useIdentityAsUsername fields
};

// The versions a `protocols` value names; empty when it names none or an unknown one.
struct TlsVersions {
    int min = 0, max = 0;
};
TlsVersions parse_protocols(const std::string& protocols, std::string& error);

// A user id from certificate fields, qdrouterd's uidFormat: c country, s state, l locality,
// o organization, u organizational unit, n common name, 1/2/5 SHA-1/256/512 fingerprint
// (hex); fields joined with ';'. `field` returns one field's text (empty if absent).
std::string user_id(const std::string& format, const std::function<std::string(char)>& field);
// The same from an OpenSSL certificate.
std::string user_id(const std::string& format, X509* cert);
// The same from a Proton TLS session's peer certificate.
std::string user_id(const std::string& format, pn_ssl_t* ssl);

class TlsProfile {
  public:
    // Loads and checks the files; throws std::runtime_error with the file and reason.
    explicit TlsProfile(TlsSettings s);
    ~TlsProfile();
    TlsProfile(const TlsProfile&) = delete;
    TlsProfile& operator=(const TlsProfile&) = delete;

    const TlsSettings& settings() const { return s_; }
    // Reloads changed files (checked at most once a second); call before using a context for
    // a new connection.
    void refresh();
    // AMQP listener: client certificates are requested and required when `verify_peer`;
    // plaintext clients are accepted beside TLS ones when `allow_plain` (requireSsl: no).
    pn_ssl_domain_t* amqp_server(bool verify_peer, bool allow_plain);
    // AMQP connector: the peer is checked against caCertFile (or the system's CAs), and its
    // name against the host when `verify_hostname`.
    pn_ssl_domain_t* amqp_client(bool verify_hostname);
    // MQTT/HTTP listener.
    SSL_CTX* server_ctx(bool verify_peer);

  private:
    struct Contexts;
    void load();  // builds fresh contexts from the files, or throws
    TlsSettings s_;
    std::unique_ptr<Contexts> ctx_;
    uint64_t stamp_ = 0;  // the files' stamps, combined
    Throttle check_;
};

}  // namespace trestle::security
