// What a session sends: its queues, packet ids, what is in flight and the QoS 2 handshake
// (PUBREC -> PUBREL -> PUBCOMP), and the PUBLISH packet as this client takes it.

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "mqtt/log.hpp"
#include "mqtt/message.hpp"
#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

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

}  // namespace trestle::mqtt
