// Who a client is: the port through which every protocol adapter checks a user name and
// password (AMQP SASL PLAIN and SCRAM, MQTT CONNECT, HTTP basic auth). The password file
// (src/security/password_file.hpp) implements it; an external authentication service could.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trestle::core {

enum class Hash { sha256, sha512 };

// What a SCRAM server needs of a user (RFC 5802): never the password itself.
struct ScramCredentials {
    uint32_t iterations = 0;
    std::string salt;
    std::string stored_key;
    std::string server_key;
};

class UserStore {
  public:
    virtual ~UserStore() = default;
    // True when `password` is `user`'s password.
    virtual bool verify(std::string_view user, std::string_view password) = 0;
    // `user`'s SCRAM keys for hash `h`, when the store holds them.
    virtual std::optional<ScramCredentials> scram(std::string_view user, Hash h) = 0;
};

}  // namespace trestle::core
