// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) without channel binding: the server
// half for AMQP listeners, the client half for connectors. Messages are the RFC's text; a
// malformed one is an error with a reason, never an exception.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "security/crypto.hpp"

namespace trestle::security {

// The parts of a client-first-message the server uses.
struct ClientFirst {
    std::string gs2_header;  // "n,," or "y,," (+ authzid)
    std::string authzid;
    std::string user;  // unescaped (=2C → ',', =3D → '=')
    std::string nonce;
    std::string bare;  // client-first-message-bare, for the AuthMessage
};
std::optional<ClientFirst> parse_client_first(std::string_view msg, std::string& error);

struct ClientFinal {
    std::string channel_binding;  // base64 of the gs2 header
    std::string nonce;
    std::string proof;  // decoded
    std::string without_proof;
};
std::optional<ClientFinal> parse_client_final(std::string_view msg, std::string& error);

class ScramServer {
  public:
    ScramServer(Hash h, core::UserStore& store) : hash_(h), store_(store) {}
    // The server-first-message, or nullopt with `error`. An unknown user gets a plausible
    // challenge and fails at the end, so user names cannot be probed.
    std::optional<std::string> client_first(std::string_view msg, std::string& error);
    // The server-final-message ("v=...") when the proof is right; nullopt with `error`.
    std::optional<std::string> client_final(std::string_view msg, std::string& error);
    const std::string& user() const { return first_.user; }

  private:
    Hash hash_;
    core::UserStore& store_;
    ClientFirst first_;
    std::string server_first_;
    std::string nonce_;
    core::ScramCredentials creds_;
    bool known_ = false;  // the user exists (else creds_ are a decoy)
    bool done_ = false;
};

class ScramClient {
  public:
    ScramClient(Hash h, std::string user, std::string password)
        : hash_(h), user_(std::move(user)), password_(std::move(password)) {}
    std::string first();
    std::optional<std::string> server_first(std::string_view msg, std::string& error);
    // True when the server proved it knows the user's keys.
    bool server_final(std::string_view msg, std::string& error);

  private:
    Hash hash_;
    std::string user_, password_;
    std::string nonce_, bare_, auth_message_, salted_;
};

// "SCRAM-SHA-256" → sha256, "SCRAM-SHA-512" → sha512.
std::optional<Hash> scram_hash(std::string_view mechanism);

}  // namespace trestle::security
