// The MQTT module's logger (its level is set through the management `log` entity). Included
// by the MQTT implementation files only.
#pragma once

#include <spdlog/spdlog.h>

#include "util/log.hpp"

namespace trestle::mqtt {

inline spdlog::logger& logger() {
    return logs::get(logs::Module::MQTT);
}

}  // namespace trestle::mqtt
