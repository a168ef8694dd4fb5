// All sessions and connections of the MQTT listeners: accepting, saving and resuming
// sessions, ending them, and the periodic tick that runs the keepalive, will delay and session
// expiry checks.

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "mqtt/log.hpp"
#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

namespace asio = boost::asio;

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
                               core::SessionStore& sessions)
    : router_(router), loop_(loop), poller_(loop), store_(&sessions), ticker_(loop.io()) {
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

void SessionManager::use_state(core::SessionStore& sessions, core::MessageLogs* logs,
                               uint64_t positions_refresh_ms) {
    positions_refresh_ms_ = positions_refresh_ms;
    store_->taken_elsewhere = nullptr;
    store_ = &sessions;
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
            will_delay_.publish_now(*c);
        }
        c->will_.reset();
        logger().info("[M{}] client '{}' taken over by a connection at another instance",
                      c->log_id_, id);
        c->close_with(reason::session_taken_over, "Session taken over", false);
    }
    destroy(s, true);
}

void SessionManager::detached(Connection& c, bool publish_will) {
    Session* s = c.session_;
    c.session_ = nullptr;
    if (s && s->conn_ == &c) {
        if (publish_will && c.will_) {
            // Keep the session's id on the record: the will's record reads it from the session.
            c.session_ = s;
            will_delay_.arm(c);
            c.session_ = nullptr;
        } else if (c.will_) {
            will_delay_.cancel(s->client_id());  // a normal end: no will, anywhere
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
            will_delay_.fire_now(s->client_id());  // the session ends: a delayed will goes now
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
    will_delay_.fire_now(client_id);
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
    will_delay_.check(t);
    session_expiry_.check(t);
    keepalive_.check(t);
    for (auto& [id, s] : sessions_) {
        s->pending_.trim();
        s->inflight_.trim();
        if (logs_ && s->conn_ && s->expiry_interval_ && !s->subs_.empty() &&
            t - s->positions_saved_ms_ >= positions_refresh_ms_)
            write_record(*s, true);
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
