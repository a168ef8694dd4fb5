#include "mqtt/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <random>

#include "mapping/mqtt_amqp.hpp"
#include "mqtt/message.hpp"
#include "trestle/core/topic_filter.hpp"
#include "util/log.hpp"

namespace trestle::mqtt {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::MQTT);
}
}  // namespace

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

uint64_t next_connection_log_id = 1;

// The largest v5 "never expires" value.
constexpr uint32_t never = 0xFFFFFFFF;

uint8_t outcome_reason(const core::DeliveryState& s) {
    switch (s.outcome) {
        case core::Outcome::accepted:
        case core::Outcome::none:
            return reason::success;
        case core::Outcome::released:
        case core::Outcome::modified:
            // Nobody took it: MQTT 5 says so without asking the client to resend.
            return reason::no_matching_subscribers;
        case core::Outcome::rejected: {
            std::string_view c = s.error ? std::string_view(s.error->name) : std::string_view();
            if (c == "amqp:unauthorized-access") return reason::not_authorized;
            if (c == "amqp:not-found" || c == "amqp:invalid-field")
                return reason::topic_name_invalid;
            if (c == "amqp:resource-limit-exceeded") return reason::quota_exceeded;
            if (c == "amqp:decode-error") return reason::payload_format_invalid;
            return reason::unspecified_error;
        }
    }
    return reason::unspecified_error;
}

std::string generated_client_id() {
    static std::mt19937_64 rng{std::random_device{}()};
    char buf[40];
    snprintf(buf, sizeof buf, "trestle-%016llx", static_cast<unsigned long long>(rng()));
    return buf;
}

// --- TCP transport on the shared epoll set --------------------------------------------------
// No read buffer of its own (reads go through one 64 KiB buffer per loop), no Asio state per
// socket, nothing allocated while idle; writes go straight to send() and only what the socket
// refuses is kept.

class EpollTransport final : public Transport, private net::Poller::Client {
  public:
    EpollTransport(net::Poller& p, int fd) : poller_(p), fd_(fd) {}
    ~EpollTransport() override { close(); }

    void start(Handler& h) override {
        h_ = &h;
        events_ = EPOLLIN | EPOLLRDHUP;
        if (!poller_.add(fd_, this, events_)) h_->on_closed(true);
    }
    void set_reading(bool on) override {
        reading_ = on;
        update();
    }
    void write(std::string_view d) override {
        if (closed_ || d.empty()) return;
        if (pending_) {
            pending_->append(d);
            return;
        }
        ssize_t n = ::send(fd_, d.data(), d.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return;  // the read side reports the failure
            n = 0;
        }
        if (static_cast<size_t>(n) < d.size()) {
            pending_ = std::make_unique<std::string>(d.substr(static_cast<size_t>(n)));
            update();
        }
    }
    size_t buffered() const override { return pending_ ? pending_->size() : 0; }
    void close() override {
        if (closed_) return;
        closed_ = true;
        poller_.remove(fd_);
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
    }
    std::string remote() const override { return closed_ ? "?" : net::remote_endpoint(fd_); }

  private:
    void update() {
        if (closed_) return;
        uint32_t want =
            (reading_ ? uint32_t(EPOLLIN | EPOLLRDHUP) : 0u) | (pending_ ? uint32_t(EPOLLOUT) : 0u);
        if (want != events_) {
            events_ = want;
            poller_.modify(fd_, this, want);
        }
    }
    void on_events(uint32_t ev) override {
        if (closed_) return;
        if (ev & EPOLLOUT) {
            while (pending_ && !pending_->empty()) {
                ssize_t n =
                    ::send(fd_, pending_->data(), pending_->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n <= 0) break;
                pending_->erase(0, static_cast<size_t>(n));
            }
            if (pending_ && pending_->empty()) {
                pending_.reset();
                update();
                h_->on_writable();
                if (closed_) return;
            }
        }
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            static thread_local std::vector<char> scratch(64 * 1024);
            // A few reads per event, then other connections get their turn.
            for (int i = 0; i < 4 && reading_ && !closed_; ++i) {
                ssize_t n = ::recv(fd_, scratch.data(), scratch.size(), MSG_DONTWAIT);
                if (n > 0) {
                    h_->on_data(std::string_view(scratch.data(), static_cast<size_t>(n)));
                    if (static_cast<size_t>(n) < scratch.size()) break;
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                h_->on_closed(n < 0);
                return;
            }
        }
    }

    net::Poller& poller_;
    int fd_;
    Handler* h_ = nullptr;
    std::unique_ptr<std::string> pending_;  // what the socket did not take yet; null = none
    uint32_t events_ = 0;
    bool reading_ = true;
    bool closed_ = false;
};

}  // namespace

std::unique_ptr<Transport> tcp_transport(net::Poller& poller, tcp::socket s) {
    int fd = s.release();  // the epoll transport owns the descriptor from here
    return std::make_unique<EpollTransport>(poller, fd);
}

// =============================================================================================
// OutQueue

void OutQueue::push_back(Outgoing o) {
    if (!q_) q_ = std::make_unique<Storage>();
    q_->v.push_back(std::move(o));
}

void OutQueue::pop_front() {
    q_->v[q_->head] = Outgoing{};
    if (++q_->head == q_->v.size()) {
        q_->v.clear();  // kept for the next message; trim() gives it back when idle
        q_->head = 0;
    } else if (q_->head >= 256 && q_->head * 2 >= q_->v.size()) {
        q_->v.erase(q_->v.begin(), q_->v.begin() + static_cast<std::ptrdiff_t>(q_->head));
        q_->head = 0;
    }
}

OutQueue::iterator OutQueue::erase(iterator it) {
    if (it == begin()) {
        pop_front();
        return begin();
    }
    auto off = it - q_->v.data();
    auto next = q_->v.erase(q_->v.begin() + off);
    return q_->v.data() + (next - q_->v.begin());
}

// =============================================================================================
// Session

Session::Session(SessionManager& m, std::string client_id, uint64_t owner)
    : mgr_(m), client_id_(std::move(client_id)), owner_(owner) {}

Session::~Session() {
    if (replay_ && mgr_.logs_) mgr_.logs_->cancel(replay_);
    mgr_.total_queued -= pending_.size() + inflight_.size() + held_.size();
}

void Session::ensure_link() {
    if (link_) return;
    core::AttachRequest req;
    req.direction = core::Direction::outgoing;
    req.name = "mqtt-session/" + client_id_;
    req.subscriber = true;
    req.takes_responsibility = true;
    req.owner = owner_;
    core::Router& r = mgr_.router();
    r.attach(*mgr_.core_, req, *this, &link_);
    r.credit(link_, INT32_MAX / 2, false);
}

uint16_t Session::next_packet_id() {
    auto advance = [this] {
        last_packet_id_ = static_cast<uint16_t>(last_packet_id_ == 65535 ? 1 : last_packet_id_ + 1);
    };
    if (inflight_.size() < 32) {  // a short scan beats 8 KB of marks
        used_ids_.reset();
        for (int tries = 0; tries < 65535; ++tries) {
            advance();
            bool used = false;
            for (const auto& o : inflight_) used |= o.packet_id == last_packet_id_;
            if (!used) return last_packet_id_;
        }
        return last_packet_id_;
    }
    for (int round = 0; round < 2; ++round) {
        if (!used_ids_ || round == 1) {  // exact marks: new, or all taken by stale ones
            if (!used_ids_) used_ids_ = std::make_unique<std::bitset<65536>>();
            used_ids_->reset();
            for (const auto& o : inflight_) used_ids_->set(o.packet_id);
        }
        for (int tries = 0; tries < 65535; ++tries) {
            advance();
            if (!used_ids_->test(last_packet_id_)) {
                used_ids_->set(last_packet_id_);
                return last_packet_id_;
            }
        }
    }
    return last_packet_id_;  // 65535 in flight: cannot happen (receive maximum <= 65535)
}

// A message routed to this session: which of its subscriptions match decides the QoS, the
// subscription identifiers and whether the retain flag is kept.
void Session::deliver(core::Delivery& d) {
    Outgoing o;
    std::string error;
    if (!prepare(d.message.get(),
                 d.address ? std::string_view(d.address->name()) : std::string_view(), d.presettled,
                 o, &error)) {
        if (!error.empty())
            d.state = core::DeliveryState::rejected({"amqp:decode-error", error});
        else
            d.state = core::DeliveryState::released();
        return;
    }
    if (!o.message) return;  // unreadable
    if (!conn_ && o.qos == 0) {
        ++mgr_.dropped_qos0;  // QoS 0 is not kept for offline sessions
        return;
    }
    // A QoS 1/2 record read from Kafka for a connected client whose queue is full: deferred,
    // not dropped. The core keeps it unsettled, so the Kafka route's credit runs out and its
    // partitions pause: Kafka holds the backlog, and nothing is lost (mosquitto's drop stays
    // for messages from MQTT publishers, whom a slow subscriber must not hold up).
    if (o.qos > 0 && conn_ && !d.presettled && d.message->origin_log && full_for(o)) {
        d.deferred = true;
        blocked_ = true;
        return;
    }
    size_t before = mgr_.dropped_queue_full;
    enqueue(std::move(o));
    if (mgr_.dropped_queue_full != before) d.state = core::DeliveryState::released();
}

bool Session::prepare(core::Message* m, std::string_view address, bool presettled, Outgoing& o,
                      std::string* error) {
    core::MessageRef mq;
    if (m->format() == core::MessageFormat::mqtt) {
        mq = core::MessageRef::share(m);
    } else {
        if (!m->converted()) {
            core::MessageRef c = mapping::mqtt_from_amqp(*m, address, mgr_.now());
            if (!c) {
                if (error) *error = "message has no topic for MQTT subscribers";
                return false;
            }
            c->origin_log = m->origin_log;  // where it was read, for the session's positions
            c->origin_partition = m->origin_partition;
            c->origin_offset = m->origin_offset;
            m->set_converted(c.get());
            c->ref();
        }
        mq = core::MessageRef::share(m->converted());
    }
    MessageView v;
    if (!view_message(*mq, v)) return true;  // no message: dropped
    uint8_t max_qos = 0;
    bool any = false, keep_retain = false;
    for (const auto& [filter, s] : subs_) {
        if (!core::topic_matches(core::filter_of(filter), v.topic)) continue;
        any = true;
        max_qos = std::max(max_qos, s.qos);
        keep_retain |= s.retain_as_published;
        if (s.subscription_id) o.subscription_ids.push_back(s.subscription_id);
    }
    if (!any) return false;
    o.qos = std::min<uint8_t>(presettled ? 0 : mq->qos, max_qos);
    o.retain = keep_retain && mq->retain;
    o.message = std::move(mq);
    return true;
}

void Session::replayed(core::MessageRef m, std::string_view address) {
    Outgoing o;
    if (!prepare(m.get(), address, false, o, nullptr) || !o.message) return;
    if (!conn_ && o.qos == 0) {
        ++mgr_.dropped_qos0;  // QoS 0 is not kept for offline sessions
        return;
    }
    enqueue(std::move(o), false);
}

void Session::replay_done() {
    replay_ = 0;
    replay_from_.clear();
    replay_from_.shrink_to_fit();
    // Live messages that arrived meanwhile follow what was caught up (they are later records).
    while (!held_.empty()) {
        pending_.push_back(std::move(held_.front()));
        held_.pop_front();
    }
    held_.trim();
    if (conn_) send_pending();
}

void Session::unacked_positions(std::map<std::pair<uint32_t, int32_t>, int64_t>& out) const {
    auto note = [&](const Outgoing& o) {
        const core::Message& m = *o.message;
        if (!m.origin_log || m.origin_offset < 0) return;
        auto [it, fresh] = out.try_emplace({m.origin_log, m.origin_partition}, m.origin_offset);
        if (!fresh) it->second = std::min(it->second, m.origin_offset);
    };
    for (const auto& o : inflight_) note(o);
    for (const auto& o : pending_) note(o);
    for (const auto& o : held_) note(o);
}

// The queue is full: make room by dropping the oldest QoS 0 message, if any.
bool Session::drop_for(OutQueue& q, const Outgoing& incoming) {
    for (auto it = q.begin(); it != q.end(); ++it)
        if (it->qos == 0) {
            q.erase(it);
            --mgr_.total_queued;
            ++mgr_.dropped_qos0;
            return true;
        }
    if (incoming.qos == 0)
        ++mgr_.dropped_qos0;
    else
        ++mgr_.dropped_queue_full;
    ++dropped_;
    return false;
}

OutQueue& Session::queue_for(bool live) {
    return replay_ && live ? held_ : pending_;
}

bool Session::at_limit(const OutQueue& q) const {
    return q.size() >= max_queue_ || mgr_.total_queued >= mgr_.max_total_queued;
}

bool Session::full_for(const Outgoing& o) {
    const OutQueue& q = queue_for(true);
    if (!at_limit(q)) return false;
    if (o.qos == 0) return true;
    for (const auto& x : q)
        if (x.qos == 0) return false;  // drop_for makes room
    return true;
}

void Session::unblock() {
    if (!blocked_ || !link_) return;
    blocked_ = false;
    mgr_.router().credit(link_, INT32_MAX / 2, false);
}

void Session::enqueue(Outgoing o, bool live) {
    OutQueue& q = queue_for(live);
    if (&q == &pending_ && conn_ && pending_.empty() && o.qos == 0 &&
        conn_->buffered() < conn_->settings().max_buffered_bytes) {
        conn_->write_publish(o, false);  // the common fast path: straight to the socket
        conn_->flush();
        return;
    }
    // The per-session bound is on messages waiting to be sent (as mosquitto's
    // max_queued_messages); those in flight are bounded by the client's receive maximum.
    if (at_limit(q)) {
        if (!drop_for(q, o)) {
            uint64_t now = mgr_.now();
            if (now >= mgr_.log_rate_ms_) {
                logger().warn(
                    "MQTT session '{}' queue full ({} queued, {} in flight): dropping "
                    "(dropped so far {})",
                    client_id_, q.size(), inflight_.size(), dropped_);
                mgr_.log_rate_ms_ = now + 10000;  // at most one such line per 10 s
            }
            return;
        }
    }
    q.push_back(std::move(o));
    ++mgr_.total_queued;
    if (conn_ && &q == &pending_) send_pending();
}

void Session::send_pending() {
    if (!conn_) return;
    while (!pending_.empty()) {
        Outgoing& front = pending_.front();
        if (front.qos > 0 && inflight_.size() >= conn_->client_receive_max_) break;
        if (conn_->buffered() >= conn_->settings().max_buffered_bytes) {
            if (front.qos > 0) break;  // QoS 1/2 wait in the session queue
            pending_.pop_front();      // QoS 0 beyond the output limit is dropped
            --mgr_.total_queued;
            ++mgr_.dropped_qos0;
            continue;
        }
        Outgoing o = std::move(front);
        pending_.pop_front();
        if (o.qos > 0) o.packet_id = next_packet_id();
        bool sent = conn_->write_publish(o, false);
        if (sent && o.qos > 0)
            inflight_.push_back(std::move(o));
        else
            --mgr_.total_queued;
    }
    conn_->flush();
    // Deferred deliveries come again once half the queue they would join is free (never from
    // inside one of this link's deliveries: while blocked the core sends it none). Catching up
    // from the logs, that is the held queue, which empties when the catch-up ends.
    if (blocked_ && queue_for(true).size() <= max_queue_ / 2 &&
        mgr_.total_queued < mgr_.max_total_queued)
        unblock();
}

void Session::resend_inflight() {
    for (const auto& o : inflight_) {
        if (o.released)
            conn_->write_ack(PacketType::pubrel, o.packet_id, 0);
        else
            conn_->write_publish(o, true);
    }
}

bool Session::ack(uint16_t id, PacketType type, uint8_t code) {
    for (auto it = inflight_.begin(); it != inflight_.end(); ++it) {
        if (it->packet_id != id) continue;
        if (type == PacketType::puback && it->qos == 1) {
            inflight_.erase(it);
            mark_free(id);
            --mgr_.total_queued;
        } else if (type == PacketType::pubrec && it->qos == 2 && !it->released) {
            if (code >= 0x80) {
                inflight_.erase(it);
                mark_free(id);
                --mgr_.total_queued;
            } else {
                it->released = true;
                conn_->write_ack(PacketType::pubrel, id, 0);
            }
        } else if (type == PacketType::pubcomp && it->released) {
            inflight_.erase(it);
            mark_free(id);
            --mgr_.total_queued;
        } else {
            return false;
        }
        send_pending();
        return true;
    }
    return false;
}

// =============================================================================================
// Connection

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

Connection::Connection(SessionManager& mgr, const ListenerSettings& settings,
                       std::unique_ptr<Transport> t)
    : mgr_(mgr),
      settings_(settings),
      transport_(std::move(t)),
      last_packet_ms_(net::monotonic_ms()),  // keep-alive uses the real clock, not the core's
      log_id_(static_cast<uint32_t>(next_connection_log_id++)) {}

Connection::~Connection() = default;

void Connection::start() {
    transport_->start(*this);
}

void Connection::on_closed(bool error) {
    if (closed_) return;
    if (error) logger().debug("[M{}] socket error", log_id_);
    finish(true);  // no DISCONNECT: abnormal, the will is published
}

void Connection::on_writable() {
    if (finished_) return;
    if (close_after_write_) {
        finish(will_on_close_);
        return;
    }
    if (session_) session_->send_pending();  // room in the output again
    flush();
}

// Backpressure: the core has no room for our publishes; stop reading and let TCP hold them.
void Connection::pause_if_no_credit() {
    if (!paused_ && publish_port_ && publish_port_->link && publish_port_->credit <= 0 &&
        !closed_) {
        paused_ = true;
        transport_->set_reading(false);
    }
}

void Connection::on_data(std::string_view data) {
    std::string_view buf = data;
    bool own = !inbuf_.empty();
    if (own) {
        inbuf_.append(data);
        buf = inbuf_;
    }
    size_t pos = 0;
    uint64_t now = 0;  // read once per read, not per packet
    while (!closed_ && pos < buf.size()) {
        FrameInfo f = frame(buf.substr(pos), settings_.max_packet_size);
        if (f.status == FrameInfo::Status::need_more) break;
        if (!now) now = net::monotonic_ms();
        last_packet_ms_ = now;
        if (f.status == FrameInfo::Status::error) {
            protocol_error(f.reason, f.error);
            return;
        }
        if (!handle(buf.substr(pos, f.total_size))) return;
        pos += f.total_size;
    }
    if (closed_) return;
    // Keep only the incomplete tail (never more than one maximum-size packet).
    if (own)
        inbuf_.erase(0, pos);
    else
        inbuf_.assign(buf.substr(pos));
    if (inbuf_.empty() && inbuf_.capacity() > 4096) std::string().swap(inbuf_);
    flush();
    pause_if_no_credit();
}

bool Connection::protocol_error(uint8_t code, const std::string& why) {
    logger().info("[M{}] {} from {}: {} (closing{})", log_id_,
                  session_ ? "protocol error" : "bad connect", remote(), why,
                  level_ == v5 && session_ ? ", DISCONNECT reason " + std::to_string(code) : "");
    close_with(code, why, true);
    return false;
}

bool Connection::handle(std::string_view packet) {
    auto type = static_cast<PacketType>(static_cast<uint8_t>(packet[0]) >> 4);
    if (!session_ && type != PacketType::connect) {
        logger().info("[M{}] first packet from {} is not CONNECT: closing", log_id_, remote());
        finish(false);
        return false;
    }
    DecodeError err;
    if (type == PacketType::publish && session_) {
        // The per-message path: decoded into one reused Publish, no Packet.
        PublishScratch& pub = mgr_.publish_scratch_;
        if (!decode_publish(packet, level_, pub, err))
            return protocol_error(err.reason, err.message);
        return on_publish(pub.publish);
    }
    if ((type == PacketType::puback || type == PacketType::pubrec || type == PacketType::pubcomp) &&
        session_ && (packet[0] & 0x0f) == 0) {
        // The other per-message packet: a bare acknowledgement (remaining length 2, or 3 with
        // an MQTT 5 reason code) is read in place; anything else goes through decode().
        size_t n = packet.size();
        auto id = static_cast<uint16_t>(
            n >= 4 ? static_cast<uint8_t>(packet[2]) << 8 | static_cast<uint8_t>(packet[3]) : 0);
        if (id != 0 && ((n == 4 && packet[1] == 2) || (n == 5 && packet[1] == 3 && level_ == v5))) {
            session_->ack(id, type, n == 5 ? static_cast<uint8_t>(packet[4]) : reason::success);
            return true;
        }
    }
    auto p = decode(packet, session_ ? level_ : v5, err);
    if (!p) {
        if (!session_) {
            // A broken or unsupported CONNECT: answer in the client's protocol if we can tell.
            uint8_t lvl = packet.size() > 8 ? static_cast<uint8_t>(packet[8]) : 0;
            Connack ack;
            if (err.reason == reason::unsupported_protocol_version) {
                ack.code = lvl == v5 ? reason::unsupported_protocol_version : 0x01;
                std::string out;
                encode_connack(ack, lvl == v5 ? v5 : v311, out);
                out_ += out;
            } else if (lvl == v5) {
                ack.code = err.reason;
                encode_connack(ack, v5, out_);
            }
            logger().info("[M{}] CONNECT from {} refused: {}", log_id_, remote(), err.message);
            closed_ = true;
            flush_then_finish(false);
            return false;
        }
        return protocol_error(err.reason, err.message);
    }
    switch (p->type) {
        case PacketType::connect:
            if (session_) return protocol_error(reason::protocol_error, "second CONNECT");
            return on_connect(p->connect);
        case PacketType::publish:
            return on_publish(p->publish);
        case PacketType::puback:
        case PacketType::pubrec:
        case PacketType::pubcomp:
            session_->ack(p->ack.packet_id, p->type, p->ack.code);
            return true;
        case PacketType::pubrel: {
            auto& q2 = session_->incoming_qos2_;
            auto it = std::find(q2.begin(), q2.end(), p->ack.packet_id);
            bool known = it != q2.end();
            if (known) q2.erase(it);
            write_ack(
                PacketType::pubcomp, p->ack.packet_id,
                known || level_ != v5 ? reason::success : reason::packet_identifier_not_found);
            flush();
            return true;
        }
        case PacketType::subscribe:
            return on_subscribe(p->subscribe);
        case PacketType::unsubscribe:
            return on_unsubscribe(p->unsubscribe);
        case PacketType::pingreq:
            encode_pingresp(out_);
            flush();
            return true;
        case PacketType::disconnect: {
            disconnect_received_ = true;
            bool will = level_ == v5 && p->disconnect.code == reason::disconnect_with_will;
            if (level_ == v5 && p->disconnect.properties.session_expiry_interval) {
                uint32_t e = *p->disconnect.properties.session_expiry_interval;
                if (session_->expiry_interval_ == 0 && e != 0)
                    return protocol_error(reason::protocol_error,
                                          "session expiry set on DISCONNECT after 0 on CONNECT");
                session_->expiry_interval_ = std::min(e, settings_.max_session_expiry);
            }
            logger().debug("[M{}] DISCONNECT from client '{}' (reason {})", log_id_,
                           session_->client_id(), p->disconnect.code);
            finish(will);
            return false;
        }
        case PacketType::auth:
            return protocol_error(reason::protocol_error, "AUTH without an authentication method");
        default:
            return protocol_error(reason::protocol_error, "packet type a client must not send");
    }
}

bool Connection::on_connect(const Connect& c) {
    level_ = c.level;
    Connack ack;
    auto refuse = [&](uint8_t v5code, uint8_t v3code, const std::string& why) {
        ack.code = level_ == v5 ? v5code : v3code;
        encode_connack(ack, level_, out_);
        logger().info("[M{}] CONNECT from {} (client '{}') refused: {}", log_id_, remote(),
                      c.client_id, why);
        closed_ = true;
        flush_then_finish(false);
        return false;
    };
    if ((level_ == v311 && !settings_.allow_v311) || (level_ == v5 && !settings_.allow_v5))
        return refuse(reason::unsupported_protocol_version, 0x01, "protocol version not enabled");
    if (settings_.max_connections &&
        mgr_.connections_on(settings_.name) >= settings_.max_connections)
        return refuse(reason::quota_exceeded, 0x03, "listener connection limit reached");
    if (c.properties.authentication_method)
        return refuse(reason::bad_authentication_method, 0x05,
                      "enhanced authentication is not supported");
    std::string client_id = c.client_id;
    bool assigned = false;
    if (client_id.empty()) {
        if (level_ == v311 && !c.clean_start)
            return refuse(reason::client_identifier_not_valid, 0x02,
                          "empty client id without clean session");
        client_id = generated_client_id();
        assigned = true;
    }
    if (c.will) {
        if (!core::valid_topic_name(c.will->topic))
            return refuse(reason::topic_name_invalid, 0x05, "invalid will topic");
        if (c.will->properties.payload_format_indicator.value_or(0) == 1 &&
            !valid_utf8(c.will->payload))
            return refuse(reason::payload_format_invalid, 0x05, "will payload is not UTF-8");
    }
    keep_alive_ = c.keep_alive;
    // 3.1.1 clients announce no receive maximum: the listener's bounds what is in flight.
    client_receive_max_ = settings_.receive_maximum;
    if (level_ == v5) {
        client_receive_max_ = c.properties.receive_maximum.value_or(65535);
        client_max_packet_ = c.properties.maximum_packet_size.value_or(0);
        client_alias_max_ = c.properties.topic_alias_maximum.value_or(0);
        problem_info_ = c.properties.request_problem_information.value_or(1) == 1;
        if (settings_.max_keep_alive &&
            (keep_alive_ == 0 || keep_alive_ > settings_.max_keep_alive)) {
            keep_alive_ = settings_.max_keep_alive;
            ack.properties.server_keep_alive = keep_alive_;
        }
    }
    uint32_t expiry;
    if (level_ == v5) {
        expiry = c.properties.session_expiry_interval.value_or(0);
        if (expiry > settings_.max_session_expiry) {
            expiry = settings_.max_session_expiry;
            ack.properties.session_expiry_interval = expiry;
        }
    } else {
        expiry = c.clean_start ? 0 : settings_.max_session_expiry;
    }
    if (c.will) will_ = std::make_unique<Will>(*c.will);
    Connect effective = c;
    effective.client_id = client_id;
    bool present = false;
    session_ = mgr_.attach(*this, effective, expiry, present);
    if (will_) mgr_.hold_will(*this);

    ack.session_present = present;
    if (level_ == v5) {
        ack.properties.receive_maximum = settings_.receive_maximum;
        ack.properties.maximum_packet_size = settings_.max_packet_size;
        ack.properties.topic_alias_maximum = settings_.topic_alias_maximum;
        if (assigned) ack.properties.assigned_client_identifier = client_id;
    }
    encode_connack(ack, level_, out_);
    connack_sent_ = true;
    logger().info("[M{}] MQTT {} connection from {} opened (client '{}'{}, keep alive {}s{})",
                  log_id_, level_ == v5 ? "5" : "3.1.1", remote(), client_id,
                  c.clean_start ? ", clean start" : "", keep_alive_,
                  present ? ", session present" : "");
    session_->resend_inflight();
    session_->send_pending();
    flush();
    return true;
}

bool Connection::on_publish(Publish& p) {
    if (level_ == v5 && p.properties.topic_alias) {
        uint16_t a = *p.properties.topic_alias;
        if (a == 0 || a > settings_.topic_alias_maximum)
            return protocol_error(reason::topic_alias_invalid, "topic alias out of range");
        if (!in_aliases_) in_aliases_ = std::make_unique<std::vector<std::string>>();
        auto& aliases = *in_aliases_;
        if (p.topic.empty()) {
            if (a >= aliases.size() || aliases[a].empty())
                return protocol_error(reason::protocol_error, "unknown topic alias");
            p.topic = aliases[a];
        } else {
            if (aliases.size() <= a) aliases.resize(size_t(a) + 1);
            aliases[a] = p.topic;
        }
    }
    if (!core::valid_topic_name(p.topic))
        return protocol_error(reason::topic_name_invalid, "invalid topic name '" + p.topic + "'");
    if (p.properties.response_topic && !core::valid_topic_name(*p.properties.response_topic))
        return protocol_error(reason::protocol_error, "invalid response topic");
    if (p.qos > 0 && level_ == v5 && unacked_in_ >= settings_.receive_maximum)
        return protocol_error(reason::receive_maximum_exceeded,
                              "more unacknowledged QoS 1/2 publishes than the receive maximum");
    auto& q2 = session_->incoming_qos2_;
    if (p.qos == 2 && std::find(q2.begin(), q2.end(), p.packet_id) != q2.end()) {
        write_ack(PacketType::pubrec, p.packet_id, 0);  // a resend we already have
        flush();
        return true;
    }
    if (p.properties.payload_format_indicator.value_or(0) == 1 && !valid_utf8(p.payload)) {
        if (p.qos == 0)
            return protocol_error(reason::payload_format_invalid, "payload is not UTF-8");
        write_ack(p.qos == 1 ? PacketType::puback : PacketType::pubrec, p.packet_id,
                  reason::payload_format_invalid);
        flush();
        return true;
    }
    uint64_t expires = 0;
    if (p.properties.message_expiry_interval)
        expires = mgr_.now() + uint64_t(*p.properties.message_expiry_interval) * 1000;
    // Keep the message's own properties; aliases, subscription ids and expiry are per hop.
    p.properties.topic_alias.reset();
    p.properties.subscription_identifiers.clear();
    p.properties.message_expiry_interval.reset();
    std::string props;
    if (level_ == v5) encode_property_bytes(p.properties, props);
    core::MessageRef msg = make_message(p.topic, props, p.payload);
    msg->retain = p.retain;
    msg->qos = p.qos;
    msg->expires_at_ms = expires;
    if (p.qos == 2) q2.push_back(p.packet_id);
    ensure_publish_link();
    if (p.qos > 0) ++unacked_in_;
    void* handle =
        p.qos > 0 ? reinterpret_cast<void*>(uintptr_t(p.packet_id) << 2 | p.qos) : nullptr;
    --publish_port_->credit;
    mgr_.router().transfer(publish_port_->link, std::move(msg), p.topic, p.qos == 0, handle);
    return true;
}

uint64_t Connection::core_connection_id() const {
    return publish_port_ && publish_port_->core ? publish_port_->core->id() : 0;
}

// A client that only subscribes (or idles) costs no core objects: they come with its first
// PUBLISH.
void Connection::ensure_publish_link() {
    if ((publish_port_ && publish_port_->link) || !session_) return;
    core::Router& r = mgr_.router();
    if (!publish_port_) {
        publish_port_ = std::make_unique<PublishPort>(*this);
        core::ConnectionInfo info;
        info.protocol = "mqtt";
        info.host = remote();
        info.container_id = session_->client_id();
        info.listener = settings_.name;
        // Room for a full receive-maximum window of QoS 1/2 plus QoS 0 in flight: a client that
        // exceeds its window is caught (and told) rather than silently stopped.
        info.link_capacity = uint32_t(settings_.receive_maximum) + 250;
        publish_port_->core = r.connection_opened(std::move(info), *this);
    }
    core::AttachRequest req;
    req.direction = core::Direction::incoming;
    req.name = "mqtt-publish/" + session_->client_id();
    req.target.has_address = false;
    req.unconfigured_distribution = core::Distribution::multicast;
    req.owner = session_->owner_;
    r.attach(*publish_port_->core, req, *publish_port_, &publish_port_->link);
}

// The router could not take the message (Kafka refused it or is unavailable, a full queue), as
// opposed to a consumer rejecting it: an MQTT 3.1.1 client must not get a PUBACK for it.
static bool not_taken(const core::DeliveryState& s) {
    if (s.outcome != core::Outcome::rejected || !s.error) return false;
    return s.error->name == core::condition::internal_error ||
           s.error->name == core::condition::resource_limit ||
           s.error->description.rfind("Kafka: ", 0) == 0;
}

void Connection::acknowledge(uint16_t id, uint8_t qos, const core::DeliveryState& s) {
    if (closed_) return;
    if (unacked_in_) --unacked_in_;
    if (level_ != v5 && not_taken(s)) {
        // MQTT 3.1.1 has no negative acknowledgement: close without one so the client
        // publishes again after reconnecting. Deferred: this runs inside a core port call.
        logger().warn("[M{}] publish {} from client '{}' failed ({}): closing without ack", log_id_,
                      id, session_ ? session_->client_id() : std::string(), s.error->description);
        closed_ = true;
        asio::post(mgr_.loop_.io(), [self = self_] {
            if (self) self->finish(true);
        });
        return;
    }
    uint8_t code = level_ == v5 ? outcome_reason(s) : 0;
    if (qos == 1) {
        write_ack(PacketType::puback, id, code);
    } else {
        write_ack(PacketType::pubrec, id, code);
        if (code >= 0x80 && session_) {
            auto& q2 = session_->incoming_qos2_;
            q2.erase(std::remove(q2.begin(), q2.end(), id), q2.end());
        }
    }
    flush();
}

bool Connection::on_subscribe(const Subscribe& s) {
    Suback ack;
    ack.packet_id = s.packet_id;
    std::vector<std::pair<core::StoredSubscription, std::string>> retained;
    uint32_t sub_id = s.properties.subscription_identifiers.empty()
                          ? 0
                          : s.properties.subscription_identifiers[0];
    for (const auto& r : s.subscriptions) {
        core::SharedFilter sf;
        bool ok = core::parse_shared(r.filter, sf) && core::valid_topic_filter(sf.filter);
        if (!ok) {
            ack.codes.push_back(level_ == v5 ? reason::topic_filter_invalid : 0x80);
            continue;
        }
        if (!sf.group.empty() && r.no_local)
            return protocol_error(reason::protocol_error, "no local on a shared subscription");
        bool existed = session_->subs_.count(r.filter) > 0;
        core::StoredSubscription st{r.filter,          r.qos, r.no_local, r.retain_as_published,
                                    r.retain_handling, sub_id};
        session_->ensure_link();
        std::string err = mgr_.router().subscribe(session_->link_, r.filter, r.no_local);
        if (!err.empty()) {
            ack.codes.push_back(level_ == v5 ? reason::topic_filter_invalid : 0x80);
            continue;
        }
        session_->subs_[r.filter] = st;
        ack.codes.push_back(r.qos);
        if (sf.group.empty() && (r.retain_handling == 0 || (r.retain_handling == 1 && !existed)))
            retained.emplace_back(st, sf.filter);
    }
    encode_suback(ack, level_, out_);
    for (const auto& [st, filter] : retained) send_retained(st, filter);
    mgr_.save(*session_);
    flush();
    return true;
}

// Retained messages for a new subscription, flagged retained, with its identifier.
void Connection::send_retained(const core::StoredSubscription& st, const std::string& filter) {
    uint64_t now = mgr_.now();
    mgr_.router().retained().match(filter, [&](std::string_view topic, const core::MessageRef& m) {
        if (m->expires_at_ms && m->expires_at_ms <= now) return;
        core::MessageRef mq = m;
        if (m->format() != core::MessageFormat::mqtt) {
            mq = mapping::mqtt_from_amqp(*m, topic, now);
            if (!mq) return;
        }
        Session::Outgoing o;
        o.message = mq;
        o.qos = std::min(m->qos, st.qos);
        o.retain = true;
        if (st.subscription_id) o.subscription_ids.push_back(st.subscription_id);
        session_->enqueue(std::move(o));
    });
}

bool Connection::on_unsubscribe(const Unsubscribe& u) {
    Unsuback ack;
    ack.packet_id = u.packet_id;
    for (const auto& f : u.filters) {
        bool existed = session_->subs_.erase(f) > 0;
        if (session_->link_) mgr_.router().unsubscribe(session_->link_, f);
        ack.codes.push_back(existed ? reason::success : reason::no_subscription_existed);
    }
    encode_unsuback(ack, level_, out_);
    mgr_.save(*session_);
    flush();
    return true;
}

bool Connection::write_publish(const Session::Outgoing& o, bool dup) {
    MessageView v;
    if (!view_message(*o.message, v)) return false;
    const core::Message& m = *o.message;
    uint64_t now = mgr_.now();
    uint32_t expiry = 0;
    if (m.expires_at_ms) {
        if (m.expires_at_ms <= now) {
            ++mgr_.expired;
            return false;
        }
        expiry = static_cast<uint32_t>((m.expires_at_ms - now + 999) / 1000);
    }
    std::string_view topic = v.topic;
    uint16_t alias = 0;
    std::string extra;  // per-delivery properties
    if (level_ == v5) {
        if (expiry) {
            extra += char(prop::message_expiry_interval);
            extra += char(expiry >> 24);
            extra += char((expiry >> 16) & 0xff);
            extra += char((expiry >> 8) & 0xff);
            extra += char(expiry & 0xff);
        }
        for (uint32_t id : o.subscription_ids) {
            extra += char(prop::subscription_identifier);
            put_varint(id, extra);
        }
        if (client_alias_max_) {
            if (!out_aliases_)
                out_aliases_ = std::make_unique<std::unordered_map<std::string, uint16_t>>();
            auto& aliases = *out_aliases_;
            auto it = aliases.find(std::string(topic));
            if (it != aliases.end()) {
                alias = it->second;
                topic = {};
            } else if (aliases.size() < client_alias_max_) {
                alias = static_cast<uint16_t>(aliases.size() + 1);
                aliases.emplace(std::string(topic), alias);
            }
            if (alias) {
                extra += char(prop::topic_alias);
                extra += char(alias >> 8);
                extra += char(alias & 0xff);
            }
        }
    }
    size_t props_len = v.properties.size() + extra.size();
    size_t remaining = 2 + topic.size() + (o.qos ? 2 : 0) + v.payload.size();
    if (level_ == v5) remaining += varint_size(static_cast<uint32_t>(props_len)) + props_len;
    size_t total = 1 + varint_size(static_cast<uint32_t>(remaining)) + remaining;
    if (client_max_packet_ && total > client_max_packet_) {
        ++mgr_.oversized;  // the client said it cannot take it: discarded as if delivered
        return false;
    }
    out_.reserve(out_.size() + total);
    out_ += static_cast<char>(0x30 | (dup && o.qos ? 0x08 : 0) | (o.qos << 1) | (o.retain ? 1 : 0));
    put_varint(static_cast<uint32_t>(remaining), out_);
    out_ += static_cast<char>(topic.size() >> 8);
    out_ += static_cast<char>(topic.size() & 0xff);
    out_.append(topic);
    if (o.qos) {
        out_ += static_cast<char>(o.packet_id >> 8);
        out_ += static_cast<char>(o.packet_id & 0xff);
    }
    if (level_ == v5) {
        put_varint(static_cast<uint32_t>(props_len), out_);
        out_.append(v.properties);
        out_ += extra;
    }
    out_.append(v.payload);
    return true;
}

void Connection::write_ack(PacketType type, uint16_t id, uint8_t code) {
    encode_ack(type, id, code, level_, out_);
}

void Connection::flush() {
    if (out_.empty() || finished_ || flush_queued_ || !self_) return;
    flush_queued_ = true;
    if (mgr_.dirty_.empty() && !mgr_.flush_posted_) {
        mgr_.flush_posted_ = true;  // for output made outside the poller (AMQP, timers, WebSocket)
        asio::post(mgr_.loop_.io(), [&m = mgr_] {
            m.flush_posted_ = false;
            m.flush_dirty();
        });
    }
    mgr_.dirty_.push_back(self_);
}

void Connection::write_now() {
    if (out_.empty() || finished_) return;
    transport_->write(out_);
    out_.clear();
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
}

// Writes what is pending, then ends the connection (once the transport has sent it all).
void Connection::flush_then_finish(bool publish_will) {
    will_on_close_ = publish_will;
    close_after_write_ = true;
    write_now();
    if (transport_->buffered() == 0) finish(publish_will);
}

void Connection::close_with(uint8_t code, const std::string& why, bool publish_will) {
    if (closed_) return;
    closed_ = true;
    if (level_ == v5 && connack_sent_) {
        Disconnect d;
        d.code = code;
        if (problem_info_ && !why.empty()) d.properties.reason_string = why;
        encode_disconnect(d, v5, out_);
    }
    flush_then_finish(publish_will);
}

void Connection::finish(bool publish_will) {
    if (finished_) return;
    finished_ = closed_ = true;
    out_.clear();
    transport_->close();
    core::Router& r = mgr_.router();
    if (publish_port_) {
        if (core::Link* l = publish_port_->link) {
            publish_port_->link = nullptr;
            r.detach(l, nullptr);
        }
        if (core::Connection* cc = publish_port_->core) {
            publish_port_->core = nullptr;
            r.connection_closed(cc);
        }
    }
    if (session_)
        logger().info("[M{}] MQTT connection (client '{}') closed{}", log_id_,
                      session_->client_id(), disconnect_received_ ? "" : " without DISCONNECT");
    mgr_.detached(*this, publish_will);
}

// =============================================================================================
// SessionManager

class SessionManager::CorePort final : public core::ConnectionPort {
  public:
    core::LinkPort* open_link(core::Link&, const core::AttachRequest&,
                              core::ErrorCondition&) override {
        return nullptr;
    }
    void close(const core::ErrorCondition&) override {}
};

SessionManager::SessionManager(core::Router& router, net::EventLoop& loop,
                               core::SessionStore& sessions, core::WillStore& wills)
    : router_(router),
      loop_(loop),
      poller_(loop),
      store_(&sessions),
      wills_(&wills),
      ticker_(loop.io()) {
    core_port_ = std::make_unique<CorePort>();
    poller_.after_each_event([this] {
        if (!dirty_.empty()) flush_dirty();
    });
    core::ConnectionInfo info;
    info.protocol = "mqtt";
    info.role = "session-store";
    info.container_id = "mqtt-sessions";
    core_ = router_.connection_opened(std::move(info), *core_port_);
    schedule_tick();
}

void SessionManager::use_state(core::SessionStore& sessions, core::WillStore& wills,
                               core::MessageLogs* logs, uint64_t positions_refresh_ms) {
    positions_refresh_ms_ = positions_refresh_ms;
    store_->taken_elsewhere = nullptr;
    store_ = &sessions;
    wills_ = &wills;
    logs_ = logs;
    store_->taken_elsewhere = [this](const std::string& id) { taken_elsewhere(id); };
}

SessionManager::~SessionManager() {
    store_->taken_elsewhere = nullptr;
    ticker_.cancel();
    for_each_connection([](Connection& c) {
        c.finished_ = true;
        c.transport_->close();
        c.self_.reset();
    });
    for (auto& [id, s] : sessions_) delete s;
    sessions_.clear();
}

size_t SessionManager::connections_on(const std::string& listener) const {
    size_t n = 0;
    for (const Connection* c = first_; c; c = c->next_)
        n += c->connected() && c->settings().name == listener;
    return n;
}

void SessionManager::accept(const ListenerSettings& settings, std::unique_ptr<Transport> t) {
    if (stopping_) return;
    auto c = std::make_shared<Connection>(*this, settings, std::move(t));
    c->self_ = c;
    c->next_ = first_;
    if (first_) first_->prev_ = c.get();
    first_ = c.get();
    ++connection_count_;
    c->start();
}

void SessionManager::save(const Session& s) {
    write_record(s, false);
}

// Writes the session's record; `only_if_moved` (the periodic refresh): not when its positions
// are where they were last stored (the sum of their offsets), so an idle session costs none.
void SessionManager::write_record(const Session& s, bool only_if_moved) {
    s.positions_saved_ms_ = now();  // bookkeeping of what was stored (mutable)
    core::SessionRecord rec;
    if (!record_of(s, rec)) return;
    int64_t sum = 0;
    for (const auto& p : rec.positions) sum += p.offset;
    if (only_if_moved && sum == s.positions_sum_) return;
    s.positions_sum_ = sum;
    store_->save(rec);
}

bool SessionManager::record_of(const Session& s, core::SessionRecord& rec) const {
    if (s.expiry_interval_ == 0) return false;  // ends with its connection: nothing to keep
    rec.client_id = s.client_id_;
    rec.protocol_level = s.level_;
    rec.expiry_interval = s.expiry_interval_;
    for (const auto& [f, sub] : s.subs_) rec.subscriptions.push_back(sub);
    rec.disconnected_at_ms = s.conn_ ? 0 : now();
    if (logs_ && !s.subs_.empty()) {
        // Where it would catch up from elsewhere: the live feed's position, or the first
        // message it has not acknowledged, whichever is earlier (at least once).
        std::map<std::pair<uint32_t, int32_t>, int64_t> unacked;
        s.unacked_positions(unacked);
        for (auto p : logs_->live_positions()) {
            for (const auto& [k, off] : unacked)
                if (k.second == p.partition && logs_->log_name(k.first) == p.log)
                    p.offset = std::min(p.offset, off);
            rec.positions.push_back(std::move(p));
        }
        // Still catching up: what it has not read yet starts where the catch-up started.
        if (s.replay_)
            for (const auto& from : s.replay_from_) {
                auto it =
                    std::find_if(rec.positions.begin(), rec.positions.end(), [&](const auto& p) {
                        return p.log == from.log && p.partition == from.partition;
                    });
                if (it == rec.positions.end())
                    rec.positions.push_back(from);
                else
                    it->offset = std::min(it->offset, from.offset);
            }
    }
    return true;
}

// A session this instance does not hold, from the shared store (created at another instance,
// or before a restart): its subscriptions come back at once, and what it missed is caught up
// from the logs before live messages are sent.
Session* SessionManager::resume(const std::string& id, const core::SessionRecord& rec) {
    auto* s = new Session(*this, id, next_owner_++);
    sessions_.emplace(s->client_id(), s);
    for (const auto& sub : rec.subscriptions) {
        s->ensure_link();
        if (std::string err = router_.subscribe(s->link_, sub.filter, sub.no_local); !err.empty()) {
            logger().warn("MQTT session '{}': subscription '{}' not restored: {}", id, sub.filter,
                          err);
            continue;
        }
        s->subs_[sub.filter] = sub;
    }
    if (logs_ && !rec.positions.empty() && !s->subs_.empty()) {
        logger().info("MQTT session '{}' resumed from instance '{}': catching up from the logs", id,
                      rec.owner.empty() ? "?" : rec.owner);
        s->replay_from_ = rec.positions;
        s->replay_ = logs_->replay(
            rec.positions,
            [this, id](core::MessageRef m, std::string_view address) {
                auto it = sessions_.find(id);
                if (it != sessions_.end()) it->second->replayed(std::move(m), address);
            },
            [this, id] {
                auto it = sessions_.find(id);
                if (it == sessions_.end()) return;
                logger().info("MQTT session '{}' caught up", id);
                it->second->replay_done();
            });
    }
    return s;
}

void SessionManager::taken_elsewhere(const std::string& id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session* s = it->second;
    if (Connection* c = s->conn_) {
        s->conn_ = nullptr;
        c->session_ = nullptr;
        if (c->will_ && c->will_->properties.will_delay_interval.value_or(0) == 0) {
            // The old connection's will goes now, as for a takeover here (§3.1.4).
            if (auto w = will_record(*c)) router_.publish(w->topic, w->message);
        }
        c->will_.reset();
        logger().info("[M{}] client '{}' taken over by a connection at another instance",
                      c->log_id_, id);
        c->close_with(reason::session_taken_over, "Session taken over", false);
    }
    destroy(s, true);
}

Session* SessionManager::attach(Connection& c, const Connect& pkt, uint32_t expiry, bool& present) {
    const std::string& id = pkt.client_id;
    auto it = sessions_.find(id);
    Session* s = it == sessions_.end() ? nullptr : it->second;
    if (s && s->conn_) {
        // Takeover: the old connection goes; its will follows the will-delay rules (a
        // continuing session with a delay suppresses it).
        Connection* old = s->conn_;
        s->conn_ = nullptr;
        old->session_ = nullptr;
        if (old->will_) {
            uint32_t delay = old->will_->properties.will_delay_interval.value_or(0);
            if (pkt.clean_start || delay == 0)
                if (auto w = will_record(*old)) router_.publish(w->topic, w->message);
            old->will_.reset();
        }
        logger().info("[M{}] client '{}' taken over by a new connection", old->log_id_, id);
        old->close_with(reason::session_taken_over, "Session taken over", false);
    }
    // A will waiting for its delay: the client is back. Published now only if the session ends.
    if (auto w = wills_->take(id); w && (pkt.clean_start || !s))
        router_.publish(w->topic, w->message);
    if (s && pkt.clean_start) {
        destroy(s);
        s = nullptr;
    }
    if (!s) {
        // Held elsewhere (another instance, or this one before a restart)?
        if (auto rec = store_->load(id)) {
            bool expired = rec->disconnected_at_ms && rec->expiry_interval != never &&
                           rec->disconnected_at_ms + uint64_t(rec->expiry_interval) * 1000 <= now();
            if (pkt.clean_start || expired) {
                core::SessionRecord taken;  // taken here (its old holder lets it go), then ended
                taken.client_id = id;
                store_->save(taken);
            } else
                s = resume(id, *rec);
        }
    }
    present = s != nullptr;
    if (!s) {
        s = new Session(*this, id, next_owner_++);
        sessions_.emplace(s->client_id(), s);  // the key views the session's own string
    }
    s->conn_ = &c;
    s->level_ = pkt.level;
    s->expiry_interval_ = expiry;
    s->expires_at_ms_ = 0;
    s->max_queue_ = c.settings().max_session_queue;
    save(*s);
    return s;
}

std::optional<core::WillRecord> SessionManager::will_record(Connection& c) {
    if (!c.will_) return std::nullopt;
    const Will& w = *c.will_;
    Properties props = w.properties;
    uint32_t delay = props.will_delay_interval.value_or(0);
    props.will_delay_interval.reset();
    uint64_t expires = 0;
    if (props.message_expiry_interval)
        expires = now() + uint64_t(*props.message_expiry_interval) * 1000;
    props.message_expiry_interval.reset();
    std::string encoded;
    if (c.level_ == v5) encode_property_bytes(props, encoded);
    core::WillRecord rec;
    rec.client_id = c.session_ ? c.session_->client_id() : std::string();
    rec.topic = w.topic;
    rec.message = make_message(w.topic, encoded, w.payload);
    rec.message->retain = w.retain;
    rec.message->qos = w.qos;
    rec.message->expires_at_ms = expires;
    rec.due_ms = uint64_t(delay) * 1000;  // relative here
    return rec;
}

// The client is connected with a will: a shared store keeps it, published by another instance
// if this one dies.
void SessionManager::hold_will(Connection& c) {
    if (auto rec = will_record(c); rec && !rec->client_id.empty()) {
        rec->message->expires_at_ms = 0;  // its expiry counts from when it is published
        wills_->hold(*rec);
    }
}

void SessionManager::arm_will(Connection& c) {
    auto rec = will_record(c);
    if (!rec) return;
    rec->due_ms += now();
    if (rec->client_id.empty()) {
        router_.publish(rec->topic, rec->message);
        return;
    }
    wills_->arm(std::move(*rec));
}

void SessionManager::fire_will_now(const std::string& client_id) {
    if (auto w = wills_->take(client_id)) {
        logger().info("publishing the will of client '{}' to '{}'", client_id, w->topic);
        router_.publish(w->topic, w->message);
    }
}

void SessionManager::detached(Connection& c, bool publish_will) {
    Session* s = c.session_;
    c.session_ = nullptr;
    if (s && s->conn_ == &c) {
        if (publish_will && c.will_) {
            // Keep the session's id on the record: arm_will reads it from the session.
            c.session_ = s;
            arm_will(c);
            c.session_ = nullptr;
            if (c.will_->properties.will_delay_interval.value_or(0) == 0)
                fire_will_now(s->client_id());
        } else if (c.will_) {
            wills_->cancel(s->client_id());  // a normal end: no will, anywhere
        }
        s->conn_ = nullptr;
        if (s->blocked_) {
            // Offline: what it cannot keep is dropped, as before (after this handler: the core
            // is not re-entered from here).
            asio::post(loop_.io(), [this, id = s->client_id()] {
                if (auto it = sessions_.find(id); it != sessions_.end() && !it->second->conn_)
                    it->second->unblock();
            });
        }
        if (s->expiry_interval_ == 0) {
            fire_will_now(s->client_id());  // the session ends: a delayed will goes now
            destroy(s);
        } else {
            s->expires_at_ms_ = s->expiry_interval_ == never
                                    ? UINT64_MAX
                                    : now() + uint64_t(s->expiry_interval_) * 1000;
            // QoS 0 is not kept for offline sessions.
            for (auto it = s->pending_.begin(); it != s->pending_.end();) {
                if (it->qos == 0) {
                    it = s->pending_.erase(it);
                    --total_queued;
                    ++dropped_qos0;
                } else {
                    ++it;
                }
            }
            save(*s);
        }
    }
    c.will_.reset();
    if (c.self_) {
        if (c.prev_)
            c.prev_->next_ = c.next_;
        else
            first_ = c.next_;
        if (c.next_) c.next_->prev_ = c.prev_;
        c.prev_ = c.next_ = nullptr;
        --connection_count_;
        // We may be inside the connection's own handler: release it after this turn.
        asio::post(loop_.io(), [keep = std::move(c.self_)] {});
    }
}

bool SessionManager::end_session(const std::string& client_id) {
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) return false;
    Session* s = it->second;
    logger().info("MQTT session '{}' ended by management", client_id);
    if (Connection* c = s->conn_) {
        s->expiry_interval_ = 0;  // the session ends with its connection (detached() destroys it)
        c->close(core::ErrorCondition{core::condition::connection_forced,
                                      "session ended by management"});
        return true;
    }
    fire_will_now(client_id);
    destroy(s);
    return true;
}

void SessionManager::destroy(Session* s, bool forget) {
    if (s->link_) {
        core::Link* l = s->link_;
        s->link_ = nullptr;
        router_.detach(l, nullptr);
    }
    if (!forget) store_->erase(s->client_id_);
    sessions_.erase(s->client_id_);
    delete s;
}

void SessionManager::schedule_tick() {
    ticker_.expires_after(std::chrono::milliseconds(250));
    ticker_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        tick();
        schedule_tick();
    });
}

void SessionManager::tick() {
    loop_.begin_turn();  // wills published here are stamped with this turn
    uint64_t t = loop_.turn_us() / 1000;
    router_.set_now_ms(t);
    for (auto& w : wills_->take_due(t)) {
        logger().info("publishing the will of client '{}' to '{}'", w.client_id, w.topic);
        router_.publish(w.topic, w.message);
    }
    std::vector<Session*> expired_sessions;
    for (auto& [id, s] : sessions_) {
        if (!s->conn_ && s->expires_at_ms_ && s->expires_at_ms_ <= t) expired_sessions.push_back(s);
        s->pending_.trim();
        s->inflight_.trim();
        if (logs_ && s->conn_ && s->expiry_interval_ && !s->subs_.empty() &&
            t - s->positions_saved_ms_ >= positions_refresh_ms_)
            write_record(*s, true);
    }
    for (Session* s : expired_sessions) {
        logger().info("MQTT session '{}' expired", s->client_id());
        fire_will_now(s->client_id());
        destroy(s);
    }
    std::vector<std::shared_ptr<Connection>> overdue;
    for_each_connection([&](Connection& c) {
        if (c.closed_) return;
        if (!c.session_) {
            if (t - c.last_packet_ms_ > c.settings().connect_timeout_ms) overdue.push_back(c.self_);
        } else if (c.keep_alive_ && t - c.last_packet_ms_ > uint64_t(c.keep_alive_) * 1500) {
            overdue.push_back(c.self_);
        }
    });
    for (auto& c : overdue) {
        if (!c->session_) {
            logger().info("[M{}] no CONNECT from {} in time: closing", c->log_id_, c->remote());
            c->finish(false);
        } else {
            logger().info("[M{}] client '{}' silent for 1.5 x keep alive ({}s): closing",
                          c->log_id_, c->session_->client_id(), c->keep_alive_);
            c->close_with(reason::keep_alive_timeout, "Keep alive timeout", true);
        }
    }
}

void SessionManager::flush_dirty() {
    // Flushing can make more output elsewhere (a write completing frees room): bounded rounds.
    for (int round = 0; round < 4 && !dirty_.empty(); ++round) {
        flushing_.swap(dirty_);
        for (auto& c : flushing_) {
            c->flush_queued_ = false;
            c->write_now();
        }
        flushing_.clear();
    }
    if (!dirty_.empty() && !flush_posted_) {
        flush_posted_ = true;
        asio::post(loop_.io(), [this] {
            flush_posted_ = false;
            flush_dirty();
        });
    }
}

void SessionManager::shutdown() {
    stopping_ = true;
    ticker_.cancel();
    std::vector<std::shared_ptr<Connection>> all;
    for_each_connection([&](Connection& c) { all.push_back(c.self_); });
    // Wills stay unpublished on an orderly router shutdown: the clients did nothing wrong.
    for (auto& c : all) c->close_with(reason::server_shutting_down, "Server shutting down", false);
}

}  // namespace trestle::mqtt
