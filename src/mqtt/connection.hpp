// One MQTT network connection: its protocol state, reading and dispatching packets to the
// handle_* acts, and writing what its session sends.
#pragma once

#include "trestle/core/policy.hpp"

#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mqtt/codec.hpp"
#include "mqtt/listener.hpp"
#include "mqtt/session.hpp"
#include "trestle/core/router.hpp"

namespace trestle::mqtt {

// One MQTT network connection.
class Connection final : public core::ConnectionPort, private Transport::Handler {
  public:
    Connection(SessionManager& mgr, const ListenerSettings& settings, std::unique_ptr<Transport> t);
    ~Connection() override;
    void start();
    // Ends the connection; with a reason (MQTT 5 only) a DISCONNECT is sent first.
    void close_with(uint8_t reason, const std::string& why, bool publish_will);
    bool closed() const { return closed_; }
    uint8_t level() const { return level_; }
    size_t buffered() const { return out_.size() + transport_->buffered(); }
    uint64_t last_packet_ms() const { return last_packet_ms_; }
    uint16_t keep_alive() const { return keep_alive_; }
    bool connected() const { return session_ != nullptr; }
    const ListenerSettings& settings() const { return settings_; }
    std::string remote() const { return transport_->remote(); }
    bool websocket() const { return transport_->websocket(); }
    uint32_t id() const { return log_id_; }
    Session* session() const { return session_; }
    uint64_t core_connection_id() const;  // 0: not registered with the core (never published)

    // core::ConnectionPort
    core::LinkPort* open_link(core::Link&, const core::AttachRequest&,
                              core::ErrorCondition&) override {
        return nullptr;
    }
    void close(const core::ErrorCondition& e) override {
        close_with(reason::administrative_action, e.description, true);
    }

    // Writing, for the session.
    // False when not written: expired, or larger than the client accepts.
    bool write_publish(const Session::Outgoing& o, bool dup);
    void write_ack(PacketType type, uint16_t id, uint8_t code);
    // Hands what was written to the transport once the current event has been handled, so that
    // a read of many PUBLISHes leaves as one send per destination, not one per message.
    void flush();

  private:
    void write_now();
    void flush_then_finish(bool publish_will);
    friend class Session;
    friend class SessionManager;
    friend class KeepAlive;
    friend class WillDelay;
    class PublishPort;

    // Transport::Handler
    void on_data(std::string_view data) override;
    void on_writable() override;
    void on_closed(bool error) override;
    void pause_if_no_credit();
    bool handle(std::string_view packet);
    bool on_connect(const Connect& c);
    // Who the client is; false (and a reason) when it may not connect.
    bool authenticate(const Connect& c, uint8_t& v5code, uint8_t& v3code, std::string& why);
    bool on_publish(Publish& p);
    bool on_pubrel(uint16_t packet_id);
    bool on_subscribe(const Subscribe& s);
    bool on_unsubscribe(const Unsubscribe& u);
    void ensure_publish_link();  // the core connection and link exist from the first PUBLISH on
    void acknowledge(uint16_t id, uint8_t qos, const core::DeliveryState& s);
    bool protocol_error(uint8_t reason, const std::string& why);
    void finish(bool publish_will);
    void send_retained(const core::StoredSubscription& s, const std::string& filter);

    SessionManager& mgr_;
    const ListenerSettings& settings_;
    std::unique_ptr<Transport> transport_;
    std::unique_ptr<PublishPort> publish_port_;  // from the first PUBLISH on
    std::shared_ptr<Connection> self_;           // alive until finished (released after the turn)
    Connection* prev_ = nullptr;                 // SessionManager's list of connections
    Connection* next_ = nullptr;
    std::string inbuf_;  // an incomplete packet carried over between reads
    std::string out_;    // packets built during this turn, handed to the transport in flush()
    Session* session_ = nullptr;
    uint8_t level_ = v311;
    uint16_t keep_alive_ = 0;
    uint16_t client_receive_max_ = 65535;
    uint32_t client_max_packet_ = 0;  // 0 = no limit
    uint16_t client_alias_max_ = 0;
    std::unique_ptr<std::vector<std::string>> in_aliases_;  // client -> server aliases, if used
    std::unique_ptr<std::unordered_map<std::string, uint16_t>> out_aliases_;  // if used
    std::unique_ptr<Will> will_;   // most clients have none: not inline
    uint64_t last_packet_ms_ = 0;  // before CONNECT: when the connection started
    uint32_t log_id_;
    uint32_t unacked_in_ = 0;   // QoS 1/2 publishes not yet acknowledged (receive maximum)
    bool problem_info_ = true;  // may send reason strings / user properties
    bool paused_ = false;       // not reading: no credit
    bool closed_ = false;
    std::string user_;            // who CONNECT (or the client certificate) said it is
    bool authenticated_ = false;  // ... and the user store or the certificate agreed
    std::unique_ptr<boost::asio::steady_timer> auth_delay_;  // a refused login's CONNACK
    // Admitted by the policy (null: no policy configured): asked about every topic.
    std::unique_ptr<core::PolicyTicket> policy_;
    std::string policy_last_topic_;  // publishers repeat topics: the last one allowed
    bool publish_denied(const Publish& p);
    bool finished_ = false;
    bool close_after_write_ = false;
    bool will_on_close_ = false;
    bool connack_sent_ = false;
    bool disconnect_received_ = false;
    bool flush_queued_ = false;
};

}  // namespace trestle::mqtt
