// /metrics in the Prometheus text format, from the router's read-only view.
#pragma once

#include <cstddef>
#include <string>

#include "app/view.hpp"

namespace trestle::app {

// At most `max_addresses` per-address series, the busiest first.
std::string metrics(const View& view, size_t max_addresses);

}  // namespace trestle::app
