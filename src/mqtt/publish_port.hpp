// The connection's publishing link into the core (connection.cpp, handle_publish.cpp).
#pragma once

#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

// The connection's publishing link into the core: credit decides whether we read the socket;
// outcomes become PUBACK / PUBREC.
class Connection::PublishPort final : public core::LinkPort {
  public:
    explicit PublishPort(Connection& c) : c_(c) {}
    void deliver(core::Delivery&) override {}
    void update(core::Delivery& d, const core::DeliveryState& s, bool settle) override {
        if (!settle || !d.handle) return;
        auto h = reinterpret_cast<uintptr_t>(d.handle);
        d.handle = nullptr;
        c_.acknowledge(static_cast<uint16_t>(h >> 2), static_cast<uint8_t>(h & 3), s);
    }
    void flow(uint32_t n, bool drain) override {
        credit = drain ? 0 : static_cast<int32_t>(n);
        if (credit > 0 && c_.paused_ && !c_.closed_) {
            c_.paused_ = false;
            c_.transport_->set_reading(true);
        }
    }
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override { link = nullptr; }

    core::Connection* core = nullptr;  // the connection's own, for its publishes
    core::Link* link = nullptr;
    int32_t credit = 0;  // the core's credit for our publishes

  private:
    Connection& c_;
};

}  // namespace trestle::mqtt
