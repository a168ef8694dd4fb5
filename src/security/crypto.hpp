// The few cryptographic primitives authentication needs, on OpenSSL: random bytes, base64,
// HMAC, digests, PBKDF2 and a comparison that takes the same time whatever matches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "trestle/core/users.hpp"

namespace trestle::security {

using Hash = core::Hash;

size_t digest_size(Hash h);
std::string random_bytes(size_t n);
std::string base64_encode(std::string_view data);
// nullopt when `text` is not canonical base64 (padding included).
std::optional<std::string> base64_decode(std::string_view text);
std::string hmac(Hash h, std::string_view key, std::string_view data);
std::string digest(Hash h, std::string_view data);
std::string pbkdf2(Hash h, std::string_view password, std::string_view salt, uint32_t iterations,
                   size_t length);
bool equal_in_constant_time(std::string_view a, std::string_view b);

}  // namespace trestle::security
