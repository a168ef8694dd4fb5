// The user store on disk: one `user:hash` per line, written by trestle-passwd, and
// mosquitto_passwd's files read as they are (docs/security.md, "Users").
//
//   alice:$scram$4096$<salt>$<StoredKey-256>$<ServerKey-256>$<StoredKey-512>$<ServerKey-512>
//   bob:$7$101$<salt>$<PBKDF2-SHA512 hash>     (mosquitto 2: also SCRAM-SHA-512's salted password)
//   carol:$6$<salt>$<SHA512(password salt)>     (mosquitto 1.x: PLAIN and MQTT only)
//
// Everything base64. Blank lines and lines starting with '#' are ignored.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "security/crypto.hpp"
#include "security/file_watch.hpp"
#include "trestle/core/users.hpp"

namespace trestle::security {

struct UserEntry {
    enum class Kind { scram, mosquitto_pbkdf2, mosquitto_sha512 } kind = Kind::scram;
    uint32_t iterations = 0;
    std::string salt;
    std::string hash;                       // mosquitto: the stored hash
    core::ScramCredentials sha256, sha512;  // scram: both; $7$: sha512 only
    bool has_sha256 = false, has_sha512 = false;
};

using Users = std::map<std::string, UserEntry, std::less<>>;

// Parses a password file; on a bad line returns nullopt and sets `error` to "line N: why"
// (never quoting the hash).
std::optional<Users> parse_password_file(std::string_view text, std::string& error);
// One line for `user` in trestle's format.
std::string scram_line(std::string_view user, std::string_view password, uint32_t iterations);
bool verify_entry(const UserEntry& e, std::string_view password);

// Parsed users as a UserStore (tests, fuzzing); PasswordFile serves from one of these.
class UserTable final : public core::UserStore {
  public:
    explicit UserTable(Users users = {}) : users_(std::move(users)) {}
    bool verify(std::string_view user, std::string_view password) override;
    std::optional<core::ScramCredentials> scram(std::string_view user, core::Hash h) override;
    size_t size() const { return users_.size(); }

  private:
    Users users_;
};

// The file as a UserStore, reloaded when it changes on disk (checked at most once a second,
// when a client authenticates); a file that stops parsing keeps the last good users.
class PasswordFile final : public core::UserStore {
  public:
    // Throws std::runtime_error("<path>: line N: ...") when the file cannot be read or parsed.
    explicit PasswordFile(std::string path);
    bool verify(std::string_view user, std::string_view password) override;
    std::optional<core::ScramCredentials> scram(std::string_view user, core::Hash h) override;
    const std::string& path() const { return path_; }
    size_t size();

  private:
    void maybe_reload();
    std::string path_;
    std::mutex mu_;  // the HTTP endpoint may ask from its own thread
    UserTable users_;
    uint64_t stamp_ = 0;
    Throttle check_;
};

}  // namespace trestle::security
