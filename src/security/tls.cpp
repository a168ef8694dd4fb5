#include "security/tls.hpp"

#include "security/file_watch.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <sstream>
#include <stdexcept>

#include "security/log.hpp"

namespace trestle::security {

namespace {

// The files' stamps, combined (unsigned: wrapping is fine).
uint64_t stamp_of(const TlsSettings& s) {
    uint64_t sum = 0;
    for (const std::string* f : {&s.cert_file, &s.key_file, &s.ca_file})
        sum = sum * 31 + file_stamp(*f);
    return sum;
}

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

const char* system_ca = "/etc/ssl/certs/ca-certificates.crt";

struct DomainDeleter {
    void operator()(pn_ssl_domain_t* d) const { pn_ssl_domain_free(d); }
};
struct CtxDeleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using Domain = std::unique_ptr<pn_ssl_domain_t, DomainDeleter>;
using Ctx = std::unique_ptr<SSL_CTX, CtxDeleter>;

int password_cb(char* buf, int size, int, void* u) {
    const std::string& pw = *static_cast<const std::string*>(u);
    int n = static_cast<int>(std::min<size_t>(pw.size(), static_cast<size_t>(size)));
    memcpy(buf, pw.data(), static_cast<size_t>(n));
    return n;
}

std::string hex(const unsigned char* p, unsigned n) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += d[p[i] >> 4];
        out += d[p[i] & 15];
    }
    return out;
}

}  // namespace

TlsVersions parse_protocols(const std::string& protocols, std::string& error) {
    TlsVersions v;
    std::istringstream in(protocols);
    std::string p;
    while (in >> p) {
        int ver = p == "TLSv1"     ? TLS1_VERSION
                  : p == "TLSv1.1" ? TLS1_1_VERSION
                  : p == "TLSv1.2" ? TLS1_2_VERSION
                  : p == "TLSv1.3" ? TLS1_3_VERSION
                                   : 0;
        if (!ver) {
            error = "unknown TLS protocol '" + p + "' (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)";
            return {};
        }
        v.min = v.min ? std::min(v.min, ver) : ver;
        v.max = std::max(v.max, ver);
    }
    if (!v.min) error = "no TLS protocol named";
    return v;
}

std::string user_id(const std::string& format, const std::function<std::string(char)>& field) {
    std::string out;
    for (char c : format) {
        std::string f = field(c);
        if (f.empty()) continue;
        if (!out.empty()) out += ';';
        out += f;
    }
    return out;
}

std::string user_id(const std::string& format, X509* cert) {
    if (!cert) return {};
    X509_NAME* name = X509_get_subject_name(cert);
    return user_id(format, [&](char c) -> std::string {
        int nid = c == 'c'   ? NID_countryName
                  : c == 's' ? NID_stateOrProvinceName
                  : c == 'l' ? NID_localityName
                  : c == 'o' ? NID_organizationName
                  : c == 'u' ? NID_organizationalUnitName
                  : c == 'n' ? NID_commonName
                             : 0;
        if (nid) {
            char buf[256];
            int n = X509_NAME_get_text_by_NID(name, nid, buf, sizeof buf);
            return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
        }
        const EVP_MD* md = c == '1'   ? EVP_sha1()
                           : c == '2' ? EVP_sha256()
                           : c == '5' ? EVP_sha512()
                                      : nullptr;
        if (!md) return {};
        unsigned char buf[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (X509_digest(cert, md, buf, &n) != 1) return {};
        return hex(buf, n);
    });
}

std::string user_id(const std::string& format, pn_ssl_t* ssl) {
    if (!ssl || !pn_ssl_get_remote_subject(ssl)) return {};
    return user_id(format, [&](char c) -> std::string {
        pn_ssl_cert_subject_subfield sub = c == 'c'   ? PN_SSL_CERT_SUBJECT_COUNTRY_NAME
                                           : c == 's' ? PN_SSL_CERT_SUBJECT_STATE_OR_PROVINCE
                                           : c == 'l' ? PN_SSL_CERT_SUBJECT_CITY_OR_LOCALITY
                                           : c == 'o' ? PN_SSL_CERT_SUBJECT_ORGANIZATION_NAME
                                           : c == 'u' ? PN_SSL_CERT_SUBJECT_ORGANIZATION_UNIT
                                           : c == 'n'
                                               ? PN_SSL_CERT_SUBJECT_COMMON_NAME
                                               : static_cast<pn_ssl_cert_subject_subfield>(-1);
        if (static_cast<int>(sub) >= 0) {
            const char* v = pn_ssl_get_remote_subject_subfield(ssl, sub);
            return v ? v : "";
        }
        pn_ssl_hash_alg alg = c == '1'   ? PN_SSL_SHA1
                              : c == '2' ? PN_SSL_SHA256
                              : c == '5' ? PN_SSL_SHA512
                                         : static_cast<pn_ssl_hash_alg>(-1);
        if (static_cast<int>(alg) < 0) return {};
        char buf[2 * 64 + 1];
        if (pn_ssl_get_cert_fingerprint(ssl, buf, sizeof buf, alg) != 0) return {};
        std::string out = buf;
        for (char& ch : out) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
        return out;
    });
}

struct TlsProfile::Contexts {
    Domain server[2][2];  // [verify peer][allow plaintext]
    Domain client_verify_name, client_verify;
    Ctx ctx_anon, ctx_verify;
};

TlsProfile::TlsProfile(TlsSettings s) : s_(std::move(s)) {
    load();
    stamp_ = stamp_of(s_);
    (void)check_.due();  // the first check comes a second from now
}

TlsProfile::~TlsProfile() = default;

void TlsProfile::load() {
    std::string error;
    TlsVersions v = parse_protocols(s_.protocols, error);
    if (!v.min) throw std::runtime_error(error);
    auto c = std::make_unique<Contexts>();
    // Never null: Proton would leave OpenSSL's default, which prompts on the terminal for an
    // encrypted key's pass phrase; "" fails instead.
    const char* pw = s_.password.c_str();
    const char* ca = s_.ca_file.empty() ? nullptr : s_.ca_file.c_str();
    auto domain = [&](pn_ssl_mode_t mode, pn_ssl_verify_mode_t verify, bool allow_plain = false) {
        Domain d(pn_ssl_domain(mode));
        if (!d) throw std::runtime_error("Proton has no TLS support");
        if (!s_.cert_file.empty() && pn_ssl_domain_set_credentials(d.get(), s_.cert_file.c_str(),
                                                                   s_.key_file.c_str(), pw) != 0)
            throw std::runtime_error("certFile " + s_.cert_file + " / privateKeyFile " +
                                     s_.key_file + " cannot be used (or the password is wrong)");
        const char* trust = ca ? ca : (mode == PN_SSL_MODE_CLIENT ? system_ca : nullptr);
        if (trust && pn_ssl_domain_set_trusted_ca_db(d.get(), trust) != 0)
            throw std::runtime_error(std::string("caCertFile ") + trust + " cannot be used");
        if (pn_ssl_domain_set_peer_authentication(
                d.get(), verify, mode == PN_SSL_MODE_SERVER ? trust : nullptr) != 0)
            throw std::runtime_error("peer verification needs caCertFile");
        if (pn_ssl_domain_set_protocols(d.get(), s_.protocols.c_str()) != 0)
            throw std::runtime_error("protocols '" + s_.protocols + "' rejected by Proton");
        if (!s_.ciphers.empty() && pn_ssl_domain_set_ciphers(d.get(), s_.ciphers.c_str()) != 0)
            throw std::runtime_error("ciphers '" + s_.ciphers + "' rejected");
        if (allow_plain) pn_ssl_domain_allow_unsecured_client(d.get());
        return d;
    };
    if (!s_.cert_file.empty()) {
        for (bool plain : {false, true}) {
            c->server[0][plain] = domain(PN_SSL_MODE_SERVER, PN_SSL_ANONYMOUS_PEER, plain);
            if (ca) c->server[1][plain] = domain(PN_SSL_MODE_SERVER, PN_SSL_VERIFY_PEER, plain);
        }
    }
    c->client_verify_name = domain(PN_SSL_MODE_CLIENT, PN_SSL_VERIFY_PEER_NAME);
    c->client_verify = domain(PN_SSL_MODE_CLIENT, PN_SSL_VERIFY_PEER);

    auto ctx = [&](bool verify) {
        Ctx x(SSL_CTX_new(TLS_server_method()));
        if (!x) throw std::runtime_error("SSL_CTX_new: " + openssl_error());
        SSL_CTX_set_min_proto_version(x.get(), v.min);
        SSL_CTX_set_max_proto_version(x.get(), v.max);
        SSL_CTX_set_default_passwd_cb(x.get(), password_cb);
        SSL_CTX_set_default_passwd_cb_userdata(x.get(), &s_.password);
        if (SSL_CTX_use_certificate_chain_file(x.get(), s_.cert_file.c_str()) != 1)
            throw std::runtime_error("certFile " + s_.cert_file + ": " + openssl_error());
        if (SSL_CTX_use_PrivateKey_file(x.get(), s_.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
            throw std::runtime_error("privateKeyFile " + s_.key_file + ": " + openssl_error());
        if (SSL_CTX_check_private_key(x.get()) != 1)
            throw std::runtime_error("privateKeyFile " + s_.key_file + " does not match certFile " +
                                     s_.cert_file);
        // The key is loaded: the callback is done. (Left set, asio's ssl::context, which the
        // HTTPS listener wraps around this context, would delete the userdata as its own.)
        SSL_CTX_set_default_passwd_cb(x.get(), nullptr);
        SSL_CTX_set_default_passwd_cb_userdata(x.get(), nullptr);
        if (!s_.ciphers.empty() && SSL_CTX_set_cipher_list(x.get(), s_.ciphers.c_str()) != 1)
            throw std::runtime_error("ciphers '" + s_.ciphers + "': " + openssl_error());
        if (verify) {
            if (SSL_CTX_load_verify_locations(x.get(), ca, nullptr) != 1)
                throw std::runtime_error(std::string("caCertFile ") + ca + ": " + openssl_error());
            SSL_CTX_set_verify(x.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
            SSL_CTX_set_client_CA_list(x.get(), SSL_load_client_CA_file(ca));
        }
        // Sessions are not resumed across reloads or processes; no cache to grow.
        SSL_CTX_set_session_cache_mode(x.get(), SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(x.get(), SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(x.get(), 0);
        return x;
    };
    if (!s_.cert_file.empty()) {
        c->ctx_anon = ctx(false);
        if (ca) c->ctx_verify = ctx(true);
    }
    ctx_ = std::move(c);
}

void TlsProfile::refresh() {
    if (!check_.due()) return;
    uint64_t st = stamp_of(s_);
    if (st == stamp_) return;
    // cert-manager writes the certificate and the key one after the other: a pair that does not
    // match yet is tried again at the next check.
    try {
        auto old = std::move(ctx_);
        try {
            load();
        } catch (...) {
            ctx_ = std::move(old);
            throw;
        }
        stamp_ = st;
        logger().info(
            "sslProfile '{}': certificate files changed, reloaded (new connections "
            "use them)",
            s_.name);
    } catch (const std::exception& e) {
        logger().error("sslProfile '{}': reload failed, keeping the previous certificate: {}",
                       s_.name, e.what());
    }
}

pn_ssl_domain_t* TlsProfile::amqp_server(bool verify_peer, bool allow_plain) {
    return ctx_->server[verify_peer][allow_plain].get();
}

pn_ssl_domain_t* TlsProfile::amqp_client(bool verify_hostname) {
    return verify_hostname ? ctx_->client_verify_name.get() : ctx_->client_verify.get();
}

SSL_CTX* TlsProfile::server_ctx(bool verify_peer) {
    return verify_peer ? ctx_->ctx_verify.get() : ctx_->ctx_anon.get();
}

}  // namespace trestle::security
