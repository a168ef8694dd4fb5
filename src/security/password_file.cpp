#include "security/password_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "security/log.hpp"

namespace trestle::security {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (;;) {
        size_t p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string_view::npos ? p : p - start));
        if (p == std::string_view::npos) return out;
        start = p + 1;
    }
}

std::optional<uint32_t> number(std::string_view s) {
    if (s.empty() || s.size() > 9) return std::nullopt;
    uint32_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    return v;
}

core::ScramCredentials scram_from_salted(Hash h, std::string_view salted, std::string_view salt,
                                         uint32_t iterations) {
    core::ScramCredentials c;
    c.iterations = iterations;
    c.salt = std::string(salt);
    c.stored_key = digest(h, hmac(h, salted, "Client Key"));
    c.server_key = hmac(h, salted, "Server Key");
    return c;
}

// An iteration count field: a positive number.
bool parse_iterations(std::string_view f, UserEntry& e, std::string& why) {
    auto it = number(f);
    if (!it || *it == 0) {
        why = "bad iteration count";
        return false;
    }
    e.iterations = *it;
    return true;
}

// Parses the hash part of one line.
std::optional<UserEntry> parse_hash(std::string_view h, std::string& why) {
    auto f = split(h, '$');
    UserEntry e;
    if (f.size() < 2 || !f[0].empty()) {
        why = "unknown hash format (expected $scram$, $7$ or $6$)";
        return std::nullopt;
    }
    auto b64 = [&](std::string_view s, const char* what) -> std::optional<std::string> {
        auto d = base64_decode(s);
        if (!d || d->empty()) why = std::string("bad base64 in ") + what;
        return d && !d->empty() ? d : std::nullopt;
    };
    if (f[1] == "scram") {
        if (f.size() != 8) {
            why = "$scram$ needs iterations, salt and four keys";
            return std::nullopt;
        }
        e.kind = UserEntry::Kind::scram;
        if (!parse_iterations(f[2], e, why)) return std::nullopt;
        auto salt = b64(f[3], "salt");
        if (!salt) return std::nullopt;
        e.salt = *salt;
        std::optional<std::string> k[4];
        for (int i = 0; i < 4; ++i) {
            k[i] = b64(f[4 + i], "a key");
            if (!k[i]) return std::nullopt;
            size_t want = i < 2 ? 32 : 64;
            if (k[i]->size() != want) {
                why = "a key has the wrong length";
                return std::nullopt;
            }
        }
        e.sha256 = {e.iterations, e.salt, *k[0], *k[1]};
        e.sha512 = {e.iterations, e.salt, *k[2], *k[3]};
        e.has_sha256 = e.has_sha512 = true;
        return e;
    }
    if (f[1] == "7") {
        if (f.size() != 5) {
            why = "$7$ needs iterations, salt and hash";
            return std::nullopt;
        }
        e.kind = UserEntry::Kind::mosquitto_pbkdf2;
        if (!parse_iterations(f[2], e, why)) return std::nullopt;
        auto salt = b64(f[3], "salt");
        auto hash = salt ? b64(f[4], "hash") : std::nullopt;
        if (!hash) return std::nullopt;
        if (hash->size() != 64) {
            why = "a $7$ hash is 64 bytes";
            return std::nullopt;
        }
        e.salt = *salt;
        e.hash = *hash;
        // mosquitto's hash is PBKDF2-HMAC-SHA512: SCRAM-SHA-512's SaltedPassword.
        e.sha512 = scram_from_salted(Hash::sha512, e.hash, e.salt, e.iterations);
        e.has_sha512 = true;
        return e;
    }
    if (f[1] == "6") {
        if (f.size() != 4) {
            why = "$6$ needs salt and hash";
            return std::nullopt;
        }
        e.kind = UserEntry::Kind::mosquitto_sha512;
        auto salt = b64(f[2], "salt");
        auto hash = salt ? b64(f[3], "hash") : std::nullopt;
        if (!hash) return std::nullopt;
        if (hash->size() != 64) {
            why = "a $6$ hash is 64 bytes";
            return std::nullopt;
        }
        e.salt = *salt;
        e.hash = *hash;
        return e;
    }
    why = "unknown hash format (expected $scram$, $7$ or $6$)";
    return std::nullopt;
}

}  // namespace

std::optional<Users> parse_password_file(std::string_view text, std::string& error) {
    Users users;
    size_t line_no = 0;
    for (std::string_view line : split(text, '\n')) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t first = line.find_first_not_of(" \t");
        if (first == std::string_view::npos || line[first] == '#') continue;
        size_t colon = line.find(':');
        std::string why;
        if (colon == std::string_view::npos || colon == 0) {
            error = "line " + std::to_string(line_no) + ": expected user:hash";
            return std::nullopt;
        }
        std::string_view user = line.substr(0, colon);
        auto e = parse_hash(line.substr(colon + 1), why);
        if (!e) {
            error = "line " + std::to_string(line_no) + ": " + why;
            return std::nullopt;
        }
        if (users.count(user)) {
            error = "line " + std::to_string(line_no) + ": user '" + std::string(user) +
                    "' appears twice";
            return std::nullopt;
        }
        users.emplace(std::string(user), std::move(*e));
    }
    return users;
}

std::string scram_line(std::string_view user, std::string_view password, uint32_t iterations) {
    std::string salt = random_bytes(16);
    std::string line =
        std::string(user) + ":$scram$" + std::to_string(iterations) + "$" + base64_encode(salt);
    for (Hash h : {Hash::sha256, Hash::sha512}) {
        auto c = scram_from_salted(h, pbkdf2(h, password, salt, iterations, digest_size(h)), salt,
                                   iterations);
        line += "$" + base64_encode(c.stored_key) + "$" + base64_encode(c.server_key);
    }
    return line;
}

bool verify_entry(const UserEntry& e, std::string_view password) {
    switch (e.kind) {
        case UserEntry::Kind::scram: {
            // One hash suffices to check a password; SHA-256 is the cheaper of the two.
            std::string salted = pbkdf2(Hash::sha256, password, e.salt, e.iterations, 32);
            return equal_in_constant_time(
                digest(Hash::sha256, hmac(Hash::sha256, salted, "Client Key")),
                e.sha256.stored_key);
        }
        case UserEntry::Kind::mosquitto_pbkdf2:
            return equal_in_constant_time(pbkdf2(Hash::sha512, password, e.salt, e.iterations, 64),
                                          e.hash);
        case UserEntry::Kind::mosquitto_sha512:
            return equal_in_constant_time(digest(Hash::sha512, std::string(password) + e.salt),
                                          e.hash);
    }
    return false;
}

PasswordFile::PasswordFile(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    if (!in) throw std::runtime_error(path_ + ": cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string error;
    auto users = parse_password_file(ss.str(), error);
    if (!users) throw std::runtime_error(path_ + ": " + error);
    users_ = UserTable(std::move(*users));
    stamp_ = file_stamp(path_);
    (void)check_.due();
}

void PasswordFile::maybe_reload() {
    if (!check_.due()) return;
    uint64_t stamp = file_stamp(path_);
    if (stamp == stamp_) return;
    stamp_ = stamp;
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string error;
    auto users = in ? parse_password_file(ss.str(), error) : std::nullopt;
    if (!users) {
        logger().error("user store {}: not reloaded, keeping {} users: {}", path_, users_.size(),
                       in ? error : std::string("cannot be read"));
        return;
    }
    users_ = UserTable(std::move(*users));
    logger().info("user store {}: reloaded, {} users", path_, users_.size());
}

bool UserTable::verify(std::string_view user, std::string_view password) {
    auto it = users_.find(user);
    return it != users_.end() && verify_entry(it->second, password);
}

std::optional<core::ScramCredentials> UserTable::scram(std::string_view user, core::Hash h) {
    auto it = users_.find(user);
    if (it == users_.end()) return std::nullopt;
    const UserEntry& e = it->second;
    if (h == Hash::sha256 && e.has_sha256) return e.sha256;
    if (h == Hash::sha512 && e.has_sha512) return e.sha512;
    return std::nullopt;
}

bool PasswordFile::verify(std::string_view user, std::string_view password) {
    std::lock_guard lock(mu_);
    maybe_reload();
    return users_.verify(user, password);
}

std::optional<core::ScramCredentials> PasswordFile::scram(std::string_view user, core::Hash h) {
    std::lock_guard lock(mu_);
    maybe_reload();
    return users_.scram(user, h);
}

size_t PasswordFile::size() {
    std::lock_guard lock(mu_);
    return users_.size();
}

}  // namespace trestle::security
