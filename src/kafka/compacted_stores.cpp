#include "kafka/compacted_stores.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <vector>

#include "mapping/kafka.hpp"
#include "trestle/core/topic_filter.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::KAFKA);
}

std::string_view header(const std::vector<mapping::HeaderView>& hs, std::string_view name) {
    for (const auto& [k, v] : hs)
        if (k == name) return v;
    return {};
}

int64_t to_int(std::string_view s, int64_t fallback = 0) {
    int64_t v = fallback;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() ? v : fallback;
}

rd_kafka_headers_t* make_headers(const std::vector<std::pair<std::string, std::string>>& hs) {
    rd_kafka_headers_t* h = rd_kafka_headers_new(hs.size());
    for (const auto& [k, v] : hs)
        rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
    return h;
}

// Headers of the sessions topic's records (the will's message keeps its own as any record).
namespace state_header {
constexpr std::string_view kind = "trestle.state";  // session | will | instance
constexpr std::string_view owner = "trestle.owner";
constexpr std::string_view generation = "trestle.generation";
constexpr std::string_view will_topic = "trestle.will.topic";
constexpr std::string_view will_armed = "trestle.will.armed";  // "true": due at will.due
constexpr std::string_view will_due = "trestle.will.due";      // epoch ms
constexpr std::string_view will_delay = "trestle.will.delay";  // seconds, while held
constexpr std::string_view claimed_from = "trestle.will.claimed-from";
}  // namespace state_header

constexpr std::string_view will_suffix = "#will";
constexpr std::string_view instance_suffix = "#instance";

bool is_state_header(std::string_view name) {
    return name == state_header::kind || name == state_header::owner ||
           name == state_header::generation || name.starts_with("trestle.will.");
}

}  // namespace

// =============================================================================================
// TopicView

TopicView::TopicView(net::EventLoop& loop, rd_kafka_t* producer, Properties consumer_props,
                     std::string topic, std::string what,
                     std::function<void(const rd_kafka_message_t*)> apply)
    : loop_(loop),
      producer_(producer),
      consumer_props_(std::move(consumer_props)),
      topic_(std::move(topic)),
      what_(std::move(what)),
      apply_(std::move(apply)) {}

TopicView::~TopicView() {
    detach();
}

std::string TopicView::load(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    // The partitions, through the producer (which may auto-create the topic).
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_, topic_.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    int partitions = 0;
    if (!err && md && md->topic_cnt == 1 && !md->topics[0].err)
        partitions = md->topics[0].partition_cnt;
    std::string why = err ? rd_kafka_err2str(err)
                      : md && md->topic_cnt == 1 && md->topics[0].err
                          ? rd_kafka_err2str(md->topics[0].err)
                          : "";
    if (md) rd_kafka_metadata_destroy(md);
    if (partitions == 0) return what_ + " topic '" + topic_ + "' unavailable: " + why;

    // A group id only enables librdkafka's consumer queue: partitions are assigned, never
    // subscribed, and nothing is committed.
    Properties defaults{{"group.id", "trestle.state-view"}, {"enable.auto.commit", "false"},
                        {"enable.partition.eof", "false"},  {"client.id", "trestle-state"},
                        {"fetch.wait.max.ms", "100"},       {"reconnect.backoff.max.ms", "1000"}};
    if (std::string e = make_consumer(defaults, consumer_props_, consumer_, queue_); !e.empty())
        return e;
    rd_kafka_t* rk = consumer_.get();

    // Where each partition ends now: loading is done when every one is read up to there.
    std::map<int32_t, int64_t> end;
    PartitionList all(rd_kafka_topic_partition_list_new(partitions));
    for (int32_t p = 0; p < partitions; ++p) {
        rd_kafka_topic_partition_list_add(all.get(), topic_.c_str(), p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic_.c_str(), p, &lo, &hi, timeout_ms))
            return what_ + " topic '" + topic_ + "': no offsets for partition " + std::to_string(p);
        if (hi > lo) end[p] = hi;
    }
    rd_kafka_assign(rk, all.get());
    size_t n = 0;
    while (!end.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        rd_kafka_message_t* m =
            rd_kafka_consumer_poll(rk, static_cast<int>(std::min<int64_t>(left.count(), 100)));
        if (!m) continue;
        if (!m->err) {
            apply_(m);
            ++n;
            auto it = end.find(m->partition);
            if (it != end.end() && m->offset + 1 >= it->second) end.erase(it);
        }
        rd_kafka_message_destroy(m);
    }
    waker_ = std::make_unique<QueueWaker>(loop_, queue_, [this] { return serve(); });
    if (!end.empty())
        return what_ + " topic '" + topic_ + "' not read to its end in time (" + std::to_string(n) +
               " records read); continuing in the background";
    logger().debug("{}: topic '{}' read to its end ({} records)", what_, topic_, n);
    return {};
}

void TopicView::detach() {
    waker_.reset();
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
    if (queue_) rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    consumer_.reset();
    producer_ = nullptr;
}

bool TopicView::serve() {
    if (!consumer_) return false;
    int n = 0;
    for (; n < 256; ++n) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 0);
        if (!m) break;
        if (!m->err) apply_(m);
        rd_kafka_message_destroy(m);
    }
    return n == 256;
}

void TopicView::produce(std::string_view key, const std::string* value,
                        rd_kafka_headers_t* headers) {
    if (!producer_) {
        if (headers) rd_kafka_headers_destroy(headers);
        return;
    }
    rd_kafka_resp_err_t err;
    if (headers)
        err = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                             value ? value->size() : 0),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(nullptr), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic_.c_str()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(key.data(), key.size()),
                                RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                                                 value ? value->size() : 0),
                                RD_KAFKA_V_OPAQUE(nullptr), RD_KAFKA_V_END);
    if (err) {
        if (headers) rd_kafka_headers_destroy(headers);
        logger().error("{}: record for '{}' not written to Kafka: {}", what_, key,
                       rd_kafka_err2str(err));
    }
}

// =============================================================================================
// KafkaRetainedStore

std::string KafkaRetainedStore::load(int timeout_ms) {
    std::string err = topic_.load(timeout_ms);
    if (err.empty())
        logger().info("retained messages: {} loaded from topic '{}'", view_.size(), topic_.topic());
    return err;
}

KafkaRetainedStore::KafkaRetainedStore(net::EventLoop& loop, rd_kafka_t* producer,
                                       Properties consumer_props, std::string topic,
                                       std::function<uint64_t()> now_ms)
    : now_ms_(std::move(now_ms)),
      topic_(loop, producer, std::move(consumer_props), std::move(topic), "retained messages",
             [this](const rd_kafka_message_t* m) { apply(m); }) {}

void KafkaRetainedStore::apply(const rd_kafka_message_t* m) {
    if (!m->key) return;
    std::string_view topic(static_cast<const char*>(m->key), m->key_len);
    if (!m->payload) {  // a tombstone
        view_.erase(topic);
        return;
    }
    std::vector<mapping::HeaderView> headers = record_headers(m);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    bool expired = false;
    core::MessageRef msg = mapping::message_from_record(
        topic, std::string_view(static_cast<const char*>(m->payload), m->len), headers,
        ts > 0 ? ts : 0, now_ms_(), epoch_ms(), expired);
    if (!msg) {
        view_.erase(topic);  // expired (or unreadable): nothing retained any more
        return;
    }
    msg->retain = true;
    view_.put(topic, std::move(msg));
}

void KafkaRetainedStore::put(std::string_view topic, core::MessageRef m) {
    view_.put(topic, m);
    if (!topic_.writable()) return;
    mapping::KafkaRecord r;
    if (!mapping::record_from_message(*m, topic, {}, now_ms_(), epoch_ms(), r)) return;
    topic_.produce(r.key, &r.value, make_headers(r.headers));
}

void KafkaRetainedStore::erase(std::string_view topic) {
    view_.erase(topic);
    topic_.produce(topic, nullptr, nullptr);
}

// =============================================================================================
// KafkaSessionState

KafkaSessionState::KafkaSessionState(net::EventLoop& loop, rd_kafka_t* producer,
                                     Properties consumer_props, std::string topic,
                                     std::string router_id, uint32_t instance_timeout_ms,
                                     std::function<uint64_t()> now_ms)
    : router_id_(std::move(router_id)),
      instance_timeout_ms_(instance_timeout_ms),
      // Several heartbeats per timeout, so a short delay is never taken for a death.
      heartbeat_ms_(std::clamp<uint64_t>(instance_timeout_ms / 4, 250, 2000)),
      now_ms_(std::move(now_ms)),
      topic_(loop, producer, std::move(consumer_props), std::move(topic), "MQTT sessions and wills",
             [this](const rd_kafka_message_t* m) { apply(m); }) {}

KafkaSessionState::~KafkaSessionState() {
    topic_.detach();
}

std::string KafkaSessionState::load(int timeout_ms) {
    started_ms_ = now_ms_();
    tick();  // heartbeat first: others see this instance before its clients
    std::string err = topic_.load(timeout_ms);
    loading_ = false;
    // Wills this instance owned before it restarted: their connections are gone.
    for (const auto& [id, w] : wills_) {
        if (w.owner != router_id_ || !w.message) continue;
        core::WillRecord rec;
        rec.client_id = id;
        rec.topic = w.topic;
        rec.message = w.message;
        rec.due_ms = w.armed ? to_core(w.due_epoch) : now_ms_() + uint64_t(w.delay_s) * 1000;
        local_.arm(std::move(rec));
    }
    if (err.empty())
        logger().info("MQTT sessions: {} sessions and {} wills in Kafka, {} instances known",
                      sessions_.size(), wills_.size(), instances_.size());
    return err;
}

void KafkaSessionState::detach() {
    // Clients connected here at an orderly shutdown did nothing wrong: their wills go. Armed
    // ones (connections already lost, waiting for their delay) stay for another instance.
    std::vector<std::string> held;
    for (const auto& [id, w] : wills_)
        if (w.owner == router_id_ && !w.armed) held.push_back(id);
    for (const auto& id : held) write_will_tombstone(id);
    std::string key = router_id_ + std::string(instance_suffix);
    topic_.produce(key, nullptr, make_headers({{std::string(state_header::kind), "instance"}}));
    topic_.detach();
}

int64_t KafkaSessionState::to_epoch(uint64_t core_ms) const {
    return epoch_ms() - static_cast<int64_t>(now_ms_() - std::min(core_ms, now_ms_()));
}

uint64_t KafkaSessionState::to_core(int64_t epoch) const {
    int64_t ago = std::max<int64_t>(0, epoch_ms() - epoch);
    uint64_t now = now_ms_();
    return now > uint64_t(ago) ? now - uint64_t(ago) : 1;
}

// An instance is gone when its heartbeat has not been read here for the timeout (measured on
// this instance's clock, so clock skew between machines does not matter).
// Only while this instance reads its own heartbeats back, and has for the timeout, does a
// silent instance count as gone: after a Kafka outage every instance is silent for a while.
bool KafkaSessionState::gone(const std::string& instance) const {
    if (instance == router_id_) return false;
    uint64_t now = now_ms_();
    if (!own_seen_ms_ || now - own_seen_ms_ > gap_ms() ||
        now - flowing_since_ms_ < instance_timeout_ms_)
        return false;
    auto it = instances_.find(instance);
    uint64_t seen = it == instances_.end() ? started_ms_ : it->second.seen_ms;
    return now - std::min(now, seen) > instance_timeout_ms_;
}

void KafkaSessionState::tick() {
    uint64_t now = now_ms_();
    if (now >= next_heartbeat_ms_ && topic_.writable()) {
        next_heartbeat_ms_ = now + heartbeat_ms_;
        std::string value = json::dump(json::Object{{"at", json::Value(epoch_ms())}});
        topic_.produce(router_id_ + std::string(instance_suffix), &value,
                       make_headers({{std::string(state_header::kind), "instance"}}));
    }
    if (loading_ || !topic_.writable()) return;
    if (now >= next_sweep_ms_) {
        next_sweep_ms_ = now + 10000;
        sweep();
    }
    for (auto& [id, w] : wills_) {
        if (w.owner == router_id_ || !gone(w.owner) || claimed_.count({id, w.owner})) continue;
        claimed_.insert({id, w.owner});
        auto inst = instances_.find(w.owner);
        int64_t ended = inst != instances_.end() && inst->second.last_epoch
                            ? inst->second.last_epoch
                            : epoch_ms();
        int64_t due = w.armed ? w.due_epoch : ended + int64_t(w.delay_s) * 1000;
        logger().info("will of client '{}': instance '{}' is gone, claiming it", id, w.owner);
        core::WillRecord rec;
        rec.client_id = id;
        rec.topic = w.topic;
        rec.message = w.message;
        write_will(id, rec, true, due, 0, w.owner);
    }
}

// Sessions nobody holds any more (their instance is gone, or it is this one before a restart)
// are deleted once they expire; a live instance expires its own.
void KafkaSessionState::sweep() {
    int64_t now = epoch_ms();
    std::vector<std::string> expired;
    for (const auto& [id, s] : sessions_) {
        const core::SessionRecord& r = s.record;
        if (!s.previous_run && (r.owner == router_id_ || !gone(r.owner))) continue;
        if (r.expiry_interval == 0xFFFFFFFF) continue;
        int64_t since = s.disconnected_epoch;
        if (!since) {
            auto inst = instances_.find(r.owner);
            since = inst != instances_.end() && inst->second.last_epoch ? inst->second.last_epoch
                                                                        : to_epoch(started_ms_);
        }
        if (since + int64_t(r.expiry_interval) * 1000 <= now) expired.push_back(id);
    }
    for (const auto& id : expired) {
        auto it = sessions_.find(id);
        uint64_t generation = it->second.generation;
        std::string owner = it->second.record.owner;
        sessions_.erase(it);
        logger().info("MQTT session '{}' (instance '{}') expired", id, owner);
        topic_.produce(
            id, nullptr,
            make_headers({{std::string(state_header::kind), "session"},
                          {std::string(state_header::owner), owner},
                          {std::string(state_header::generation), std::to_string(generation)}}));
    }
}

// --- records ---------------------------------------------------------------------------------

void KafkaSessionState::apply(const rd_kafka_message_t* m) {
    if (!m->key) return;
    std::string key(static_cast<const char*>(m->key), m->key_len);
    std::vector<mapping::HeaderView> hs = record_headers(m);
    std::string_view kind = header(hs, state_header::kind);
    std::string owner(header(hs, state_header::owner));
    if (kind == "instance" && key.ends_with(instance_suffix)) {
        std::string id = key.substr(0, key.size() - instance_suffix.size());
        if (!m->payload) {
            instances_.erase(id);  // left in order (gone at once for its wills)
            if (!loading_) logger().info("instance '{}' left", id);
            return;
        }
        json::Value v;
        json::ParseError err;
        int64_t at = 0;
        if (json::parse(std::string_view(static_cast<const char*>(m->payload), m->len), v, err))
            if (const json::Value* a = v.find("at"); a && a->is_int()) at = a->as_int();
        // A heartbeat read while loading may be old: count it from its own time.
        Instance& inst = instances_[id];
        inst.last_epoch = at;
        inst.seen_ms = loading_ && at ? to_core(at) : now_ms_();
        if (id == router_id_ && !loading_) {
            uint64_t now = now_ms_();
            if (!own_seen_ms_ || now - own_seen_ms_ > gap_ms()) flowing_since_ms_ = now;
            own_seen_ms_ = now;
        }
        return;
    }
    if (kind == "will" && key.ends_with(will_suffix)) {
        apply_will(key.substr(0, key.size() - will_suffix.size()), m, hs, owner);
        return;
    }
    if (kind == "session") {
        apply_session(key, m, static_cast<uint64_t>(to_int(header(hs, state_header::generation))),
                      owner);
        return;
    }
}

void KafkaSessionState::apply_session(const std::string& id, const rd_kafka_message_t* m,
                                      uint64_t generation, const std::string& owner) {
    auto it = sessions_.find(id);
    // A write from an instance that had not yet seen a takeover: stale.
    if (it != sessions_.end() && generation < it->second.generation) return;
    if (!m->payload) {
        if (it != sessions_.end()) sessions_.erase(it);
        return;
    }
    json::Value v;
    json::ParseError err;
    if (!json::parse(std::string_view(static_cast<const char*>(m->payload), m->len), v, err) ||
        !v.is_object()) {
        logger().warn("MQTT sessions: record of '{}' unreadable: {}", id, err.message);
        return;
    }
    Session s;
    s.generation = generation;
    s.record.client_id = id;
    s.record.owner = owner;
    auto num = [&](std::string_view k) -> int64_t {
        const json::Value* x = v.find(k);
        return x && x->is_int() ? x->as_int() : 0;
    };
    s.record.protocol_level = static_cast<uint8_t>(num("level"));
    s.record.expiry_interval = static_cast<uint32_t>(num("expiry"));
    s.disconnected_epoch = num("disconnectedAt");
    if (const json::Value* subs = v.find("subscriptions"); subs && subs->is_array())
        for (const auto& x : subs->as_array()) {
            if (!x.is_object()) continue;
            core::StoredSubscription sub;
            auto f = x.find("filter");
            if (!f || !f->is_string()) continue;
            sub.filter = f->as_string();
            auto n = [&](std::string_view k) -> int64_t {
                const json::Value* y = x.find(k);
                return y && y->is_int() ? y->as_int() : 0;
            };
            sub.qos = static_cast<uint8_t>(n("qos"));
            sub.no_local = n("noLocal") != 0;
            sub.retain_as_published = n("retainAsPublished") != 0;
            sub.retain_handling = static_cast<uint8_t>(n("retainHandling"));
            sub.subscription_id = static_cast<uint32_t>(n("id"));
            s.record.subscriptions.push_back(std::move(sub));
        }
    if (const json::Value* ps = v.find("positions"); ps && ps->is_array())
        for (const auto& x : ps->as_array()) {
            const json::Value* t = x.find("topic");
            const json::Value* p = x.find("partition");
            const json::Value* o = x.find("offset");
            if (!t || !t->is_string() || !p || !p->is_int() || !o || !o->is_int()) continue;
            s.record.positions.push_back(
                {t->as_string(), static_cast<int32_t>(p->as_int()), o->as_int()});
        }
    bool taken = owner != router_id_ && it != sessions_.end() &&
                 it->second.record.owner == router_id_ && generation > it->second.generation;
    logger().debug("MQTT sessions: '{}' at instance '{}' (generation {}, {})", id, owner,
                   generation, s.disconnected_epoch ? "offline" : "connected");
    s.previous_run = loading_ && owner == router_id_;
    sessions_[id] = std::move(s);
    if (taken && !loading_ && taken_elsewhere) {
        logger().info("MQTT session '{}' taken over by instance '{}'", id, owner);
        taken_elsewhere(id);
    }
}

void KafkaSessionState::apply_will(const std::string& id, const rd_kafka_message_t* m,
                                   const std::vector<mapping::HeaderView>& hs,
                                   const std::string& owner) {
    std::string_view from = header(hs, state_header::claimed_from);
    auto it = wills_.find(id);
    if (!from.empty()) {
        // A claim counts only if it is the first for that owner's will Kafka ordered.
        if (it == wills_.end() || it->second.owner != from) return;
    }
    if (!m->payload) {
        if (it != wills_.end()) wills_.erase(it);
        // Cancelled or published by another instance: nothing for this one to publish.
        if (owner != router_id_) local_.cancel(id);
        return;
    }
    Will w;
    w.owner = owner;
    w.topic.assign(header(hs, state_header::will_topic));
    w.armed = header(hs, state_header::will_armed) == "true";
    w.due_epoch = to_int(header(hs, state_header::will_due));
    w.delay_s = static_cast<uint32_t>(to_int(header(hs, state_header::will_delay)));
    std::vector<mapping::HeaderView> message_headers;
    for (const auto& h : hs)
        if (!is_state_header(h.first)) message_headers.push_back(h);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    bool expired = false;
    w.message = mapping::message_from_record(
        w.topic, std::string_view(static_cast<const char*>(m->payload), m->len), message_headers,
        ts > 0 ? ts : 0, now_ms_(), epoch_ms(), expired);
    if (!w.message && !expired) {
        logger().warn("MQTT wills: will of '{}' unreadable", id);
        return;
    }
    if (owner != router_id_) {
        local_.cancel(id);  // the client is at another instance now, or another one publishes it
    } else if (!from.empty() && w.message && !loading_) {
        // Our claim won: this instance publishes it when due.
        core::WillRecord rec;
        rec.client_id = id;
        rec.topic = w.topic;
        rec.message = w.message;
        rec.due_ms = to_core(w.due_epoch);
        logger().info("will of client '{}' (instance '{}' gone) will be published here", id, from);
        local_.arm(std::move(rec));
    }
    if (!w.message) {  // expired while waiting: nobody publishes it
        wills_.erase(id);
        return;
    }
    logger().debug("MQTT wills: will of '{}' at instance '{}' ({})", id, owner,
                   w.armed ? "armed" : "held");
    wills_[id] = std::move(w);
}

// --- sessions --------------------------------------------------------------------------------

void KafkaSessionState::save(const core::SessionRecord& r) {
    uint64_t generation = 1;
    if (auto it = sessions_.find(r.client_id); it != sessions_.end())
        generation = it->second.generation + (it->second.record.owner == router_id_ ? 0 : 1);
    Session s;
    s.record = r;
    s.record.owner = router_id_;
    s.generation = generation;
    s.disconnected_epoch = r.disconnected_at_ms ? to_epoch(r.disconnected_at_ms) : 0;
    json::Array subs;
    for (const auto& sub : r.subscriptions)
        subs.push_back(
            json::Object{{"filter", json::Value(sub.filter)},
                         {"qos", json::Value(int(sub.qos))},
                         {"noLocal", json::Value(int(sub.no_local))},
                         {"retainAsPublished", json::Value(int(sub.retain_as_published))},
                         {"retainHandling", json::Value(int(sub.retain_handling))},
                         {"id", json::Value(int64_t(sub.subscription_id))}});
    json::Array positions;
    for (const auto& p : r.positions)
        positions.push_back(json::Object{{"topic", json::Value(p.log)},
                                         {"partition", json::Value(int(p.partition))},
                                         {"offset", json::Value(p.offset)}});
    std::string value =
        json::dump(json::Object{{"level", json::Value(int(r.protocol_level))},
                                {"expiry", json::Value(int64_t(r.expiry_interval))},
                                {"disconnectedAt", json::Value(s.disconnected_epoch)},
                                {"subscriptions", json::Value(std::move(subs))},
                                {"positions", json::Value(std::move(positions))}});
    sessions_[r.client_id] = std::move(s);
    topic_.produce(
        r.client_id, &value,
        make_headers({{std::string(state_header::kind), "session"},
                      {std::string(state_header::owner), router_id_},
                      {std::string(state_header::generation), std::to_string(generation)}}));
}

std::optional<core::SessionRecord> KafkaSessionState::load(std::string_view client_id) const {
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) return std::nullopt;
    core::SessionRecord r = it->second.record;
    int64_t since = it->second.disconnected_epoch;
    if (!since && r.owner != router_id_ && gone(r.owner)) {
        // Connected at an instance that died: disconnected when it was last heard of.
        auto inst = instances_.find(r.owner);
        since = inst != instances_.end() && inst->second.last_epoch ? inst->second.last_epoch
                                                                    : epoch_ms();
    }
    r.disconnected_at_ms = since ? to_core(since) : 0;
    return r;
}

void KafkaSessionState::erase(std::string_view client_id) {
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) return;
    // Only the serving instance deletes a session (another one may have taken it meanwhile).
    if (it->second.record.owner != router_id_) return;
    uint64_t generation = it->second.generation;
    sessions_.erase(it);
    topic_.produce(
        client_id, nullptr,
        make_headers({{std::string(state_header::kind), "session"},
                      {std::string(state_header::owner), router_id_},
                      {std::string(state_header::generation), std::to_string(generation)}}));
}

// --- wills -----------------------------------------------------------------------------------

void KafkaSessionState::write_will(const std::string& id, const core::WillRecord& w, bool armed,
                                   int64_t due_epoch, uint32_t delay_s,
                                   const std::string& claimed_from) {
    mapping::KafkaRecord r;
    if (!w.message ||
        !mapping::record_from_message(*w.message, w.topic, {}, now_ms_(), epoch_ms(), r))
        return;
    r.headers.emplace_back(state_header::kind, "will");
    r.headers.emplace_back(state_header::owner, router_id_);
    r.headers.emplace_back(state_header::will_topic, w.topic);
    if (armed) {
        r.headers.emplace_back(state_header::will_armed, "true");
        r.headers.emplace_back(state_header::will_due, std::to_string(due_epoch));
    } else {
        r.headers.emplace_back(state_header::will_delay, std::to_string(delay_s));
    }
    if (!claimed_from.empty()) r.headers.emplace_back(state_header::claimed_from, claimed_from);
    if (claimed_from.empty()) {
        // Our own will: the view has it at once (a claim waits for Kafka's order).
        Will v;
        v.owner = router_id_;
        v.topic = w.topic;
        v.message = w.message;
        v.armed = armed;
        v.due_epoch = due_epoch;
        v.delay_s = delay_s;
        wills_[id] = std::move(v);
    }
    topic_.produce(id + std::string(will_suffix), &r.value, make_headers(r.headers));
}

void KafkaSessionState::write_will_tombstone(const std::string& id) {
    wills_.erase(id);
    topic_.produce(id + std::string(will_suffix), nullptr,
                   make_headers({{std::string(state_header::kind), "will"},
                                 {std::string(state_header::owner), router_id_}}));
}

void KafkaSessionState::WillPort::hold(const core::WillRecord& w) {
    // due_ms carries the delay here (the will is not armed while the client is connected).
    s_.write_will(w.client_id, w, false, 0, static_cast<uint32_t>(w.due_ms / 1000), {});
}

void KafkaSessionState::WillPort::arm(core::WillRecord w) {
    s_.write_will(w.client_id, w, true, s_.to_epoch(w.due_ms), 0, {});
    s_.local_.arm(std::move(w));
}

bool KafkaSessionState::WillPort::cancel(std::string_view client_id) {
    bool had = s_.local_.cancel(client_id);
    if (s_.wills_.count(client_id)) s_.write_will_tombstone(std::string(client_id));
    return had;
}

std::optional<core::WillRecord> KafkaSessionState::WillPort::take(std::string_view client_id) {
    auto w = s_.local_.take(client_id);
    // A will another instance keeps for this client is cancelled too: the client is here.
    if (s_.wills_.count(client_id)) s_.write_will_tombstone(std::string(client_id));
    return w;
}

std::vector<core::WillRecord> KafkaSessionState::WillPort::take_due(uint64_t now_ms) {
    auto due = s_.local_.take_due(now_ms);
    for (const auto& w : due) s_.write_will_tombstone(w.client_id);
    return due;
}

}  // namespace trestle::kafka
