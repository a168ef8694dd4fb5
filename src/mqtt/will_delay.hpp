// MQTT's side of the will rule (trestle/core/wills.hpp, shared with AMQP `$lwt`): the will of a
// CONNECT as a record, held while the client is connected, armed with its Will Delay Interval
// (MQTT §3.1.3.2) on an abnormal end, published when the delay or the session ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "trestle/core/stores.hpp"

namespace trestle::mqtt {

class Connection;
class SessionManager;

class WillDelay {
  public:
    explicit WillDelay(SessionManager& m) : m_(m) {}
    // The client is connected with a will.
    void hold(Connection& c);
    // The connection ended abnormally: published after its delay (at once without one).
    void arm(Connection& c);
    // The connection ended normally: no will.
    void cancel(const std::string& client_id);
    // The session ended: a will waiting for its delay goes now.
    void fire_now(const std::string& client_id);
    // A takeover ends the old connection: its will goes at once, unarmed.
    void publish_now(Connection& c);
    // A reconnect before the delay passed: the will is dropped, or published when the session
    // ends (`session_ends`: a clean start, or no session to continue).
    void reconnected(const std::string& client_id, bool session_ends);
    // Wills whose delay has passed.
    void check(uint64_t now_ms);

  private:
    std::optional<core::WillRecord> record_of(Connection& c);
    SessionManager& m_;
};

}  // namespace trestle::mqtt
