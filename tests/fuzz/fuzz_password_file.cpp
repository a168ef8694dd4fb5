// Fuzzes the password file parser (trestle's $scram$ lines and mosquitto's $7$ and $6$): no
// crash, errors name a line, and every user parsed can be checked against a password.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "security/password_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string error;
    auto users = trestle::security::parse_password_file(text, error);
    if (!users) {
        if (error.rfind("line ", 0) != 0) __builtin_trap();
        return 0;
    }
    for (const auto& [name, entry] : *users) {
        if (name.empty()) __builtin_trap();
        // Keeps a fuzzed iteration count from taking all the time.
        if (entry.iterations > 4096) continue;
        (void)trestle::security::verify_entry(entry, "password");
    }
    return 0;
}
