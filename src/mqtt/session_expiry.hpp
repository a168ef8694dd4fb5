// Session expiry (MQTT §3.1.2.11): a disconnected session ends once its expiry interval has
// passed, and its will, if still waiting for its delay, is published then.
#pragma once

#include <cstdint>

namespace trestle::mqtt {

class SessionManager;

class SessionExpiry {
  public:
    explicit SessionExpiry(SessionManager& m) : m_(m) {}
    void check(uint64_t now_ms);

  private:
    SessionManager& m_;
};

}  // namespace trestle::mqtt
