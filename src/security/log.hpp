#pragma once

#include "util/log.hpp"

namespace trestle::security {
inline spdlog::logger& logger() {
    return logs::get(logs::Module::SECURITY);
}
}  // namespace trestle::security
