// All sessions and connections of the router's MQTT listeners, and the periodic rules over
// them (keepalive.hpp, will_delay.hpp, session_expiry.hpp), as mosquitto's loop runs
// keepalive__check, session_expiry__check and will_delay__check.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mqtt/connection.hpp"
#include "mqtt/keepalive.hpp"
#include "mqtt/session.hpp"
#include "mqtt/session_expiry.hpp"
#include "mqtt/will_delay.hpp"
#include "net/event_loop.hpp"
#include "trestle/core/router.hpp"
#include "trestle/core/stores.hpp"

namespace trestle::mqtt {

// All sessions and connections of the router's MQTT listeners.
class SessionManager {
  public:
    // Wills go through the router's will rule (router.wills()).
    SessionManager(core::Router& router, net::EventLoop& loop, core::SessionStore& sessions);
    ~SessionManager();
    // Kafka: sessions and wills shared by all instances, and the logs sessions catch up from.
    // Before the listeners accept clients.
    // `positions_refresh_ms`: how often a connected session's stored positions catch up with
    // what it acknowledged (so that after a crash it is not sent again all it had since it
    // connected); the Kafka instance timeout, the same scale as noticing the crash.
    void use_state(core::SessionStore& sessions, core::MessageLogs* logs,
                   uint64_t positions_refresh_ms = 10'000);

    core::Router& router() { return router_; }
    net::EventLoop& loop() { return loop_; }
    uint64_t now() const { return router_.now_ms(); }

    void accept(const ListenerSettings& settings, std::unique_ptr<Transport> t);
    net::Poller& poller() { return poller_; }
    void shutdown();
    // Periodic work: wills due, session expiry, keep alive and connect timeout, and keeping
    // stored session positions fresh.
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
    void visit_connections(const std::function<void(const Connection&)>& fn) const {
        for (const Connection* c = first_; c; c = c->next_) fn(*c);
    }

    // Counters (management, metrics).
    uint64_t dropped_qos0 = 0;        // QoS 0 not delivered: output buffer full or offline
    uint64_t dropped_queue_full = 0;  // QoS 1/2 not queued: session queue full
    uint64_t expired = 0;             // message expiry passed before delivery
    uint64_t oversized = 0;           // larger than the client's maximum packet size
    uint64_t total_queued = 0;        // messages queued or in flight, all sessions
    uint64_t auth_failures = 0;       // CONNECTs refused: bad credentials or not authorized
    uint64_t max_total_queued = 100000;

  private:
    friend class Connection;
    friend class Session;
    friend class KeepAlive;
    friend class SessionExpiry;
    friend class WillDelay;
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
    KeepAlive keepalive_{*this};
    WillDelay will_delay_{*this};
    SessionExpiry session_expiry_{*this};
};

}  // namespace trestle::mqtt
