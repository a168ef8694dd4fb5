// The MQTT 3.1.1/5.0 server: network connections (TCP or WebSocket), the protocol state
// machine of each, and the sessions that outlive connections. Sessions are consumers of the
// routing core (one subscription link each); each connection publishes through its own link.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <bitset>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mqtt/codec.hpp"
#include "net/event_loop.hpp"
#include "trestle/core/router.hpp"
#include "trestle/core/stores.hpp"

namespace trestle::mqtt {

struct ListenerSettings {
    std::string name;
    bool allow_v311 = true;
    bool allow_v5 = true;
    uint32_t max_packet_size = 1 << 20;
    uint32_t max_connections = 0;              // 0 = no limit
    uint16_t max_keep_alive = 0;               // 0 = whatever the client asks
    uint16_t receive_maximum = 1000;           // QoS 1/2 publishes a client may have unacknowledged
    uint16_t topic_alias_maximum = 100;        // aliases a client may define
    uint32_t max_session_queue = 1000;         // messages queued per session
    uint32_t max_session_expiry = 0xFFFFFFFF;  // cap; also the expiry of 3.1.1 persistent sessions
    size_t max_buffered_bytes = 1 << 20;       // output a connection may have unsent
    uint32_t connect_timeout_ms = 10000;
    std::string websocket_path;  // "" = no MQTT over WebSocket on this listener
};

class Connection;
class SessionManager;

// Bytes in and out of one network connection (TCP or WebSocket), pushed to a handler.
class Transport {
  public:
    class Handler {
      public:
        virtual void on_data(std::string_view data) = 0;  // valid during the call
        virtual void on_writable() = 0;                   // all written bytes have gone out
        virtual void on_closed(bool error) = 0;           // the peer closed, or the socket failed
      protected:
        ~Handler() = default;
    };
    virtual ~Transport() = default;
    virtual void start(Handler& h) = 0;
    virtual void set_reading(bool on) = 0;  // off = backpressure: the peer's TCP window fills
    // Sends what the socket takes now and keeps the rest; on_writable() when it has all gone.
    virtual void write(std::string_view data) = 0;
    virtual size_t buffered() const = 0;  // accepted by write() but not yet sent
    virtual void close() = 0;
    virtual std::string remote() const = 0;
    virtual bool websocket() const { return false; }
};

// Plain TCP on the loop's shared epoll set (takes ownership of the socket).
std::unique_ptr<Transport> tcp_transport(net::Poller& poller, boost::asio::ip::tcp::socket s);

// Sniffs the first bytes of an accepted socket: an HTTP upgrade to `settings.websocket_path`
// becomes a WebSocket transport, anything else plain MQTT over TCP.
void accept_mqtt_or_websocket(net::Poller& poller, boost::asio::ip::tcp::socket s,
                              const ListenerSettings& settings,
                              std::function<void(std::unique_ptr<Transport>)> ready);

struct Outgoing {
    core::MessageRef message;  // MQTT form
    uint16_t packet_id = 0;
    uint8_t qos = 0;
    bool retain = false;
    bool released = false;  // QoS 2: PUBREL sent, waiting for PUBCOMP
    std::vector<uint32_t> subscription_ids;
};

// FIFO of messages: one pointer while empty (most sessions, most of the time, with ten
// thousands of them idle); the storage comes and goes with the messages.
class OutQueue {
  public:
    using iterator = Outgoing*;
    bool empty() const { return size() == 0; }
    size_t size() const { return q_ ? q_->v.size() - q_->head : 0; }
    Outgoing& front() { return q_->v[q_->head]; }
    iterator begin() { return q_ ? q_->v.data() + q_->head : nullptr; }
    iterator end() { return q_ ? q_->v.data() + q_->v.size() : nullptr; }
    const Outgoing* begin() const { return q_ ? q_->v.data() + q_->head : nullptr; }
    const Outgoing* end() const { return q_ ? q_->v.data() + q_->v.size() : nullptr; }
    void push_back(Outgoing o);
    void pop_front();
    iterator erase(iterator it);
    void trim() {  // frees the storage while empty (called periodically, not per message)
        if (q_ && empty()) q_.reset();
    }

  private:
    struct Storage {
        std::vector<Outgoing> v;
        size_t head = 0;
    };
    std::unique_ptr<Storage> q_;
};

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
    class PublishPort;

    // Transport::Handler
    void on_data(std::string_view data) override;
    void on_writable() override;
    void on_closed(bool error) override;
    void pause_if_no_credit();
    bool handle(std::string_view packet);
    bool on_connect(const Connect& c);
    bool on_publish(Publish& p);
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
    bool finished_ = false;
    bool close_after_write_ = false;
    bool will_on_close_ = false;
    bool connack_sent_ = false;
    bool disconnect_received_ = false;
    bool flush_queued_ = false;
};

// All sessions and connections of the router's MQTT listeners.
class SessionManager {
  public:
    SessionManager(core::Router& router, net::EventLoop& loop, core::SessionStore& sessions,
                   core::WillStore& wills);
    ~SessionManager();
    // Kafka: sessions and wills shared by all instances, and the logs sessions catch up from.
    // Before the listeners accept clients.
    // `positions_refresh_ms`: how often a connected session's stored positions catch up with
    // what it acknowledged (so that after a crash it is not sent again all it had since it
    // connected); the Kafka instance timeout, the same scale as noticing the crash.
    void use_state(core::SessionStore& sessions, core::WillStore& wills, core::MessageLogs* logs,
                   uint64_t positions_refresh_ms = 10'000);

    core::Router& router() { return router_; }
    net::EventLoop& loop() { return loop_; }
    uint64_t now() const { return router_.now_ms(); }

    void accept(const ListenerSettings& settings, std::unique_ptr<Transport> t);
    net::Poller& poller() { return poller_; }
    void shutdown();
    // Periodic work: keep alive, connect timeout, wills due, session expiry.
    void tick();

    // Sessions by client id (the key views the session's own id).
    const std::unordered_map<std::string_view, Session*>& sessions() const { return sessions_; }
    size_t connection_count() const { return connection_count_; }
    size_t connections_on(const std::string& listener) const;
    // Management DELETE: ends a session now (its connection, if any, is closed with
    // administrative action; a pending will goes as at any session end). False: no such session.
    bool end_session(const std::string& client_id);
    // Management: every open connection.
    void visit_connections(const std::function<void(Connection&)>& fn) { for_each_connection(fn); }

    // Counters (management, metrics).
    uint64_t dropped_qos0 = 0;        // QoS 0 not delivered: output buffer full or offline
    uint64_t dropped_queue_full = 0;  // QoS 1/2 not queued: session queue full
    uint64_t expired = 0;             // message expiry passed before delivery
    uint64_t oversized = 0;           // larger than the client's maximum packet size
    uint64_t total_queued = 0;        // messages queued or in flight, all sessions
    uint64_t max_total_queued = 100000;

  private:
    friend class Connection;
    friend class Session;
    Session* attach(Connection& c, const Connect& pkt, uint32_t expiry, bool& present);
    void save(const Session& s);
    // The session's record as it stands now (false: nothing to keep, non-persistent).
    bool record_of(const Session& s, core::SessionRecord& rec) const;
    void write_record(const Session& s, bool only_if_moved);
    uint64_t positions_refresh_ms_ = 10'000;
    void detached(Connection& c, bool publish_will);
    // `forget`: another instance serves the session now; its stored state stays.
    void destroy(Session* s, bool forget = false);
    void taken_elsewhere(const std::string& client_id);
    Session* resume(const std::string& id, const core::SessionRecord& rec);
    std::optional<core::WillRecord> will_record(Connection& c);
    void hold_will(Connection& c);
    void arm_will(Connection& c);
    void fire_will_now(const std::string& client_id);
    void schedule_tick();
    void flush_dirty();

    template <class Fn>
    void for_each_connection(Fn&& fn) {
        for (Connection* c = first_; c;) {
            Connection* next = c->next_;
            fn(*c);
            c = next;
        }
    }

    core::Router& router_;
    net::EventLoop& loop_;
    net::Poller poller_;
    core::SessionStore* store_;
    core::WillStore* wills_;
    core::MessageLogs* logs_ = nullptr;
    std::unordered_map<std::string_view, Session*> sessions_;
    Connection* first_ = nullptr;  // intrusive list: no map node per connection
    size_t connection_count_ = 0;
    core::Connection* core_ = nullptr;  // owns the sessions' subscription links
    class CorePort;
    std::unique_ptr<CorePort> core_port_;
    boost::asio::steady_timer ticker_;
    uint64_t next_owner_ = 1;
    uint64_t log_rate_ms_ = 0;
    std::vector<std::shared_ptr<Connection>> dirty_;  // output waiting for flush_dirty()
    PublishScratch publish_scratch_;  // every connection's incoming PUBLISH, decoded in turn
    std::vector<std::shared_ptr<Connection>> flushing_;
    bool flush_posted_ = false;
    bool stopping_ = false;
};

}  // namespace trestle::mqtt
