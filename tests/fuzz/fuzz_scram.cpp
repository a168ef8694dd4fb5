// Fuzzes SCRAM's message parsers and both halves of the exchange: the server (AMQP listeners)
// fed client messages, the client (connectors) fed server messages. Nothing may crash, and a
// server must never accept a proof for a password the store does not hold.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "security/password_file.hpp"
#include "security/scram.hpp"

using namespace trestle;
using namespace trestle::security;

namespace {

UserTable one_user() {
    std::string error;
    return UserTable(*parse_password_file(scram_line("user", "pencil", 64), error));
}

// The iteration count a server-first message asks for (0 if none): the client honours up to a
// million, too slow to fuzz.
uint64_t iterations(std::string_view m) {
    size_t p = m.find("i=");
    uint64_t v = 0;
    if (p == std::string_view::npos) return 0;
    for (p += 2; p < m.size() && m[p] >= '0' && m[p] <= '9' && v < 1000000000; ++p)
        v = v * 10 + static_cast<uint64_t>(m[p] - '0');
    return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static UserTable store = one_user();
    Hash h = (data[0] & 1) ? Hash::sha512 : Hash::sha256;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    size_t cut = in.find('\0');
    std::string_view first = in.substr(0, cut);
    std::string_view second =
        cut == std::string_view::npos ? std::string_view{} : in.substr(cut + 1);
    std::string error;
    switch ((data[0] >> 1) % 3) {
        case 0: {
            (void)parse_client_first(in, error);
            (void)parse_client_final(in, error);
            break;
        }
        case 1: {
            // The server: a client-first, then a client-final. Without the password nobody
            // can produce the proof, so a fuzzed exchange must never succeed.
            ScramServer server(h, store);
            if (!server.client_first(first, error)) break;
            if (server.client_final(second, error)) __builtin_trap();
            break;
        }
        case 2: {
            if (iterations(first) > 4096) break;
            ScramClient client(h, "user", "pencil");
            (void)client.first();
            if (!client.server_first(first, error)) break;
            // A server that never saw the keys cannot prove itself.
            if (client.server_final(second, error)) __builtin_trap();
            break;
        }
    }
    return 0;
}
