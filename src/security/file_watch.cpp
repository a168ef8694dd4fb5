#include "security/file_watch.hpp"

#include <sys/stat.h>

#include <chrono>

namespace trestle::security {

uint64_t file_stamp(const std::string& path) {
    struct stat st {};
    if (path.empty() || stat(path.c_str(), &st) != 0) return 0;
    // Unsigned: the sum may wrap, which is fine for a stamp.
    return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000u +
           static_cast<uint64_t>(st.st_mtim.tv_nsec) + static_cast<uint64_t>(st.st_size);
}

bool Throttle::due() {
    auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count());
    if (last_ms_ && now - last_ms_ < 1000) return false;
    last_ms_ = now;
    return true;
}

}  // namespace trestle::security
