// Fuzzes the config loader: any bytes give entities or a ConfigError, never a crash.
// The first byte picks the syntax (qdrouterd sections or JSON).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "management/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    bool json = data[0] & 1;
    std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        auto entities = trestle::management::parse_config(text, "fuzz.conf", json);
        for (const auto& e : entities)
            if (!e.type || e.line < 1) __builtin_trap();  // every entity knows where it came from
    } catch (const trestle::management::ConfigError& e) {
        if (e.file() != "fuzz.conf") __builtin_trap();
    }
    return 0;
}
