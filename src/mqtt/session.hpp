// A persistent MQTT session: a consumer of the routing core (one subscription link), alive
// across connections until it expires.
#pragma once

#include <bitset>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mqtt/codec.hpp"
#include "mqtt/outgoing.hpp"
#include "trestle/core/router.hpp"
#include "trestle/core/stores.hpp"

namespace trestle::mqtt {

class Connection;
class SessionManager;

// The largest v5 interval: "never expires".
constexpr uint32_t never = 0xFFFFFFFF;

// A persistent MQTT session: its subscriptions, what it still has to deliver, its QoS 2 state.
class Session final : public core::LinkPort {
  public:
    using Outgoing = mqtt::Outgoing;

    Session(SessionManager& m, std::string client_id, uint64_t owner);
    ~Session() override;

    const std::string& client_id() const { return client_id_; }
    Connection* connection() const { return conn_; }
    core::Link* link() const { return link_; }
    const std::map<std::string, core::StoredSubscription>& subscriptions() const { return subs_; }
    size_t queued() const { return pending_.size(); }
    size_t inflight() const { return inflight_.size(); }
    uint64_t dropped() const { return dropped_; }
    uint32_t expiry_interval() const { return expiry_interval_; }
    uint8_t level() const { return level_; }

    // core::LinkPort (the session's subscription link)
    void deliver(core::Delivery& d) override;
    void update(core::Delivery&, const core::DeliveryState&, bool) override {}
    void flow(uint32_t, bool) override {}
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override { link_ = nullptr; }

  private:
    friend class Connection;
    friend class SessionManager;
    friend class SessionExpiry;
    // `live` false: caught up from the logs (goes ahead of live messages held meanwhile).
    void enqueue(Outgoing o, bool live = true);
    // The message as this session takes it (QoS, retain, subscription ids), or false when none
    // of its subscriptions match.
    bool prepare(core::Message* m, std::string_view address, bool presettled, Outgoing& o,
                 std::string* error);
    // A message caught up from a durable log (a resumed session): queued ahead of live ones.
    void replayed(core::MessageRef m, std::string_view address);
    void replay_done();
    // Per log partition, the first message not yet acknowledged by the client.
    void unacked_positions(std::map<std::pair<uint32_t, int32_t>, int64_t>& out) const;
    void ensure_link();   // the core link exists from the first subscription on
    void send_pending();  // as far as receive maximum and the output buffer allow
    void resend_inflight();
    bool ack(uint16_t packet_id, PacketType type, uint8_t code);
    uint16_t next_packet_id();
    bool drop_for(OutQueue& q, const Outgoing& incoming);
    // Where a message waits: while catching up from the logs, live ones wait (held) behind
    // the caught-up ones.
    OutQueue& queue_for(bool live);
    // The session's bound (as mosquitto's max_queued_messages) or the router's total reached.
    bool at_limit(const OutQueue& q) const;
    // Whether `o` would be dropped for a full queue (no QoS 0 message to make room).
    bool full_for(const Outgoing& o);
    // Takes deliveries again after one was deferred (see deliver()).
    void unblock();

    SessionManager& mgr_;
    std::string client_id_;
    uint64_t owner_;
    Connection* conn_ = nullptr;
    core::Link* link_ = nullptr;
    uint64_t expires_at_ms_ = 0;  // while disconnected
    // Stored positions of a connected session, refreshed periodically (SessionManager::tick).
    mutable uint64_t positions_saved_ms_ = 0;
    mutable int64_t positions_sum_ = -1;  // of the offsets last stored: unchanged, nothing to write
    std::map<std::string, core::StoredSubscription> subs_;
    OutQueue pending_;
    OutQueue held_;                               // live messages while catching up from the logs
    OutQueue inflight_;                           // sent QoS 1/2, in order
    uint64_t replay_ = 0;                         // catching up from the logs (the replay's id)
    std::vector<core::LogPosition> replay_from_;  // where the catch-up started
    std::vector<uint16_t> incoming_qos2_;         // PUBREC sent, waiting for PUBREL
    uint64_t dropped_ = 0;
    bool blocked_ = false;  // a delivery was deferred: the core holds the rest for now
    uint32_t expiry_interval_ = 0;
    uint32_t max_queue_ = 1000;
    uint16_t last_packet_id_ = 0;
    // Packet ids that may be in flight (a superset: a mark left by a message dropped without
    // an ack only makes its id skipped), kept while many are in flight: a scan of the
    // in-flight queue per message cost O(window) per message.
    std::unique_ptr<std::bitset<65536>> used_ids_;
    void mark_free(uint16_t id) {
        if (used_ids_) used_ids_->reset(id);
    }
    uint8_t level_ = v311;
};

}  // namespace trestle::mqtt
