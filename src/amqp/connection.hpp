// AMQP 1.0 connections: Qpid Proton's C engine (pn_connection_driver) fed from an Asio socket,
// translating Proton events into core calls and core port calls into Proton calls.
#pragma once

#include <proton/connection_driver.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "amqp/sasl.hpp"
#include "net/event_loop.hpp"
#include "security/tls.hpp"
#include "trestle/core/router.hpp"

namespace trestle::amqp {

// Settings of one listener or connector (qdrouterd's attribute names in comments).
struct AmqpSettings {
    std::string name;                           // listener/connector name
    std::string container_id = "Trestle";       // our container id (router id)
    std::string role = "normal";                // role
    uint32_t max_frame_size = 16384;            // maxFrameSize
    uint32_t max_sessions = 32768;              // maxSessions
    uint32_t max_session_frames = 0;            // maxSessionFrames (0 = Proton's default window)
    uint32_t idle_timeout_ms = 16000;           // idleTimeoutSeconds * 1000
    uint32_t link_capacity = 250;               // linkCapacity
    uint32_t handshake_timeout_ms = 0;          // initialHandshakeTimeoutSeconds * 1000
    SaslConfig sasl;                            // saslMechanisms, authenticatePeer, ...
    std::shared_ptr<security::TlsProfile> tls;  // sslProfile
    bool require_tls = false;                   // requireSsl / requireEncryption
    bool verify_hostname = true;                // verifyHostname (connectors)
    std::string peer_host;                      // connectors: the name checked and sent (SNI)
    std::string virtual_host;                   // connector: hostname sent in open
    // Listener: every link is direct Kafka topic access in this dialect ("strimzi"): its
    // address goes to the Kafka adapter under the dialect's prefix ("$strimzi/").
    std::string policy_vhost;  // listeners: the policy vhost, whatever the open hostname
    std::string kafka_dialect;
    // Largest incoming message (0 = no limit): advertised on attach, enforced by detaching.
    uint64_t max_message_size = 0;
};

// The address prefix under which the Kafka adapter receives a dialect's links.
inline std::string dialect_prefix(std::string_view dialect) {
    return "$" + std::string(dialect) + "/";
}

class AmqpLink;

class AmqpConnection final : public net::Flushable,
                             public core::ConnectionPort,
                             public std::enable_shared_from_this<AmqpConnection> {
  public:
    enum class Side { server, client };
    // Called once when the connection is completely finished (socket closed).
    using FinishedFn = std::function<void(AmqpConnection&)>;

    AmqpConnection(net::EventLoop& loop, core::Router& router, boost::asio::ip::tcp::socket s,
                   AmqpSettings settings, Side side);
    ~AmqpConnection() override;

    void start(FinishedFn on_finished);
    // Graceful close (router shutdown): links detached, connection closed.
    void shutdown();
    // True once the peer's open arrived and the core knows the connection.
    bool opened() const { return core_ != nullptr; }
    // True if the peer's open ever arrived (stays true after close).
    bool was_opened() const { return was_opened_; }
    uint64_t id() const { return log_id_; }
    const std::string& remote() const { return remote_; }
    const AmqpSettings& settings() const { return settings_; }

    // net::Flushable
    void flush() override { pump(); }
    // core::ConnectionPort
    core::LinkPort* open_link(core::Link& link, const core::AttachRequest& req,
                              core::ErrorCondition& refusal) override;
    void close(const core::ErrorCondition& error) override;

  private:
    friend class AmqpLink;
    void wake();
    void pump();
    void handle(pn_event_t* e);
    void on_remote_open();
    void on_link_remote_open(pn_link_t* l);
    void on_link_remote_close(pn_link_t* l);
    void on_session_remote_close(pn_session_t* s);
    void on_delivery(pn_delivery_t* d);
    void on_incoming_transfer(AmqpLink& link, pn_delivery_t* d);
    void on_will_transfer(AmqpLink& link, pn_delivery_t* d);
    void end_will(AmqpLink& link, bool publish, const std::string& why);
    void on_transport_closed();
    void start_read();
    void start_write();
    void arm_timer();
    void finish();
    void detach_core_link(AmqpLink& link, const core::ErrorCondition* err);
    bool too_large(AmqpLink& link, size_t pending);

    net::EventLoop& loop_;
    core::Router& router_;
    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;
    AmqpSettings settings_;
    Side side_;
    pn_connection_driver_t driver_;
    pn_ssl_t* ssl_ = nullptr;  // Proton's TLS layer, when the listener/connector has a profile
    std::unique_ptr<SaslSession> sasl_;
    core::Connection* core_ = nullptr;
    // Admitted by the policy (null: no policy, or an outgoing connection): asked about every
    // session, attach and anonymous message.
    std::unique_ptr<core::PolicyTicket> policy_;
    std::unordered_set<pn_session_t*> policy_sessions_;  // counted against maxSessions
    bool policy_refused_ = false;
    bool policy_size_limit_ = false;  // maxMessageSize comes from the policy
    std::string policy_last_target_;  // an anonymous sender's last allowed address
    // Denied by the policy: refuses the attach and returns false (true: may go on).
    bool policy_allows(AmqpLink& al, const core::AttachRequest& req);
    void policy_forget(AmqpLink& al);
    void refuse_transfer(pn_delivery_t* pd, core::ErrorCondition why);
    std::unordered_set<AmqpLink*> links_;
    pn_session_t* routed_session_ = nullptr;  // session for links the core opens (link routing)
    FinishedFn on_finished_;
    std::string remote_;
    uint64_t log_id_;
    uint64_t started_ms_ = 0;
    uint64_t timer_deadline_ = 0;
    uint64_t bytes_read_ = 0;
    bool reading_ = false;
    bool writing_ = false;
    bool read_closed_ = false;
    bool in_pump_ = false;
    bool finished_ = false;
    bool transport_error_ = false;  // PN_TRANSPORT_ERROR seen
    bool close_logged_ = false;
    bool remote_closed_ = false;       // the peer sent close
    bool shutting_down_ = false;       // the router is stopping
    bool remote_close_error_ = false;  // ... with an error condition
    bool was_opened_ = false;
};

// Outgoing AMQP connection with reconnect and exponential backoff (qdrouterd's connector).
class AmqpConnector : public std::enable_shared_from_this<AmqpConnector> {
  public:
    AmqpConnector(net::EventLoop& loop, core::Router& router, AmqpSettings settings,
                  std::string host, uint16_t port, uint32_t max_delay_ms);
    void start();
    void stop();
    // CONNECTING, SUCCESS or FAILED (qdrouterd's connectionStatus) and the last message.
    const std::string& status() const { return status_; }
    const std::string& message() const { return message_; }
    const std::string& name() const { return settings_.name; }

  private:
    void connect();
    void retry_later(const std::string& why);

    net::EventLoop& loop_;
    core::Router& router_;
    AmqpSettings settings_;
    std::string host_;
    uint16_t port_;
    uint32_t max_delay_ms_;
    uint32_t delay_ms_ = 100;
    boost::asio::steady_timer timer_;
    boost::asio::ip::tcp::resolver resolver_;
    std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
    std::weak_ptr<AmqpConnection> conn_;
    std::string status_ = "CONNECTING";
    std::string message_;
    bool stopped_ = false;
};

}  // namespace trestle::amqp
