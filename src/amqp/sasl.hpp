// SASL for AMQP on Proton's plugin API (Debian's Proton has no Cyrus SASL): ANONYMOUS, PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512 and EXTERNAL, server side for listeners and client side for
// connectors, one SaslSession per connection installed on its transport.
#pragma once

#include <proton/ssl.h>
#include <proton/transport.h>

#include <memory>
#include <string>

#include "security/scram.hpp"
#include "trestle/core/users.hpp"

namespace trestle::amqp {

// A listener's or connector's SASL settings (qdrouterd's attribute names in comments).
struct SaslConfig {
    std::string mechanisms = "ANONYMOUS";    // saslMechanisms, in order of preference
    std::shared_ptr<core::UserStore> users;  // userStore (listeners)
    bool authenticate_peer = false;          // authenticatePeer: no ANONYMOUS, no bare AMQP
    bool allow_insecure = false;             // allowInsecureAuthentication: PLAIN without TLS
    std::string uid_format;                  // the sslProfile's uidFormat, for EXTERNAL
    std::string username, password;          // saslUsername, saslPassword (connectors)
};

// Counts kept for management and metrics.
struct SaslCounters {
    uint64_t succeeded = 0;
    uint64_t failed = 0;
};

class SaslSession {
  public:
    // `ssl` is the connection's TLS session (nullptr on plain TCP).
    SaslSession(const SaslConfig& config, pn_transport_t* t, pn_ssl_t* ssl, bool server,
                std::string log_prefix);
    // The mechanisms this connection may use now (its encryption and certificate known).
    const std::string& offered();
    const std::string& user() const { return user_; }
    const std::string& failure() const { return failure_; }
    bool listed() const { return listed_; }  // the mechanisms were sent
    static SaslCounters& counters();
    // Counts and logs a refusal that happened without an exchange.
    void refused(const std::string& why);

    // Plugin entry points (sasl.cpp).
    void process_init(const char* mech, const pn_bytes_t* recv);
    void process_response(const pn_bytes_t* recv);
    bool process_mechanisms(const char* mechs);
    void process_challenge(const pn_bytes_t* recv);
    void process_outcome(const pn_bytes_t* recv);

  private:
    void succeed(std::string user);
    void fail(const std::string& why);
    void send(std::string bytes);
    bool offers(std::string_view mech);
    const SaslConfig& config_;
    pn_transport_t* t_;
    pn_ssl_t* ssl_;
    bool server_;
    std::string log_prefix_;
    std::string offered_;
    bool listed_ = false;
    std::string mech_;
    std::string user_;
    std::string failure_;
    std::string out_;  // what Proton sends next: it keeps the pointer until written
    std::unique_ptr<security::ScramServer> scram_server_;
    std::unique_ptr<security::ScramClient> scram_client_;
};

// Installs `s` as the transport's SASL implementation (after pn_sasl(t)).
void install_sasl(pn_transport_t* t, SaslSession* s);

}  // namespace trestle::amqp
