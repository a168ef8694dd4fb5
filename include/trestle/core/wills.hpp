// The one will rule, for MQTT wills and AMQP `$lwt` links alike: a will is held while its client
// is connected, armed when the client goes away abnormally, published once its delay has passed,
// and cancelled when the client ends normally or comes back in time. (docs/architecture.md,
// "Where the session and will rules live".)
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "trestle/core/stores.hpp"

namespace trestle::core {

class Router;

class Wills {
  public:
    Wills(Router& router, WillStore& local) : router_(router), local_(local), store_(&local) {}

    // Where wills are kept: a store shared by all instances (Kafka); nullptr: back to the local
    // one (the router's memory).
    void use_store(WillStore* store) { store_ = store ? store : &local_; }
    WillStore& store() const { return *store_; }

    // The client is connected with this will: a shared store keeps it, so that another instance
    // publishes it if this one dies.
    void hold(const WillRecord& w) { store_->hold(w); }
    // The client went away abnormally: the will is published once `w.due_ms` (relative: the will
    // delay) has passed, at once when it is 0. A will without a client id cannot be cancelled
    // and goes at once. True: published now.
    bool arm(WillRecord w);
    // The client ended normally: no will, anywhere.
    void cancel(std::string_view client_id) { store_->cancel(client_id); }
    // The client is back before the delay passed: its will is not published — unless its session
    // ends now (a clean start), when it goes at once. Returns the will published, if any.
    std::optional<WillRecord> reconnected(std::string_view client_id, bool session_ends);
    // The client's session ended (expired, deleted): an armed will goes now.
    std::optional<WillRecord> fire_now(std::string_view client_id);
    // Publishes a will that never was armed (a takeover ends the old connection's at once).
    void publish_now(const WillRecord& w);
    // The wills whose delay has passed are published and returned (the loop's periodic check).
    std::vector<WillRecord> check(uint64_t now_ms);

  private:
    Router& router_;
    WillStore& local_;
    WillStore* store_;
};

}  // namespace trestle::core
