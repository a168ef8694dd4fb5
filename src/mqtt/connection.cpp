// One MQTT network connection: reading packets off its transport, dispatching them to the
// handle_* acts, writing and closing.

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "mqtt/log.hpp"
#include "mqtt/publish_port.hpp"
#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

namespace asio = boost::asio;

namespace {
uint64_t next_connection_log_id = 1;
}  // namespace

// =============================================================================================
// Connection

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
        case PacketType::pubrel:
            return on_pubrel(p->ack.packet_id);
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

uint64_t Connection::core_connection_id() const {
    return publish_port_ && publish_port_->core ? publish_port_->core->id() : 0;
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

}  // namespace trestle::mqtt
