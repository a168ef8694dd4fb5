// An AMQP connection: Proton's connection driver on an Asio socket, its life cycle, and
// the dispatch of Proton's events to links.cpp and transfers.cpp.
#include "amqp/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "amqp/link.hpp"

namespace trestle::amqp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
uint64_t next_log_id = 1;
}  // namespace

AmqpConnection::AmqpConnection(net::EventLoop& loop, core::Router& router, tcp::socket s,
                               AmqpSettings settings, Side side)
    : loop_(loop),
      router_(router),
      socket_(std::move(s)),
      timer_(loop.io()),
      settings_(std::move(settings)),
      side_(side),
      log_id_(next_log_id++) {
    remote_ = net::remote_endpoint(socket_);
    pn_transport_t* t = pn_transport();
    if (side_ == Side::server) pn_transport_set_server(t);
    pn_transport_set_max_frame(t, settings_.max_frame_size);
    pn_transport_set_channel_max(t, static_cast<uint16_t>(settings_.max_sessions - 1));
    if (settings_.idle_timeout_ms) pn_transport_set_idle_timeout(t, settings_.idle_timeout_ms);
    bool server = side_ == Side::server;
    if (auto& tls = settings_.tls) {
        tls->refresh();
        // EXTERNAL needs the client's certificate: listeners offering it ask for one (as
        // qdrouterd does); others do not.
        pn_ssl_domain_t* domain =
            server
                ? tls->amqp_server(settings_.sasl.mechanisms.find("EXTERNAL") != std::string::npos,
                                   !settings_.require_tls)
                : tls->amqp_client(settings_.verify_hostname);
        ssl_ = pn_ssl(t);
        pn_ssl_init(ssl_, domain, nullptr);
        if (!server && !settings_.peer_host.empty())
            pn_ssl_set_peer_hostname(ssl_, settings_.peer_host.c_str());
    }
    pn_sasl_t* sasl = pn_sasl(t);
    pn_sasl_allowed_mechs(sasl, settings_.sasl.mechanisms.c_str());
    pn_sasl_set_allow_insecure_mechs(sasl, settings_.sasl.allow_insecure);
    sasl_ = std::make_unique<SaslSession>(settings_.sasl, t, ssl_, server,
                                          "[C" + std::to_string(log_id_) + "] " + remote_);
    install_sasl(t, sasl_.get());
    // Without authenticatePeer, clients without a SASL layer (a bare AMQP header, as qdstat
    // sends) are accepted.
    if (server) pn_transport_require_auth(t, settings_.sasl.authenticate_peer);
    pn_connection_t* c = pn_connection();
    pn_connection_driver_init(&driver_, c, t);
    pn_connection_set_container(c, settings_.container_id.c_str());
    if (!settings_.virtual_host.empty())
        pn_connection_set_hostname(c, settings_.virtual_host.c_str());
    pn_data_t* props = pn_connection_properties(c);
    pn_data_put_map(props);
    pn_data_enter(props);
    pn_data_put_symbol(props, bytes_of("product"));
    pn_data_put_string(props, bytes_of(trestle::product));
    pn_data_put_symbol(props, bytes_of("version"));
    pn_data_put_string(props, bytes_of(trestle::version));
    pn_data_exit(props);
    pn_data_t* caps = pn_connection_offered_capabilities(c);
    pn_data_put_array(caps, false, PN_SYMBOL);
    pn_data_enter(caps);
    pn_data_put_symbol(caps, bytes_of("ANONYMOUS-RELAY"));
    pn_data_exit(caps);
}

AmqpConnection::~AmqpConnection() {
    for (AmqpLink* l : links_) delete l;
    pn_connection_driver_destroy(&driver_);
}

void AmqpConnection::start(FinishedFn on_finished) {
    on_finished_ = std::move(on_finished);
    started_ms_ = net::monotonic_ms();
    if (side_ == Side::client) pn_connection_open(driver_.connection);
    logger().debug("[C{}] {} connection {} {}", log_id_,
                   side_ == Side::server ? "accepted" : "opened",
                   side_ == Side::server ? "from" : "to", remote_);
    pump();
}

void AmqpConnection::wake() {
    if (in_pump_ || finished_ || flush_scheduled()) return;
    loop_.schedule_flush(shared_from_this());
}

void AmqpConnection::pump() {
    if (finished_) return;
    in_pump_ = true;
    while (pn_event_t* e = pn_connection_driver_next_event(&driver_)) handle(e);
    in_pump_ = false;
    start_write();
    // After a TLS failure Proton's SSL layer has nothing more to send but never closes its
    // output: close it, or the socket stays open until the peer gives up.
    if (transport_error_ && !writing_ && !pn_connection_driver_finished(&driver_) &&
        pn_connection_driver_write_buffer(&driver_).size == 0) {
        transport_error_ = false;  // once
        pn_connection_driver_write_close(&driver_);
        return pump();  // the close's events
    }
    if (pn_connection_driver_finished(&driver_) && !writing_) {
        finish();
        return;
    }
    start_read();
    arm_timer();
}

void AmqpConnection::start_read() {
    if (reading_ || read_closed_) return;
    pn_rwbytes_t buf = pn_connection_driver_read_buffer(&driver_);
    if (buf.size == 0) return;
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(buf.start, buf.size),
        [self = shared_from_this(), start = buf.start](boost::system::error_code ec, size_t n) {
            self->reading_ = false;
            if (self->finished_) return;
            self->loop_.begin_turn();
            // A TLS ClientHello (record type 22) on a listener without TLS:
            // Proton would wait for an SSL configuration that never comes.
            if (!ec && n > 0 && self->bytes_read_ == 0 && self->side_ == Side::server &&
                !self->ssl_ && start[0] == 0x16) {
                self->bytes_read_ = n;
                self->read_closed_ = true;
                pn_connection_driver_errorf(&self->driver_, "amqp:connection:framing-error",
                                            "TLS handshake received, but this listener "
                                            "has no TLS");
                pn_connection_driver_close(&self->driver_);
                self->pump();
                return;
            }
            // Plaintext on a listener that requires TLS: Proton would still offer SASL
            // mechanisms in the clear (its encryption check comes after authentication).
            if (!ec && n > 0 && self->bytes_read_ == 0 && self->ssl_ &&
                self->settings_.require_tls && self->side_ == Side::server && start[0] != 0x16) {
                logger().warn("[C{}] {}: plaintext on a TLS listener (requireSsl), refused",
                              self->log_id_, self->remote_);
                self->bytes_read_ = n;
                self->read_closed_ = true;
                pn_connection_driver_errorf(&self->driver_, "amqp:connection:framing-error",
                                            "plaintext on a TLS listener");
                pn_connection_driver_close(&self->driver_);
                self->pump();
                return;
            }
            self->bytes_read_ += n;
            if (ec) {
                self->read_closed_ = true;
                if (ec != asio::error::eof)
                    pn_connection_driver_errorf(&self->driver_, "amqp:connection:framing-error",
                                                "%s", ec.message().c_str());
                pn_connection_driver_read_close(&self->driver_);
            } else {
                pn_connection_driver_read_done(&self->driver_, n);
            }
            self->pump();
        });
}

void AmqpConnection::start_write() {
    if (writing_) return;
    pn_bytes_t buf = pn_connection_driver_write_buffer(&driver_);
    if (buf.size == 0) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(buf.start, buf.size),
                      [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                          self->writing_ = false;
                          if (self->finished_) return;
                          if (ec)
                              pn_connection_driver_write_close(&self->driver_);
                          else
                              pn_connection_driver_write_done(&self->driver_, n);
                          self->pump();
                      });
}

// Heartbeats and idle-timeout detection need Proton's clock ticks; the handshake timeout is
// ours.
void AmqpConnection::arm_timer() {
    uint64_t now = net::monotonic_ms();
    uint64_t next = pn_transport_tick(driver_.transport, static_cast<int64_t>(now));
    if (!core_ && settings_.handshake_timeout_ms) {
        uint64_t hs = started_ms_ + settings_.handshake_timeout_ms;
        if (now >= hs) {
            pn_connection_driver_errorf(&driver_, "amqp:resource-limit-exceeded",
                                        "initial handshake not completed in %u ms",
                                        settings_.handshake_timeout_ms);
            pn_connection_driver_close(&driver_);
            wake();
            return;
        }
        if (!next || hs < next) next = hs;
    }
    if (!next || next == timer_deadline_) return;
    timer_deadline_ = next;
    timer_.expires_after(std::chrono::milliseconds(next > now ? next - now : 0));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec || self->finished_) return;
        self->timer_deadline_ = 0;
        self->pump();
    });
}

void AmqpConnection::finish() {
    if (finished_) return;
    finished_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    if (core_) {
        // PN_TRANSPORT_CLOSED normally did this; be sure the core forgets us.
        router_.connection_closed(core_);
        core_ = nullptr;
    }
    for (AmqpLink* l : links_) l->core = nullptr;
    if (on_finished_) {
        auto fn = std::move(on_finished_);
        fn(*this);
    }
}

void AmqpConnection::shutdown() {
    if (finished_) return;
    shutting_down_ = true;  // wills are not published because the router stops
    pn_connection_t* c = driver_.connection;
    for (pn_link_t* l = pn_link_head(c, PN_LOCAL_ACTIVE); l; l = pn_link_next(l, PN_LOCAL_ACTIVE))
        pn_link_close(l);
    for (pn_session_t* s = pn_session_head(c, PN_LOCAL_ACTIVE); s;
         s = pn_session_next(s, PN_LOCAL_ACTIVE))
        pn_session_close(s);
    if (pn_connection_state(c) & PN_LOCAL_UNINIT) pn_connection_open(c);
    pn_condition_t* cond = pn_connection_condition(c);
    pn_condition_set_name(cond, core::condition::connection_forced);
    pn_condition_set_description(cond, "Router is shutting down");
    pn_connection_close(c);
    wake();
}

void AmqpConnection::close(const core::ErrorCondition& error) {
    if (finished_) return;
    pn_connection_t* c = driver_.connection;
    set_condition(pn_connection_condition(c), error);
    pn_connection_close(c);
    wake();
}

// ---------------------------------------------------------------------------------------------
// Events

void AmqpConnection::handle(pn_event_t* e) {
    switch (pn_event_type(e)) {
        case PN_CONNECTION_REMOTE_OPEN:
            on_remote_open();
            break;
        case PN_SESSION_REMOTE_OPEN: {
            pn_session_t* s = pn_event_session(e);
            if (policy_ && (pn_session_state(s) & PN_LOCAL_UNINIT) &&
                policy_->sessions >= policy_->max_sessions()) {
                core::ErrorCondition err = policy_->deny(
                    core::Denial::session, "session limit of the policy reached (maxSessions " +
                                               std::to_string(policy_->max_sessions()) + ")");
                err.name = core::condition::resource_limit;
                logger().info("[C{}] session refused: {}", log_id_, err.description);
                pn_session_open(s);
                set_condition(pn_session_condition(s), err);
                pn_session_close(s);
                break;
            }
            if (policy_ && (pn_session_state(s) & PN_LOCAL_UNINIT) &&
                policy_sessions_.insert(s).second)
                policy_->sessions++;
            if (pn_session_state(s) & PN_LOCAL_UNINIT) {
                if (settings_.max_session_frames)
                    pn_session_set_incoming_capacity(
                        s, size_t(settings_.max_session_frames) * settings_.max_frame_size);
                pn_session_open(s);
            }
            break;
        }
        case PN_LINK_REMOTE_OPEN:
            on_link_remote_open(pn_event_link(e));
            break;
        case PN_LINK_FLOW: {
            pn_link_t* l = pn_event_link(e);
            auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
            if (!al || !al->core) break;
            if (pn_link_is_sender(l))
                router_.credit(al->core, pn_link_credit(l), pn_link_get_drain(l));
            else
                router_.producer_flow(al->core, pn_link_credit(l));
            break;
        }
        case PN_DELIVERY:
            on_delivery(pn_event_delivery(e));
            break;
        case PN_LINK_REMOTE_CLOSE:
        case PN_LINK_REMOTE_DETACH:
            on_link_remote_close(pn_event_link(e));
            break;
        case PN_LINK_FINAL: {
            // FINAL can come more than once for one pn_link_t: Proton keeps ("preserves") a link
            // object its session still refers to, and its endpoint count can reach zero again
            // (seen under the chaos clients: the second FINAL deleted this AmqpLink twice). The
            // context goes with the first, so later events find no AmqpLink.
            pn_link_t* l = pn_event_link(e);
            auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
            if (al) {
                pn_link_set_context(l, nullptr);
                policy_forget(*al);
                links_.erase(al);
                delete al;
            }
            break;
        }
        case PN_SESSION_REMOTE_CLOSE:
            on_session_remote_close(pn_event_session(e));
            break;
        case PN_CONNECTION_REMOTE_CLOSE: {
            pn_connection_t* c = pn_event_connection(e);
            remote_closed_ = true;
            remote_close_error_ = pn_condition_is_set(pn_connection_remote_condition(c));
            if (!(pn_connection_state(c) & PN_LOCAL_CLOSED)) pn_connection_close(c);
            break;
        }
        case PN_TRANSPORT_CLOSED:
            on_transport_closed();
            break;
        case PN_TRANSPORT_ERROR:
            transport_error_ = true;
            break;
        default:
            break;
    }
}

void AmqpConnection::on_remote_open() {
    pn_connection_t* c = driver_.connection;
    pn_transport_t* t = driver_.transport;
    core::ConnectionInfo info;
    info.protocol = "amqp";
    info.inbound = side_ == Side::server;
    info.host = remote_;
    const char* container = pn_connection_remote_container(c);
    info.container_id = container ? container : "";
    info.role = settings_.role;
    const char* user = pn_transport_get_user(t);
    info.user = side_ == Side::client ? settings_.sasl.username : user ? user : "";
    pn_sasl_t* sasl = pn_sasl(t);
    const char* mech = sasl ? pn_sasl_get_mech(sasl) : nullptr;
    info.sasl_mechanism = mech ? mech : "";
    info.authenticated = pn_transport_is_authenticated(t) && !info.sasl_mechanism.empty() &&
                         info.sasl_mechanism != "ANONYMOUS";
    info.encrypted = ssl_ && pn_ssl_get_ssf(ssl_) > 0;
    if (info.encrypted) {
        char buf[64];
        if (pn_ssl_get_protocol_name(ssl_, buf, sizeof buf)) info.ssl_protocol = buf;
        if (pn_ssl_get_cipher_name(ssl_, buf, sizeof buf)) info.ssl_cipher = buf;
        info.ssl_ssf = pn_ssl_get_ssf(ssl_);
    }
    if (side_ == Side::server)
        info.listener = settings_.name;
    else
        info.connector = settings_.name;
    info.link_capacity = settings_.link_capacity;
    if (side_ == Side::server && router_.policy().configured()) {
        std::string vhost = settings_.policy_vhost;
        if (const char* h = pn_connection_remote_hostname(c); vhost.empty() && h) vhost = h;
        core::Admission adm =
            router_.policy().admit(info.user, core::policy_host_of(remote_), vhost);
        if (adm.refused) {
            logs::get(logs::Module::SECURITY)
                .warn("AMQP connection from {} (user '{}', vhost '{}') refused by policy: {}",
                      remote_, info.user, vhost, adm.error.description);
            policy_refused_ = true;
            pn_connection_open(c);
            set_condition(pn_connection_condition(c), adm.error);
            pn_connection_close(c);
            return;
        }
        policy_ = std::move(adm.ticket);
        info.policy = policy_.get();
        // The smaller of the listener's and the policy's maxMessageSize holds.
        if (uint64_t m = policy_->max_message_size();
            m && (!settings_.max_message_size || m < settings_.max_message_size)) {
            settings_.max_message_size = m;
            policy_size_limit_ = true;
        }
    }
    core_ = router_.connection_opened(std::move(info), *this);
    was_opened_ = true;
    if (pn_connection_state(c) & PN_LOCAL_UNINIT) pn_connection_open(c);
    char protocol[32] = "";
    if (ssl_) pn_ssl_get_protocol_name(ssl_, protocol, sizeof protocol);
    logger().info("[C{}] {} connection {} {} opened (container '{}', sasl {}, user '{}'{}{})",
                  log_id_, side_ == Side::server ? "incoming" : "outgoing",
                  side_ == Side::server ? "from" : "to", remote_, container ? container : "",
                  mech ? mech : "none", core_->info().user, protocol[0] ? ", " : "", protocol);
}

void AmqpConnection::on_transport_closed() {
    pn_transport_t* t = driver_.transport;
    core::ErrorCondition err = condition_of(pn_transport_condition(t));
    // Wills still armed: a transport error, an idle timeout or a close with an error publishes
    // them; a clean close discards them.
    bool abnormal = !err.empty() || remote_close_error_ || !remote_closed_;
    for (AmqpLink* l : links_)
        if (l->lwt && l->will)
            end_will(*l, abnormal && !shutting_down_,
                     abnormal ? "connection ended abnormally" : "connection closed");
    if (core_) {
        for (AmqpLink* l : links_) l->core = nullptr;
        router_.connection_closed(core_, err.empty() ? nullptr : &err);
        core_ = nullptr;
        if (!close_logged_)
            logger().info("[C{}] connection {} {} closed: {}", log_id_,
                          side_ == Side::server ? "from" : "to", remote_, describe(err));
    } else if (policy_refused_) {
        logger().info("[C{}] connection from {} closed: refused by policy", log_id_, remote_);
    } else {
        logger().info("[C{}] connection {} {} failed before open: {}", log_id_,
                      side_ == Side::server ? "from" : "to", remote_, describe(err));
        // Refused without an exchange: no mechanism both sides accept (the client leaves once
        // it sees the list), or no SASL layer where authenticatePeer needs one. A failed login
        // all the same.
        if (side_ == Side::server && sasl_ && sasl_->failure().empty() && sasl_->user().empty()) {
            if (err.name == "amqp:connection:policy-error")
                sasl_->refused("the client skipped authentication (authenticatePeer)");
            else if (sasl_->listed() || err.name == "amqp:unauthorized-access")
                sasl_->refused("no mechanism both sides accept (offered: " + sasl_->offered() +
                               ")");
        }
    }
    close_logged_ = true;
}

}  // namespace trestle::amqp
