// Fuzzes the JSON parser; what parses must survive dump -> parse -> dump unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    trestle::json::Value v;
    trestle::json::ParseError err;
    if (!trestle::json::parse(text, v, err)) return 0;
    std::string once = trestle::json::dump(v);
    trestle::json::Value again;
    if (!trestle::json::parse(once, again, err)) __builtin_trap();
    if (trestle::json::dump(again) != once) __builtin_trap();
    return 0;
}
