#include "security/scram.hpp"

#include <vector>

namespace trestle::security {

namespace {

struct Attribute {
    char key;
    std::string_view value;
};

// "a=1,b=2" → attributes; nullopt unless each part is one letter, '=', a value.
std::optional<std::vector<Attribute>> attributes(std::string_view s) {
    std::vector<Attribute> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        std::string_view part =
            s.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (part.size() < 2 || part[1] != '=' || !isalpha(static_cast<unsigned char>(part[0])))
            return std::nullopt;
        out.push_back({part[0], part.substr(2)});
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

bool printable_nonce(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n)
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    return true;
}

// RFC 5802 saslname: ',' and '=' are written =2C and =3D.
std::optional<std::string> unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',') return std::nullopt;
        if (s[i] != '=') {
            out += s[i];
            continue;
        }
        std::string_view esc = s.substr(i + 1, 2);
        if (esc == "2C")
            out += ',';
        else if (esc == "3D")
            out += '=';
        else
            return std::nullopt;
        i += 2;
    }
    return out;
}

std::string escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == ',')
            out += "=2C";
        else if (c == '=')
            out += "=3D";
        else
            out += c;
    }
    return out;
}

std::string nonce() {
    return base64_encode(random_bytes(18));
}

std::string xor_bytes(std::string_view a, std::string_view b) {
    std::string out(a);
    for (size_t i = 0; i < out.size() && i < b.size(); ++i) out[i] ^= b[i];
    return out;
}

// Credentials for a user who does not exist: stable per name (a second try looks the same)
// and unguessable (a process-random key), so the challenge does not tell.
core::ScramCredentials decoy(Hash h, std::string_view user) {
    static const std::string key = random_bytes(32);
    core::ScramCredentials c;
    c.iterations = 4096;
    c.salt = hmac(h, key, user).substr(0, 16);
    c.stored_key = hmac(h, key, "stored");
    c.server_key = hmac(h, key, "server");
    return c;
}

}  // namespace

std::optional<Hash> scram_hash(std::string_view mechanism) {
    if (mechanism == "SCRAM-SHA-256") return Hash::sha256;
    if (mechanism == "SCRAM-SHA-512") return Hash::sha512;
    return std::nullopt;
}

std::optional<ClientFirst> parse_client_first(std::string_view msg, std::string& error) {
    ClientFirst f;
    // gs2-header: cbind-flag "," [authzid] ","
    size_t c1 = msg.find(',');
    size_t c2 = c1 == std::string_view::npos ? c1 : msg.find(',', c1 + 1);
    if (c2 == std::string_view::npos) {
        error = "client-first-message has no GS2 header";
        return std::nullopt;
    }
    std::string_view flag = msg.substr(0, c1);
    if (flag.starts_with("p=")) {
        error = "channel binding is not supported";
        return std::nullopt;
    }
    if (flag != "n" && flag != "y") {
        error = "bad channel binding flag";
        return std::nullopt;
    }
    std::string_view authz = msg.substr(c1 + 1, c2 - c1 - 1);
    if (!authz.empty()) {
        auto u = authz.starts_with("a=") ? unescape(authz.substr(2)) : std::nullopt;
        if (!u) {
            error = "bad authorization identity";
            return std::nullopt;
        }
        f.authzid = *u;
    }
    f.gs2_header = std::string(msg.substr(0, c2 + 1));
    f.bare = std::string(msg.substr(c2 + 1));
    auto attrs = attributes(f.bare);
    if (!attrs || attrs->size() < 2 || (*attrs)[0].key != 'n' || (*attrs)[1].key != 'r') {
        error = "client-first-message-bare must start n=<user>,r=<nonce>";
        return std::nullopt;
    }
    auto user = unescape((*attrs)[0].value);
    if (!user || user->empty()) {
        error = "bad user name";
        return std::nullopt;
    }
    f.user = *user;
    if (!printable_nonce((*attrs)[1].value)) {
        error = "bad nonce";
        return std::nullopt;
    }
    f.nonce = std::string((*attrs)[1].value);
    return f;
}

std::optional<ClientFinal> parse_client_final(std::string_view msg, std::string& error) {
    size_t p = msg.rfind(",p=");
    if (p == std::string_view::npos) {
        error = "client-final-message has no proof";
        return std::nullopt;
    }
    ClientFinal f;
    f.without_proof = std::string(msg.substr(0, p));
    auto attrs = attributes(f.without_proof);
    if (!attrs || attrs->size() < 2 || (*attrs)[0].key != 'c' || (*attrs)[1].key != 'r') {
        error = "client-final-message must start c=<binding>,r=<nonce>";
        return std::nullopt;
    }
    f.channel_binding = std::string((*attrs)[0].value);
    f.nonce = std::string((*attrs)[1].value);
    auto proof = base64_decode(msg.substr(p + 3));
    if (!proof) {
        error = "bad proof";
        return std::nullopt;
    }
    f.proof = *proof;
    return f;
}

std::optional<std::string> ScramServer::client_first(std::string_view msg, std::string& error) {
    if (!server_first_.empty()) {
        error = "client-first-message sent twice";
        return std::nullopt;
    }
    auto f = parse_client_first(msg, error);
    if (!f) return std::nullopt;
    first_ = std::move(*f);
    auto creds = store_.scram(first_.user, hash_);
    known_ = creds.has_value();
    creds_ = known_ ? std::move(*creds) : decoy(hash_, first_.user);
    nonce_ = first_.nonce + nonce();
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(creds_.salt) +
                    ",i=" + std::to_string(creds_.iterations);
    return server_first_;
}

std::optional<std::string> ScramServer::client_final(std::string_view msg, std::string& error) {
    if (server_first_.empty() || done_) {
        error = "client-final-message out of order";
        return std::nullopt;
    }
    done_ = true;
    auto f = parse_client_final(msg, error);
    if (!f) return std::nullopt;
    if (f->channel_binding != base64_encode(first_.gs2_header)) {
        error = "channel binding does not match the GS2 header";
        return std::nullopt;
    }
    if (f->nonce != nonce_) {
        error = "nonce does not match";
        return std::nullopt;
    }
    if (f->proof.size() != digest_size(hash_) || !known_) {
        error = "authentication failed";
        return std::nullopt;
    }
    std::string auth = first_.bare + "," + server_first_ + "," + f->without_proof;
    std::string client_key = xor_bytes(f->proof, hmac(hash_, creds_.stored_key, auth));
    if (!equal_in_constant_time(digest(hash_, client_key), creds_.stored_key)) {
        error = "authentication failed";
        return std::nullopt;
    }
    return "v=" + base64_encode(hmac(hash_, creds_.server_key, auth));
}

std::string ScramClient::first() {
    nonce_ = nonce();
    bare_ = "n=" + escape(user_) + ",r=" + nonce_;
    return "n,," + bare_;
}

std::optional<std::string> ScramClient::server_first(std::string_view msg, std::string& error) {
    auto attrs = attributes(msg);
    if (!attrs || attrs->size() < 3 || (*attrs)[0].key != 'r' || (*attrs)[1].key != 's' ||
        (*attrs)[2].key != 'i') {
        error = "server-first-message must be r=,s=,i=";
        return std::nullopt;
    }
    std::string_view r = (*attrs)[0].value;
    if (!r.starts_with(nonce_) || r.size() == nonce_.size() || !printable_nonce(r)) {
        error = "the server's nonce does not extend ours";
        return std::nullopt;
    }
    auto salt = base64_decode((*attrs)[1].value);
    uint32_t iterations = 0;
    for (char c : (*attrs)[2].value) {
        if (c < '0' || c > '9' || iterations > 10000000) {
            iterations = 0;
            break;
        }
        iterations = iterations * 10 + static_cast<uint32_t>(c - '0');
    }
    // A bound on iterations: a hostile server must not make us spin.
    if (!salt || salt->empty() || iterations == 0 || iterations > 1000000) {
        error = "bad salt or iteration count";
        return std::nullopt;
    }
    salted_ = pbkdf2(hash_, password_, *salt, iterations, digest_size(hash_));
    std::string without_proof = "c=biws,r=" + std::string(r);  // biws = base64("n,,")
    auth_message_ = bare_ + "," + std::string(msg) + "," + without_proof;
    std::string client_key = hmac(hash_, salted_, "Client Key");
    std::string signature = hmac(hash_, digest(hash_, client_key), auth_message_);
    return without_proof + ",p=" + base64_encode(xor_bytes(client_key, signature));
}

bool ScramClient::server_final(std::string_view msg, std::string& error) {
    if (auth_message_.empty()) {
        error = "server-final-message out of order";
        return false;
    }
    if (msg.starts_with("e=")) {
        error = "server error: " + std::string(msg.substr(2, 64));
        return false;
    }
    std::string_view v = msg.substr(0, msg.find(','));
    auto sig = v.starts_with("v=") ? base64_decode(v.substr(2)) : std::nullopt;
    std::string expected = hmac(hash_, hmac(hash_, salted_, "Server Key"), auth_message_);
    if (!sig || !equal_in_constant_time(*sig, expected)) {
        error = "the server's signature is wrong";
        return false;
    }
    return true;
}

}  // namespace trestle::security
