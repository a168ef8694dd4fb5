#include "net/tls_transport.hpp"

#include <openssl/err.h>

#include <vector>

#include "security/log.hpp"
#include "security/tls.hpp"

namespace trestle::net {

namespace {

using security::logger;

std::string tls_error(SSL* ssl) {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    if (out.empty()) out = "handshake failed";
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK)
        out += " (certificate: " + std::string(X509_verify_cert_error_string(v)) + ")";
    return out;
}

class TlsTransport final : public Transport, private Transport::Handler {
  public:
    TlsTransport(std::unique_ptr<Transport> inner, SSL_CTX* ctx)
        : inner_(std::move(inner)), ssl_(SSL_new(ctx)) {
        remote_ = inner_->remote();  // for the log: a failed handshake may find the socket gone
        BIO* rbio = BIO_new(BIO_s_mem());
        BIO* wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl_, rbio, wbio);
        SSL_set_accept_state(ssl_);
        rbio_ = rbio;
        wbio_ = wbio;
    }
    ~TlsTransport() override {
        close();
        SSL_free(ssl_);
    }

    void start(Transport::Handler& h) override {
        h_ = &h;
        inner_->start(*this);
    }
    void set_reading(bool on) override { inner_->set_reading(on); }
    void write(std::string_view d) override {
        if (closed_ || d.empty() || !ready_) return;
        SSL_write(ssl_, d.data(), static_cast<int>(d.size()));  // a memory BIO takes it all
        drain();
    }
    size_t buffered() const override { return inner_->buffered(); }
    void close() override {
        if (closed_) return;
        closed_ = true;
        if (ready_) {
            SSL_shutdown(ssl_);  // close_notify, best effort
            drain();
        }
        inner_->close();
    }
    std::string remote() const override { return remote_; }
    bool encrypted() const override { return ready_; }
    TlsParameters tls_parameters() const override {
        if (!ready_) return {};
        return {SSL_get_version(ssl_), SSL_get_cipher_name(ssl_),
                SSL_get_cipher_bits(ssl_, nullptr)};
    }
    std::string peer_identity(const std::string& uid_format) const override {
        X509* cert = SSL_get0_peer_certificate(ssl_);
        if (!cert || SSL_get_verify_result(ssl_) != X509_V_OK) return {};
        return security::user_id(uid_format.empty() ? "n" : uid_format, cert);
    }

  private:
    // Ciphertext OpenSSL produced goes out through the inner transport.
    void drain() {
        char* p = nullptr;
        long n = BIO_get_mem_data(wbio_, &p);
        if (n > 0) {
            inner_->write(std::string_view(p, static_cast<size_t>(n)));
            (void)BIO_reset(wbio_);
        }
    }
    void fail(const std::string& why) {
        logger().warn("TLS from {} refused: {}", remote_, why);
        drain();  // the alert, if any
        closed_ = true;
        inner_->close();
        h_->on_closed(true);
    }

    void on_data(std::string_view data) override {
        if (closed_) return;
        if (!ready_ && !seen_bytes_) {
            seen_bytes_ = true;
            if (static_cast<uint8_t>(data[0]) != 0x16)
                return fail("the first bytes are not a TLS handshake (plaintext on a TLS port?)");
        }
        BIO_write(rbio_, data.data(), static_cast<int>(data.size()));
        if (!ready_) {
            int r = SSL_do_handshake(ssl_);
            if (r != 1) {
                int err = SSL_get_error(ssl_, r);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                    drain();
                    return;
                }
                return fail(tls_error(ssl_));
            }
            ready_ = true;
            drain();
            logger().debug("TLS from {}: {} {}", remote_, SSL_get_version(ssl_),
                           SSL_get_cipher_name(ssl_));
        }
        static thread_local std::vector<char> plain(16 * 1024);
        for (;;) {
            int n = SSL_read(ssl_, plain.data(), static_cast<int>(plain.size()));
            if (n <= 0) {
                int err = SSL_get_error(ssl_, n);
                drain();
                if (err == SSL_ERROR_WANT_READ) return;
                if (err == SSL_ERROR_ZERO_RETURN) {  // close_notify
                    closed_ = true;
                    inner_->close();
                    h_->on_closed(false);
                    return;
                }
                return fail(tls_error(ssl_));
            }
            h_->on_data(std::string_view(plain.data(), static_cast<size_t>(n)));
            if (closed_) return;
        }
    }
    void on_writable() override {
        if (!closed_) h_->on_writable();
    }
    void on_closed(bool error) override {
        if (closed_) return;
        closed_ = true;
        h_->on_closed(error);
    }

    std::unique_ptr<Transport> inner_;
    SSL* ssl_;
    BIO* rbio_;
    BIO* wbio_;
    Transport::Handler* h_ = nullptr;
    std::string remote_;
    bool ready_ = false;
    bool seen_bytes_ = false;
    bool closed_ = false;
};

}  // namespace

std::unique_ptr<Transport> tls_server_transport(std::unique_ptr<Transport> inner, SSL_CTX* ctx) {
    return std::make_unique<TlsTransport>(std::move(inner), ctx);
}

}  // namespace trestle::net
