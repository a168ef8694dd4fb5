#include "amqp/connection.hpp"

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/transport.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <cstring>

#include "amqp/codec.hpp"
#include "amqp/terminus.hpp"
#include "mapping/mqtt_amqp.hpp"
#include "trestle/version.hpp"
#include "util/log.hpp"

namespace trestle::amqp {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::AMQP);
}
}  // namespace

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

uint64_t next_log_id = 1;

core::ErrorCondition condition_of(pn_condition_t* c) {
    core::ErrorCondition e;
    if (c && pn_condition_is_set(c)) {
        const char* n = pn_condition_get_name(c);
        const char* d = pn_condition_get_description(c);
        e.name = n ? n : "";
        e.description = d ? d : "";
    }
    return e;
}

void set_condition(pn_condition_t* c, const core::ErrorCondition& e) {
    pn_condition_set_name(c, e.name.c_str());
    if (!e.description.empty()) pn_condition_set_description(c, e.description.c_str());
}

pn_bytes_t bytes_of(const char* s) {
    return pn_bytes(std::strlen(s), s);
}

std::string describe(const core::ErrorCondition& e) {
    if (e.empty()) return "normal close";
    return e.name + (e.description.empty() ? "" : ": " + e.description);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One Proton link bound to one core link.

class AmqpLink final : public core::LinkPort {
  public:
    AmqpLink(AmqpConnection& c, pn_link_t* l) : conn(c), pn(l) { pn_link_set_context(l, this); }

    AmqpConnection& conn;
    pn_link_t* pn;
    core::Link* core = nullptr;
    pn_link_t* attach_after = nullptr;  // open once this same-named link's detach is echoed
    bool anonymous = false;             // incoming link routed by each message's `to`
    std::string partial;                // bytes of a multi-frame message received so far
    uint64_t next_tag = 0;
    // A sender link to `$lwt` (EnMasse's MQTT-over-AMQP wills): named by the client id, its
    // last message is the client's will, published if the link or connection ends abnormally.
    bool lwt = false;
    core::MessageRef will;
    std::string will_topic;

    void deliver(core::Delivery& d) override {
        // A message from another protocol is converted once (cached on the message).
        const core::Message* m = mapping::as_amqp(*d.message, conn.router_.now_ms());
        if (!m) m = d.message.get();
        // The delivery tag carries the core delivery's address, so a disposition finds it
        // without Proton's per-delivery attachment records (a measurable share of the cost per
        // message). Tags stay unique among a link's unsettled deliveries because a core delivery
        // lives until it is settled.
        core::Delivery* self = &d;
        pn_delivery_t* pd =
            pn_delivery(pn, pn_dtag(reinterpret_cast<const char*>(&self), sizeof self));
        pn_link_send(pn, m->data(), m->size());
        pn_link_advance(pn);
        if (d.presettled)
            pn_delivery_settle(pd);
        else
            d.handle = pd;
        conn.wake();
    }

    void update(core::Delivery& d, const core::DeliveryState& s, bool settle) override {
        auto* pd = static_cast<pn_delivery_t*>(d.handle);
        if (!pd) return;
        apply_state(pd, s);
        if (settle) {
            pn_delivery_settle(pd);
            d.handle = nullptr;
        }
        conn.wake();
    }

    void flow(uint32_t credit, bool drain) override {
        int have = pn_link_credit(pn);
        int want = static_cast<int>(credit);
        if (drain) {
            if (!pn_link_get_drain(pn) || want > have)
                pn_link_drain(pn, want > have ? want - have : 0);
        } else {
            if (pn_link_get_drain(pn)) pn_link_set_drain(pn, false);
            if (want > have) pn_link_flow(pn, want - have);
        }
        conn.wake();
    }

    void drained() override {
        pn_link_drained(pn);
        conn.wake();
    }

    void opened(const core::Terminus& source, const core::Terminus& target) override {
        to_pn(source, pn_link_source(pn), PN_SOURCE);
        to_pn(target, pn_link_target(pn), PN_TARGET);
        pn_link_open(pn);
        conn.wake();
    }

    void detach(const core::ErrorCondition* error) override {
        core = nullptr;  // the core forgets this link once this returns
        if (attach_after) {
            // Never attached on the wire (waiting for its name to be free): nothing to detach.
            attach_after = nullptr;
            pn_link_free(pn);
            return;
        }
        if (pn_link_state(pn) & PN_LOCAL_CLOSED) return;
        if (pn_link_state(pn) & PN_LOCAL_UNINIT) pn_link_open(pn);  // answer the attach first
        if (error && !error->empty()) set_condition(pn_link_condition(pn), *error);
        pn_link_close(pn);
        conn.wake();
    }
};

// ---------------------------------------------------------------------------------------------

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
    pn_sasl_t* sasl = pn_sasl(t);
    pn_sasl_allowed_mechs(sasl, settings_.sasl_mechanisms.c_str());
    if (side_ == Side::server) {
        // Clients without a SASL layer (a bare AMQP header, as qdstat sends) are accepted.
        pn_transport_require_auth(t, false);
    }
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
                start[0] == 0x16) {
                self->bytes_read_ = n;
                self->read_closed_ = true;
                pn_connection_driver_errorf(&self->driver_, "amqp:connection:framing-error",
                                            "TLS handshake received, but this listener "
                                            "has no TLS");
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
    info.user = user ? user : "";
    pn_sasl_t* sasl = pn_sasl(t);
    const char* mech = sasl ? pn_sasl_get_mech(sasl) : nullptr;
    info.sasl_mechanism = mech ? mech : "";
    info.authenticated = pn_transport_is_authenticated(t) && !info.sasl_mechanism.empty() &&
                         info.sasl_mechanism != "ANONYMOUS";
    info.encrypted = false;
    if (side_ == Side::server)
        info.listener = settings_.name;
    else
        info.connector = settings_.name;
    info.link_capacity = settings_.link_capacity;
    core_ = router_.connection_opened(std::move(info), *this);
    was_opened_ = true;
    if (pn_connection_state(c) & PN_LOCAL_UNINIT) pn_connection_open(c);
    logger().info("[C{}] {} connection {} {} opened (container '{}', sasl {})", log_id_,
                  side_ == Side::server ? "incoming" : "outgoing",
                  side_ == Side::server ? "from" : "to", remote_, container ? container : "",
                  mech ? mech : "none");
}

void AmqpConnection::on_link_remote_open(pn_link_t* l) {
    if (!core_) return;
    auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
    if (al) {
        // The remote container answered an attach the core initiated (link routing).
        if (!al->core) return;
        core::Terminus src = from_pn(pn_link_remote_source(l));
        core::Terminus tgt = from_pn(pn_link_remote_target(l));
        // An attach answered without the terminus we asked for is a refusal; its detach
        // (with the reason) follows and is relayed then.
        bool refused = pn_link_is_sender(l) ? !tgt.present : !src.present;
        if (!refused) router_.peer_attached(al->core, src, tgt);
        return;
    }

    al = new AmqpLink(*this, l);
    links_.insert(al);
    if (settings_.max_message_size && pn_link_is_receiver(l))
        pn_link_set_max_message_size(l, settings_.max_message_size);
    pn_terminus_t* rtarget = pn_link_remote_target(l);
    if (pn_terminus_get_type(rtarget) == PN_COORDINATOR) {
        pn_link_open(l);
        set_condition(pn_link_condition(l),
                      {core::condition::not_implemented, "Transactions are not supported"});
        pn_link_close(l);
        return;
    }
    if (pn_link_is_receiver(l)) {
        const char* ta = pn_terminus_get_address(rtarget);
        if (ta && std::string_view(ta) == "$lwt") {
            al->lwt = true;
            pn_terminus_copy(pn_link_target(l), rtarget);
            pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
            pn_link_open(l);
            pn_link_flow(l, 1);
            logger().debug("[C{}] will link '{}' attached", log_id_, pn_link_name(l));
            return;
        }
    }
    core::AttachRequest req;
    req.direction = pn_link_is_receiver(l) ? core::Direction::incoming : core::Direction::outgoing;
    req.name = pn_link_name(l);
    req.source = from_pn(pn_link_remote_source(l));
    req.target = from_pn(rtarget);
    req.snd_settle_mode = static_cast<core::SenderSettleMode>(pn_link_remote_snd_settle_mode(l));
    req.rcv_settle_mode = static_cast<core::ReceiverSettleMode>(pn_link_remote_rcv_settle_mode(l));
    pn_link_set_snd_settle_mode(l, pn_link_remote_snd_settle_mode(l));
    pn_link_set_rcv_settle_mode(l, pn_link_remote_rcv_settle_mode(l));
    if (!settings_.kafka_dialect.empty()) {
        // Direct Kafka access: link routed to the Kafka adapter (an anonymous sender too: each
        // message's `to` names its topic there).
        core::Terminus& t = req.direction == core::Direction::incoming ? req.target : req.source;
        t.address = dialect_prefix(settings_.kafka_dialect) + t.address;
        t.has_address = true;
        t.dynamic = false;
    }

    core::Link* link = nullptr;
    core::AttachResult res = router_.attach(*core_, req, *al, &link);
    al->core = link;
    switch (res.kind) {
        case core::AttachResult::Kind::open:
            al->anonymous = req.direction == core::Direction::incoming && link &&
                            !link->address() && !link->link_routed();
            pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
            pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
            if (!res.dynamic_address.empty())
                pn_terminus_set_address(pn_link_source(l), res.dynamic_address.c_str());
            pn_link_open(l);
            logger().debug(
                "[C{}] link '{}' attached ({} '{}')", log_id_, req.name,
                req.direction == core::Direction::incoming ? "to" : "from",
                res.dynamic_address.empty() ? req.routed_terminus().address : res.dynamic_address);
            break;
        case core::AttachResult::Kind::pending:
            break;  // answered when the route container attaches
        case core::AttachResult::Kind::refused:
            logger().info("[C{}] link '{}' to '{}' refused: {}", log_id_, req.name,
                          req.routed_terminus().address, describe(res.error));
            pn_link_open(l);
            set_condition(pn_link_condition(l), res.error);
            pn_link_close(l);
            break;
    }
}

void AmqpConnection::detach_core_link(AmqpLink& al, const core::ErrorCondition* err) {
    if (!al.core) return;
    core::Link* cl = al.core;
    al.core = nullptr;
    router_.detach(cl, err);
}

void AmqpConnection::on_link_remote_close(pn_link_t* l) {
    for (AmqpLink* waiting : links_) {
        if (waiting->attach_after != l) continue;
        waiting->attach_after = nullptr;
        if (waiting->core) pn_link_open(waiting->pn);
    }
    auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
    if (al && al->lwt) {
        // detach-forced = the client went away brutally: publish; any other end discards it.
        core::ErrorCondition err = condition_of(pn_link_remote_condition(l));
        end_will(*al, err.name == core::condition::detach_forced,
                 "link detached with " + (err.empty() ? "no error" : err.name));
    }
    if (al && al->core) {
        core::ErrorCondition err = condition_of(pn_link_remote_condition(l));
        detach_core_link(*al, err.empty() ? nullptr : &err);
    }
    if (!(pn_link_state(l) & PN_LOCAL_CLOSED)) {
        if (pn_link_state(l) & PN_LOCAL_UNINIT) pn_link_open(l);
        pn_link_close(l);
    }
    pn_link_free(l);  // the engine releases it once the detach is written
}

void AmqpConnection::on_session_remote_close(pn_session_t* s) {
    // Ending a session ends its links without a detach for each.
    for (pn_link_t* l = pn_link_head(driver_.connection, 0); l; l = pn_link_next(l, 0)) {
        if (pn_link_session(l) != s) continue;
        auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
        if (al) detach_core_link(*al, nullptr);
    }
    if (s == routed_session_) routed_session_ = nullptr;
    if (!(pn_session_state(s) & PN_LOCAL_CLOSED)) pn_session_close(s);
    pn_session_free(s);
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
    } else {
        logger().info("[C{}] connection {} {} failed before open: {}", log_id_,
                      side_ == Side::server ? "from" : "to", remote_, describe(err));
    }
    close_logged_ = true;
}

void AmqpConnection::on_delivery(pn_delivery_t* pd) {
    pn_link_t* l = pn_delivery_link(pd);
    auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
    if (al && al->lwt) {
        if (pd == pn_link_current(l)) on_will_transfer(*al, pd);
        return;
    }
    if (!al || !al->core) {
        // The core has forgotten this link (detached, or its routed peer is gone): its
        // deliveries are nobody's any more; let Proton release them.
        if (pn_link_is_receiver(l) && pd == pn_link_current(l)) {
            if (pn_delivery_partial(pd)) return;
            pn_link_advance(l);
        }
        pn_delivery_settle(pd);
        return;
    }
    if (pn_link_is_receiver(l)) {
        // A transfer not yet read is the link's current delivery; any other event is about a
        // delivery already handed to the core.
        if (pd == pn_link_current(l)) {
            on_incoming_transfer(*al, pd);
            return;
        }
        if (pn_delivery_settled(pd)) {  // the producer settled before we did (rare)
            core::Delivery* d = al->core->find_in_flight(pd);
            core::DeliveryState s = remote_state(pd);
            pn_delivery_settle(pd);
            if (d) {
                d->handle = nullptr;
                router_.disposition(d, s, true);
            }
        }
        return;
    }
    // Sender link: the consumer updated or settled one of our unsettled deliveries. While the
    // core knows the link, each has a live core delivery, named by its tag (see deliver()).
    if (!pn_delivery_updated(pd) && !pn_delivery_settled(pd)) return;
    pn_bytes_t tag = pn_delivery_tag(pd);
    core::Delivery* d = nullptr;
    if (tag.size == sizeof d) std::memcpy(&d, tag.start, sizeof d);
    if (!d || d->handle != pd) {
        if (pn_delivery_settled(pd)) pn_delivery_settle(pd);  // sent presettled, or not ours
        return;
    }
    core::DeliveryState s = remote_state(pd);
    bool settled = pn_delivery_settled(pd);
    pn_delivery_clear(pd);
    if (settled) {
        d->handle = nullptr;
        pn_delivery_settle(pd);
    }
    router_.disposition(d, s, settled);
}

// A message past the listener's maxMessageSize detaches its link before it is buffered: the
// spec's answer, and what bounds the memory a client can make us hold.
bool AmqpConnection::too_large(AmqpLink& al, size_t pending) {
    if (!settings_.max_message_size || al.partial.size() + pending <= settings_.max_message_size)
        return false;
    core::ErrorCondition err{"amqp:link:message-size-exceeded",
                             "a message larger than the listener's maxMessageSize (" +
                                 std::to_string(settings_.max_message_size) + " bytes)"};
    logger().info("[C{}] link '{}': {}", log_id_, pn_link_name(al.pn), err.description);
    al.partial.clear();
    al.partial.shrink_to_fit();
    if (al.lwt) {
        end_will(al, false, "its link sent a message past maxMessageSize");
        al.lwt = false;  // what still arrives on it is nobody's
    }
    detach_core_link(al, &err);
    set_condition(pn_link_condition(al.pn), err);
    pn_link_close(al.pn);
    wake();
    return true;
}

void AmqpConnection::on_will_transfer(AmqpLink& al, pn_delivery_t* pd) {
    pn_link_t* l = al.pn;
    if (too_large(al, pn_delivery_pending(pd))) return;
    if (pn_delivery_partial(pd)) {
        size_t pending = pn_delivery_pending(pd);
        size_t old = al.partial.size();
        al.partial.resize(old + pending);
        ssize_t n = pn_link_recv(l, al.partial.data() + old, pending);
        al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
        return;
    }
    size_t pending = pn_delivery_pending(pd);
    size_t old = al.partial.size();
    al.partial.resize(old + pending);
    ssize_t n = pending ? pn_link_recv(l, al.partial.data() + old, pending) : 0;
    al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    core::MessageRef msg = core::MessageRef::adopt(core::Message::copy_of(al.partial));
    al.partial.clear();
    al.partial.shrink_to_fit();
    pn_link_advance(l);
    MessageLayout layout;
    std::string err = scan_message(msg->bytes(), layout);
    if (err.empty() && layout.to.empty()) err = "a will needs a topic (properties.to)";
    if (!err.empty()) {
        if (!pn_delivery_settled(pd))
            apply_state(pd, core::DeliveryState::rejected({"amqp:decode-error", err}));
    } else {
        mapping::inspect_amqp(*msg, layout, router_.now_ms());
        al.will_topic.assign(layout.to);
        al.will = std::move(msg);  // a new will replaces the previous one
        logger().debug("[C{}] will of '{}' set for '{}'", log_id_, pn_link_name(l), al.will_topic);
        core::WillRecord w;  // published by another instance if this one dies
        w.client_id = pn_link_name(l);
        w.topic = al.will_topic;
        w.message = al.will;
        router_.wills().hold(w);
        if (!pn_delivery_settled(pd)) apply_state(pd, core::DeliveryState::accepted());
    }
    pn_delivery_settle(pd);
    pn_link_flow(l, 1);  // the will can be replaced during the session
}

void AmqpConnection::end_will(AmqpLink& al, bool publish, const std::string& why) {
    if (!al.will) return;
    core::MessageRef will = std::move(al.will);
    al.will.reset();
    const char* name = pn_link_name(al.pn);
    if (!publish) {
        router_.wills().cancel(name);  // no longer held for this client anywhere
        logger().debug("[C{}] will of '{}' discarded ({})", log_id_, name, why);
        return;
    }
    // The same rule as MQTT's, with no will delay: published now.
    logger().info("[C{}] publishing the will of '{}' to '{}' ({})", log_id_, name, al.will_topic,
                  why);
    core::WillRecord w;
    w.client_id = name;
    w.topic = al.will_topic;
    w.message = std::move(will);
    router_.wills().arm(std::move(w));
}

// Whether an incoming message is read for the core's fields (retain, QoS, expiry): when the
// router or a mapping acts on them — an anonymous sender's (any topic), or one to a multicast
// address (retained messages), a Kafka-bound address (its records carry them) or an address
// MQTT subscriptions match (it becomes an MQTT message). Not for plain AMQP -> AMQP anycast,
// forwarded untouched. Decided per message: rules, routes and subscriptions change while a
// link is open.
static bool reads_messages(const AmqpLink& al) {
    if (al.anonymous) return true;
    const core::Address* a = al.core ? al.core->address() : nullptr;
    if (!a) return false;
    return (a->configured() && a->distribution() == core::Distribution::multicast) ||
           a->waypoint() || a->filter_matches() > 0;
}

void AmqpConnection::on_incoming_transfer(AmqpLink& al, pn_delivery_t* pd) {
    pn_link_t* l = al.pn;
    if (pn_delivery_aborted(pd)) {
        al.partial.clear();
        pn_delivery_settle(pd);
        pn_link_flow(l, 1);  // the aborted transfer used a credit the core never saw
        return;
    }
    if (!pn_delivery_readable(pd) && pn_delivery_partial(pd)) return;
    size_t pending = pn_delivery_pending(pd);
    if (too_large(al, pending)) return;
    if (pn_delivery_partial(pd)) {
        // Accumulate a multi-frame message; Proton's session window bounds each step.
        size_t old = al.partial.size();
        al.partial.resize(old + pending);
        ssize_t n = pn_link_recv(l, al.partial.data() + old, pending);
        al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
        return;
    }
    core::Message* m;
    if (al.partial.empty()) {
        m = core::Message::create(pending);
        ssize_t n = pending ? pn_link_recv(l, m->data(), pending) : 0;
        m->truncate(n > 0 ? static_cast<size_t>(n) : 0);
    } else {
        size_t old = al.partial.size();
        al.partial.resize(old + pending);
        ssize_t n = pending ? pn_link_recv(l, al.partial.data() + old, pending) : 0;
        al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
        m = core::Message::copy_of(al.partial);
        al.partial.clear();
        al.partial.shrink_to_fit();
    }
    core::MessageRef msg = core::MessageRef::adopt(m);
    pn_link_advance(l);
    bool settled = pn_delivery_settled(pd);

    std::string_view to;
    if (reads_messages(al)) {
        MessageLayout layout;
        std::string err = scan_message(msg->bytes(), layout);
        if (!err.empty()) {
            // Cannot route what cannot be read: reject (or drop, if presettled) with the reason.
            logger().debug("[C{}] undecodable message on link: {}", log_id_, err);
            if (!settled) {
                apply_state(pd, core::DeliveryState::rejected({"amqp:decode-error", err}));
            }
            pn_delivery_settle(pd);
            pn_link_flow(l, 1);
            return;
        }
        to = layout.to;
        mapping::inspect_amqp(*msg, layout, router_.now_ms());
    }
    router_.transfer(al.core, std::move(msg), to, settled, pd);
    if (settled) pn_delivery_settle(pd);
}

// ---------------------------------------------------------------------------------------------
// Link routing: the core asks this connection (to a route container) for a link.

core::LinkPort* AmqpConnection::open_link(core::Link& link, const core::AttachRequest& req,
                                          core::ErrorCondition&) {
    if (finished_ || !core_) return nullptr;
    if (!routed_session_) {
        routed_session_ = pn_session(driver_.connection);
        pn_session_open(routed_session_);
    }
    pn_link_t* l = req.direction == core::Direction::incoming
                       ? pn_receiver(routed_session_, req.name.c_str())
                       : pn_sender(routed_session_, req.name.c_str());
    to_pn(req.source, pn_link_source(l), PN_SOURCE);
    to_pn(req.target, pn_link_target(l), PN_TARGET);
    pn_link_set_snd_settle_mode(l, static_cast<pn_snd_settle_mode_t>(req.snd_settle_mode));
    pn_link_set_rcv_settle_mode(l, static_cast<pn_rcv_settle_mode_t>(req.rcv_settle_mode));
    auto* al = new AmqpLink(*this, l);
    al->core = &link;
    links_.insert(al);
    // A link name is free again only when both detaches were exchanged: a client that
    // detaches and re-attaches the same name at once must not reach the container before its
    // echo did ("link name already attached").
    for (pn_link_t* o = pn_link_head(driver_.connection, 0); o; o = pn_link_next(o, 0)) {
        if (o == l || pn_link_is_sender(o) != pn_link_is_sender(l)) continue;
        if (req.name != pn_link_name(o)) continue;
        pn_state_t st = pn_link_state(o);
        if ((st & PN_LOCAL_CLOSED) && !(st & PN_REMOTE_CLOSED)) {
            al->attach_after = o;
            break;
        }
    }
    if (!al->attach_after) pn_link_open(l);
    wake();
    return al;
}

// ---------------------------------------------------------------------------------------------
// Connector

AmqpConnector::AmqpConnector(net::EventLoop& loop, core::Router& router, AmqpSettings settings,
                             std::string host, uint16_t port, uint32_t max_delay_ms)
    : loop_(loop),
      router_(router),
      settings_(std::move(settings)),
      host_(std::move(host)),
      port_(port),
      max_delay_ms_(max_delay_ms),
      timer_(loop.io()),
      resolver_(loop.io()) {
    if (settings_.virtual_host.empty()) settings_.virtual_host = host_;
}

void AmqpConnector::start() {
    connect();
}

void AmqpConnector::stop() {
    stopped_ = true;
    timer_.cancel();
    resolver_.cancel();
    if (socket_) {
        boost::system::error_code ec;
        socket_->close(ec);
    }
    if (auto c = conn_.lock()) c->shutdown();
}

void AmqpConnector::connect() {
    if (stopped_) return;
    status_ = "CONNECTING";
    auto self = shared_from_this();
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self](boost::system::error_code ec, tcp::resolver::results_type results) {
            if (self->stopped_) return;
            if (ec) return self->retry_later("cannot resolve " + self->host_ + ": " + ec.message());
            self->socket_ = std::make_unique<tcp::socket>(self->loop_.io());
            asio::async_connect(*self->socket_, results,
                                [self](boost::system::error_code ec2, const tcp::endpoint&) {
                                    if (self->stopped_) return;
                                    if (ec2) return self->retry_later(ec2.message());
                                    boost::system::error_code ignore;
                                    self->socket_->set_option(tcp::no_delay(true), ignore);
                                    auto conn = std::make_shared<AmqpConnection>(
                                        self->loop_, self->router_, std::move(*self->socket_),
                                        self->settings_, AmqpConnection::Side::client);
                                    self->socket_.reset();
                                    self->conn_ = conn;
                                    self->status_ = "SUCCESS";
                                    self->message_ = "Connection Opened";
                                    std::weak_ptr<AmqpConnector> weak = self;
                                    conn->start([weak](AmqpConnection& c) {
                                        auto me = weak.lock();
                                        if (!me || me->stopped_) return;
                                        // A connection that got as far as open earns a fresh
                                        // backoff.
                                        if (c.was_opened()) me->delay_ms_ = 100;
                                        me->retry_later("connection closed");
                                    });
                                });
        });
}

void AmqpConnector::retry_later(const std::string& why) {
    if (stopped_) return;
    status_ = "FAILED";
    message_ = why;
    logger().info("connector '{}' to {}:{}: {}; retrying in {} ms", settings_.name, host_, port_,
                  why, delay_ms_);
    timer_.expires_after(std::chrono::milliseconds(delay_ms_));
    delay_ms_ = std::min(delay_ms_ * 2, max_delay_ms_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->connect();
    });
}

}  // namespace trestle::amqp
