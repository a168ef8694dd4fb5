// Keep alive (MQTT §3.1.2.10): a client silent for one and a half times its keep alive is
// disconnected, its will published; a connection that sends no CONNECT within the listener's
// connect timeout is closed.
#pragma once

#include <cstdint>

namespace trestle::mqtt {

class SessionManager;

class KeepAlive {
  public:
    explicit KeepAlive(SessionManager& m) : m_(m) {}
    void check(uint64_t now_ms);

  private:
    SessionManager& m_;
};

}  // namespace trestle::mqtt
