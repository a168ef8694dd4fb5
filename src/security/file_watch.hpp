// Files watched for changes by polling, at most once a second and only when they are about to
// be used (a connection arrives, a client logs in): no inotify, so it works on every file
// system, Kubernetes' secret volumes (a symlink swap) included.
#pragma once

#include <cstdint>
#include <string>

namespace trestle::security {

// What changes when a file is replaced or rewritten: its modification time and size (0 when
// it cannot be read).
uint64_t file_stamp(const std::string& path);

// True at most once per interval.
class Throttle {
  public:
    bool due();

  private:
    uint64_t last_ms_ = 0;
};

}  // namespace trestle::security
