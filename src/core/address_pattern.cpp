#include "trestle/core/address_pattern.hpp"

namespace trestle::core {

std::vector<std::string_view> address_tokens(std::string_view address) {
    std::vector<std::string_view> toks;
    size_t start = 0;
    for (size_t i = 0; i <= address.size(); ++i) {
        if (i == address.size() || address[i] == '.' || address[i] == '/') {
            toks.push_back(address.substr(start, i - start));
            start = i + 1;
        }
    }
    return toks;
}

std::span<const std::string_view> address_tokens(std::string_view address,
                                                 std::span<std::string_view> buf) {
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= address.size(); ++i) {
        if (i == address.size() || address[i] == '.' || address[i] == '/') {
            if (n == buf.size()) return {};
            buf[n++] = address.substr(start, i - start);
            start = i + 1;
        }
    }
    return buf.first(n);
}

static std::string_view strip_trailing_separators(std::string_view s) {
    while (!s.empty() && (s.back() == '.' || s.back() == '/')) s.remove_suffix(1);
    return s;
}

std::string canonical_pattern(std::string_view pattern) {
    std::string out(strip_trailing_separators(pattern));
    for (char& c : out)
        if (c == '.') c = '/';
    return out;
}

std::string prefix_to_pattern(std::string_view prefix) {
    auto p = strip_trailing_separators(prefix);
    if (p.empty()) return "#";
    return canonical_pattern(p) + "/#";
}

}  // namespace trestle::core
