// What the process itself uses, for management and /metrics.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <fstream>

namespace trestle::app {

// Resident set size in bytes (0 if /proc is not there).
inline int64_t resident_bytes() {
    std::ifstream f("/proc/self/statm");
    int64_t pages = 0, resident = 0;
    if (!(f >> pages >> resident)) return 0;
    return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace trestle::app
