// Secrets in configuration (passwords, key passphrases), in qdrouterd's forms:
//   env:NAME    the environment variable NAME
//   file:PATH   the first line of the file at PATH
//   pass:TEXT   TEXT itself (so a password may start with "env:")
//   TEXT        TEXT itself
// Resolved values are never logged, and management reads show "***" instead.
#pragma once

#include <string>

namespace trestle::security {

// Throws std::runtime_error naming the variable or file (never the value) when it is missing.
std::string resolve_secret(const std::string& value);

inline constexpr const char* masked = "***";

}  // namespace trestle::security
