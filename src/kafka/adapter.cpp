#include "kafka/adapter.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "kafka/embedded.hpp"
#include "kafka/eventhubs_nodes.hpp"
#include "kafka/fetch_thread.hpp"
#include "kafka/probe.hpp"
#include "kafka/state.hpp"
#include "mapping/direct.hpp"
#include "trestle/core/address_pattern.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::KAFKA);
}
}  // namespace

namespace asio = boost::asio;

namespace {

// The AMQP condition a producer sees when Kafka refuses its message.
core::ErrorCondition condition_for(rd_kafka_resp_err_t err) {
    std::string what = "Kafka: " + error_text(err);
    switch (err) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
            return {"amqp:unauthorized-access", what};
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
            return {"amqp:link:message-size-exceeded", what};
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
            return {core::condition::not_found, what};
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return {core::condition::resource_limit, what};
        default:
            // Timeouts, brokers down, a fatal producer: worth sending again.
            return {core::condition::internal_error, what};
    }
}

rd_kafka_headers_t* to_headers(const mapping::KafkaRecord& r) {
    if (r.headers.empty()) return nullptr;
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers)
        rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
    return h;
}

// By topic handle (a route's own topic) or, without one, by name (a client's direct topic, a
// dead letter). A record without a timestamp of its own gets librdkafka's clock, as on the
// producer thread: one rule for every record.
rd_kafka_resp_err_t produce(rd_kafka_t* rk, rd_kafka_topic_t* rkt, const std::string& topic,
                            const mapping::KafkaRecord& r, void* opaque,
                            int32_t partition = RD_KAFKA_PARTITION_UA) {
    rd_kafka_headers_t* h = to_headers(r);
    rd_kafka_vu_t vu[8];
    if (rkt) {
        vu[0].vtype = RD_KAFKA_VTYPE_RKT;
        vu[0].u.rkt = rkt;
    } else {
        vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[0].u.cstr = topic.c_str();
    }
    vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[1].u.i32 = partition;
    vu[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[2].u.i = RD_KAFKA_MSG_F_COPY;
    vu[3].vtype = RD_KAFKA_VTYPE_KEY;
    vu[3].u.mem = {r.has_key ? const_cast<char*>(r.key.data()) : nullptr,
                   r.has_key ? r.key.size() : 0};
    vu[4].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[4].u.mem = {const_cast<char*>(r.value.data()), r.value.size()};
    vu[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vu[5].u.i64 = r.timestamp_ms;  // 0: librdkafka's clock
    vu[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[6].u.ptr = opaque;
    size_t n = 7;
    if (h) {
        vu[7].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[7].u.headers = h;
        n = 8;
    }
    rd_kafka_error_t* e = rd_kafka_produceva(rk, vu, n);
    if (!e) return RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t err = rd_kafka_error_code(e);
    rd_kafka_error_destroy(e);
    if (h) rd_kafka_headers_destroy(h);  // owned by librdkafka only on success
    return err;
}

std::string partition_text(const rd_kafka_topic_partition_list_t* l) {
    std::string s;
    for (int i = 0; i < l->cnt; ++i) s += (i ? "," : "") + std::to_string(l->elems[i].partition);
    return s;
}

// Direct topic access for AMQP clients (listener kafkaDialect).
enum class Dialect : uint8_t { none, strimzi, eventhubs };

// The address and routable message of a consumed record under a route's settings.
RecordFate read_record(const rd_kafka_message_t* m, const RouteSettings& s, uint64_t now_ms,
                       int64_t wall_ms, std::string_view& address, core::MessageRef& msg) {
    std::vector<mapping::HeaderView> headers = record_headers(m);
    std::string_view key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
    std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    address = mapping::record_address(key, headers);
    if (address.empty()) address = s.address;
    if (address.empty()) return RecordFate::no_address;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    bool expired = false;
    msg = mapping::message_from_record(address, value, headers, ts > 0 ? ts : 0, now_ms, wall_ms,
                                       expired);
    if (expired) return RecordFate::expired;  // past its message expiry: nobody may receive it
    if (!msg) return RecordFate::unreadable;
    return RecordFate::ok;
}

// A consumed record as it is, for a dead letter.
mapping::KafkaRecord record_of(const rd_kafka_message_t* m) {
    mapping::KafkaRecord r;
    if (m->key) {
        r.key.assign(static_cast<const char*>(m->key), m->key_len);
        r.has_key = true;
    }
    if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
    for (const auto& [name, val] : record_headers(m)) r.headers.emplace_back(name, val);
    return r;
}

}  // namespace

std::string RouteSettings::bound_pattern() const {
    return prefix.empty() ? core::canonical_pattern(pattern) : core::prefix_to_pattern(prefix);
}

// =============================================================================================
// Into Kafka: the waypoint link of a route's addresses.

class Adapter::RouteIn final : public core::LinkPort {
  public:
    RouteIn(Adapter& a, const RouteSettings& s) : a_(a), s_(s) {
        options_.key_is_address = s.key_is_address;
        options_.headers = s.headers;
    }

    std::string attach() {
        core::AttachRequest req;
        req.direction = core::Direction::outgoing;
        req.name = "kafka/" + s_.name + "/in";
        req.waypoint = s_.bound_pattern();
        core::AttachResult r = a_.router_.attach(*a_.core_, req, *this, &link);
        if (r.kind == core::AttachResult::Kind::refused) return r.error.description;
        return {};
    }

    void deliver(core::Delivery& d) override {
        if (granted > 0) --granted;
        std::string_view address =
            d.address ? std::string_view(d.address->name()) : std::string_view();
        uint32_t slot = a_.take_slot(this, d.presettled ? nullptr : &d);
        if (!d.presettled) d.handle = reinterpret_cast<void*>(static_cast<uintptr_t>(slot));
        ++counters.in_flight;
        if (dialect != Dialect::none) {
            produce_direct(d, slot);
            return;
        }
        // The wall clock only for a message with an expiry (one clock read less per message).
        if (!mapping::record_from_message(*d.message, address, options_, a_.router_.now_ms(),
                                          d.message->expires_at_ms ? a_.wall_ms() : 0, record_)) {
            a_.failed_.emplace_back(slot, "amqp:decode-error");
        } else if (a_.fatal_) {
            a_.failed_.emplace_back(slot, "Kafka: the producer is being restarted");
        } else if (rd_kafka_topic_t* rkt = topic()) {
            a_.produce_off_loop(rkt, record_, slot, granted == 0);
            if (!d.presettled) a_.router_.release_message(d);  // the record has it all
            return;
        } else if (rd_kafka_resp_err_t err =
                       produce(a_.producer_.get(), nullptr, s_.topic, record_,
                               reinterpret_cast<void*>(static_cast<uintptr_t>(slot)))) {
            // No handle (a topic name librdkafka refuses): by name, for its error.
            a_.failed_.emplace_back(slot, std::to_string(static_cast<int>(err)));
        } else {
            return;
        }
        post_failures();
    }

    // Settled right after this port call (the core is not re-entered from inside one).
    void post_failures() {
        if (!a_.failures_posted_) {
            a_.failures_posted_ = true;
            asio::post(a_.loop_.io(), [&a = a_] { a.settle_failures(); });
        }
    }

    // The condition of a failed produce on a direct link.
    std::string kafka_error() const {
        return dialect == Dialect::strimzi
                   ? std::string(mapping::strimzi::condition::error_to_kafka)
                   : std::string(core::condition::internal_error);
    }

    // Direct topic access: the record is the body. Strimzi: key and partition from
    // annotations, the topic from `to` or the link's target. Event Hubs: see produce_events.
    void produce_direct(core::Delivery& d, uint32_t slot) {
        if (dialect == Dialect::eventhubs) {
            // An SDK's batch holds its events; any other message is one event.
            if (!mapping::eventhubs::read_batch(*d.message, events_))
                events_.assign(1, d.message->bytes());
            produce_events(slot);
            return;
        }
        mapping::Produce p;
        std::string err;
        if (!mapping::strimzi::read_produce(*d.message, p, record_, err)) {
            a_.failed_.emplace_back(slot, "amqp:decode-error|" + err);
        } else if (p.topic.empty() && s_.topic.empty()) {
            a_.failed_.emplace_back(slot,
                                    "amqp:invalid-field|no topic: neither the link's target nor "
                                    "the message's 'to' names one");
        } else if (a_.fatal_) {
            a_.failed_.emplace_back(slot,
                                    kafka_error() + "|Kafka: the producer is being restarted");
        } else {
            if (rd_kafka_resp_err_t e =
                    produce(a_.producer_.get(), p.topic.empty() ? topic() : nullptr,
                            p.topic.empty() ? s_.topic : p.topic, record_,
                            reinterpret_cast<void*>(static_cast<uintptr_t>(slot)),
                            p.partition.value_or(RD_KAFKA_PARTITION_UA)))
                a_.failed_.emplace_back(slot, kafka_error() + "|Kafka: " + error_text(e));
            else
                return;
        }
        post_failures();
    }

    // Event Hubs: one record per event (key from x-opt-partition-key, properties as headers;
    // hub and partition from the link's target). All are read before any is produced (a bad
    // event rejects a batch whole); the delivery is settled when every record is acknowledged.
    void produce_events(uint32_t slot) {
        if (batch_.size() < events_.size()) batch_.resize(events_.size());
        mapping::Produce p;
        std::string err;
        for (size_t i = 0; i < events_.size(); ++i)
            if (!mapping::read_direct_produce(events_[i], {}, "x-opt-partition-key", p, batch_[i],
                                              err, true)) {
                std::string which = events_.size() == 1
                                        ? std::string()
                                        : "event " + std::to_string(i + 1) + " of the batch: ";
                a_.failed_.emplace_back(slot, "amqp:decode-error|" + which + err);
                post_failures();
                return;
            }
        uint32_t produced = 0;
        rd_kafka_resp_err_t cut = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (size_t i = 0; i < events_.size() && !cut; ++i) {
            if (a_.fatal_)
                cut = RD_KAFKA_RESP_ERR__FATAL;
            else if (rd_kafka_resp_err_t e =
                         produce(a_.producer_.get(), topic(), s_.topic, batch_[i],
                                 reinterpret_cast<void*>(static_cast<uintptr_t>(slot)),
                                 partition.value_or(RD_KAFKA_PARTITION_UA)))
                cut = e;
            else
                ++produced;
        }
        if (produced == 0) {
            a_.failed_.emplace_back(slot, kafka_error() + "|Kafka: " +
                                              (cut == RD_KAFKA_RESP_ERR__FATAL
                                                   ? std::string("the producer is being restarted")
                                                   : error_text(cut)));
            post_failures();
            return;
        }
        // Those produced report back; the batch fails with them (the client sends it again).
        Slot& s = a_.slots_[slot - 1];
        s.records = produced;
        s.err = cut;
        if (cut)
            logger().debug("Event Hubs sender '{}': batch cut short after {} of {} events: {}",
                           s_.name, produced, events_.size(), error_text(cut));
    }

    void update(core::Delivery& d, const core::DeliveryState&, bool settle) override {
        // The producer settled first (e.g. it went away): forget the delivery, keep the record.
        if (!settle || !d.handle) return;
        a_.slots_[reinterpret_cast<uintptr_t>(d.handle) - 1].delivery = nullptr;
        d.handle = nullptr;
    }
    void flow(uint32_t, bool) override {}
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override {
        link = nullptr;
        a_.forget_route(this);
        if (dialect != Dialect::none) a_.drop_direct(this);
    }

    // The producer's handle of the route's topic, taken again after a producer restart.
    rd_kafka_topic_t* topic() {
        if (topic_gen_ != a_.topics_gen_) {
            topic_ = s_.topic.empty() ? nullptr : a_.topic_handle(s_.topic);
            topic_gen_ = a_.topics_gen_;
        }
        return topic_;
    }

    Adapter& a_;
    const RouteSettings s_;            // a copy: routes come and go at runtime
    rd_kafka_topic_t* topic_ = nullptr;
    uint32_t topic_gen_ = 0;
    Dialect dialect = Dialect::none;   // a client's direct link, not a route's waypoint
    std::optional<int32_t> partition;  // Event Hubs: the target's partition
    mapping::KafkaRecordOptions options_;
    mapping::KafkaRecord record_;  // reused: no allocation per message once warm
    std::vector<std::string_view> events_;     // Event Hubs: a transfer's events
    std::vector<mapping::KafkaRecord> batch_;  // and their records (reused)
    core::Link* link = nullptr;
    int32_t granted = 0;  // credit the core has from us, as far as we know
    RouteCounters counters;
};

rd_kafka_topic_t* Adapter::topic_handle(const std::string& name) {
    for (auto& [n, t] : topics_)
        if (n == name) return t;
    rd_kafka_topic_t* t = rd_kafka_topic_new(producer_.get(), name.c_str(), nullptr);
    if (t) topics_.emplace_back(name, t);  // null (invalid name): produce by name reports it
    return t;
}

void Adapter::drop_topic_handles() {
    for (auto& [n, t] : topics_) rd_kafka_topic_destroy(t);
    topics_.clear();
    ++topics_gen_;
}

int64_t Adapter::wall_ms() const {
    uint64_t now = router_.now_ms();
    return now ? static_cast<int64_t>(now) + wall_offset_ms_ : epoch_ms();
}

void Adapter::refresh_wall_offset() {
    wall_offset_ms_ = epoch_ms() - static_cast<int64_t>(net::monotonic_ms());
}

uint32_t Adapter::take_slot(RouteIn* route, core::Delivery* d) {
    uint32_t i;
    if (free_slot_) {
        i = free_slot_;
        free_slot_ = slots_[i - 1].next_free;
    } else {
        slots_.emplace_back();
        i = static_cast<uint32_t>(slots_.size());
    }
    Slot& s = slots_[i - 1];
    s.route = route;
    s.delivery = d;
    s.used = true;
    s.produced_us = loop_.turn_us();
    if (slots_used_++ == 0) last_progress_ms_ = net::monotonic_ms();
    return i;
}

void Adapter::free_slot(uint32_t i) {
    Slot& s = slots_[i - 1];
    s = Slot{};
    s.next_free = free_slot_;
    free_slot_ = i;
    --slots_used_;
}

void Adapter::forget_route(RouteIn* route) {
    for (auto& s : slots_)
        if (s.route == route) s.delivery = nullptr;
}

void Adapter::delivery_report(void* opaque, rd_kafka_resp_err_t err_) {
    auto slot = reinterpret_cast<uintptr_t>(opaque);
    if (slot == 0 || slot > slots_.size()) return;  // reported after the routes went
    Slot& s = slots_[slot - 1];
    RouteIn* r = s.route;
    // Turn stamps, not rd_kafka_message_latency(): that reads the clock per record. Both ends
    // are when a loop turn began, so a latency is off by at most a turn's length.
    if (uint64_t now = loop_.turn_us(); !err_ && s.produced_us && now >= s.produced_us)
        latency_.add(static_cast<double>(now - s.produced_us) / 1e6);
    if (r) {
        if (err_) {
            ++r->counters.produce_failed;
            logger().debug("kafka route '{}': produce failed: {}", r->s_.name,
                           rd_kafka_err2str(err_));
        } else {
            ++r->counters.produced;
        }
    }
    if (err_ && !s.err) s.err = err_;
    if (--s.records > 0) return;  // the rest of a batch is still on its way
    core::Delivery* d = s.delivery;
    rd_kafka_resp_err_t err = s.err;
    free_slot(static_cast<uint32_t>(slot));
    if (!r) return;
    --r->counters.in_flight;
    if (!d || !r->link) return;
    d->handle = nullptr;
    core::ErrorCondition c;
    if (err)
        c = r->dialect == Dialect::strimzi
                ? core::ErrorCondition{std::string(mapping::strimzi::condition::error_to_kafka),
                                       "Kafka: " + error_text(err)}
                : condition_for(err);
    router_.disposition(d, err ? core::DeliveryState::rejected(c) : core::DeliveryState::accepted(),
                        true);
}

// Hands the turn's records to whichever producer thread the adapter has by then (a flush can
// be due after a restart or a shutdown: the loop's flush list holds this, not the thread).
struct Adapter::SubmitProduced final : net::Flushable {
    explicit SubmitProduced(Adapter& a) : a(a), alive(a.alive_) {}
    void flush() override {
        if (alive.lock() && a.producer_thread_) a.producer_thread_->submit();
    }
    Adapter& a;
    std::weak_ptr<int> alive;
};

void Adapter::produce_off_loop(rd_kafka_topic_t* rkt, const mapping::KafkaRecord& r, uint32_t slot,
                               bool last) {
    producer_thread_->add(rkt, r, reinterpret_cast<void*>(static_cast<uintptr_t>(slot)), last);
    if (!submit_produced_->flush_scheduled()) loop_.schedule_flush(submit_produced_);
}

// The producer thread's delivery reports (and refusals), a batch per call.
void Adapter::serve_reports() {
    if (!producer_thread_) return;
    loop_.begin_turn();
    if (!fatal_ && producer_thread_->fatal()) fatal_ = true;  // failed back, then restarted
    auto reports = producer_thread_->take_reports();
    for (const auto& r : reports) delivery_report(r.opaque, r.err);
    if (!reports.empty()) last_progress_ms_ = net::monotonic_ms();  // for the stall check
    refill_credit();
}

void Adapter::settle_failures() {
    failures_posted_ = false;
    auto failed = std::move(failed_);
    failed_.clear();
    for (auto& [slot, why] : failed) {
        Slot& s = slots_[slot - 1];
        RouteIn* r = s.route;
        core::Delivery* d = s.delivery;
        free_slot(slot);
        if (!r) continue;
        --r->counters.in_flight;
        ++r->counters.produce_failed;
        if (!d || !r->link) continue;
        d->handle = nullptr;
        core::ErrorCondition c;
        if (auto bar = why.find('|'); bar != std::string::npos) {
            c = {why.substr(0, bar), why.substr(bar + 1)};
        } else if (why == "amqp:decode-error") {
            c = {"amqp:decode-error", "the message cannot be mapped to a Kafka record"};
        } else if (!why.empty() && std::isdigit(static_cast<unsigned char>(why[0]))) {
            c = condition_for(static_cast<rd_kafka_resp_err_t>(std::stoi(why)));
        } else {
            c = {core::condition::internal_error, why};
        }
        router_.disposition(d, core::DeliveryState::rejected(c), true);
    }
    refill_credit();
}

// Credit for each route's producers is what is left of its in-flight budget. Topped up in
// batches so a steady stream does not cost a core call per delivery report.
void Adapter::refill_credit() {
    if (stopping_) return;
    for (auto& r : ins_) {
        if (!r->link) continue;
        int64_t want = static_cast<int64_t>(settings_.max_in_flight) -
                       static_cast<int64_t>(r->counters.in_flight);
        if (want <= r->granted) continue;
        if (r->granted > 0 && want - r->granted < static_cast<int64_t>(settings_.max_in_flight / 8))
            continue;
        r->granted = static_cast<int32_t>(want);
        router_.credit(r->link, r->granted, false);
    }
}

bool Adapter::produce_dead_letter(const std::string& topic, const mapping::KafkaRecord& record,
                                  const std::string& reason) {
    mapping::KafkaRecord r = record;
    r.headers.emplace_back(mapping::kafka_header::dead_letter_reason, reason);
    rd_kafka_resp_err_t err = produce(producer_.get(), nullptr, topic, r, nullptr);
    if (err) {
        logger().error("kafka '{}': cannot dead-letter a record to '{}': {}", settings_.name, topic,
                       rd_kafka_err2str(err));
        return false;
    }
    return true;
}

// =============================================================================================
// Out of Kafka: a consumer feeding the addresses' consumers through a from-waypoint link.

class Adapter::RouteOut final : public core::LinkPort {
  public:
    struct Track {
        int32_t partition = 0;
        int64_t offset = 0;
        bool done = false;
        bool in_core = false;  // a core delivery refers to it
        bool orphan = false;   // its partition was revoked while it was in the core
        uint64_t retry_at = 0;
        core::MessageRef message;
        std::string address;
    };
    struct Part {
        std::deque<Track*> pending;  // in offset order; done ones popped from the front
        int64_t next_offset = -1;    // after the last record taken
        int64_t committed = -1;
        int64_t start = -1;  // first offset to consume, if known at assignment
    };

    RouteOut(Adapter& a, const RouteSettings& s) : a_(a), s_(s) {}

    ~RouteOut() override {
        *alive_ = false;
        fetch_.reset();
        release_all();
    }

    std::string start() {
        // Balanced/closest addresses share one group across instances; multicast ones give
        // every instance all partitions (a group of its own). Unconfigured: multicast, as MQTT.
        std::string sample =
            s_.prefix.empty() ? s_.pattern.substr(0, s_.pattern.find_first_of("*#")) : s_.prefix;
        dist_ = a_.router_.configured_distribution(sample).value_or(core::Distribution::multicast);
        bool multicast = dist_ == core::Distribution::multicast;
        group_ = !s_.group_id.empty() ? s_.group_id
                 : multicast          ? "trestle." + s_.name + "." + a_.router_id_
                                      : "trestle." + s_.name;
        std::string start = !s_.start_position.empty() ? s_.start_position
                            : multicast                ? "latest"
                                                       : "earliest";
        from_start_time_ = start == "latest";
        log_id_ = a_.log_id(s_.topic);
        if (std::string err = open_consumer(start); !err.empty()) return err;
        start_fetch_thread();
        PartitionList topics(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(topics.get(), s_.topic.c_str(), RD_KAFKA_PARTITION_UA);
        if (rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_.get(), topics.get()))
            return "cannot subscribe to '" + s_.topic + "': " + rd_kafka_err2str(e);

        core::AttachRequest req;
        req.direction = core::Direction::incoming;
        req.name = "kafka/" + s_.name + "/out";
        req.target.has_address = false;
        req.from_waypoint = true;
        req.unconfigured_distribution = dist_;
        core::AttachResult r = a_.router_.attach(*a_.core_, req, *this, &link);
        if (r.kind == core::AttachResult::Kind::refused) return r.error.description;
        waker_ = std::make_unique<QueueWaker>(a_.loop_, queue_, [this] { return serve(); });
        logger().info("kafkaRoute '{}': consuming topic '{}' in group '{}' from {} ({})", s_.name,
                      s_.topic, group_, start, core::to_string(dist_));
        return {};
    }

    // Direct topic access on a link-routed link of a client receiver: the client's group
    // (Strimzi: from its committed offsets, a new group from the earliest) or one partition
    // from an offset (or a time); records in the dialect's form.
    struct Direct {
        Dialect dialect = Dialect::strimzi;
        std::string group;
        std::optional<int32_t> partition;
        int64_t offset = RD_KAFKA_OFFSET_STORED;  // or a logical offset, or a real one
        std::optional<int64_t> from_time_ms;      // start at the first record at/after it
        bool commit = true;  // false: the client keeps its own checkpoints (Event Hubs)
    };
    std::string start_direct(core::Link* l, const Direct& c) {
        direct_ = c.dialect;
        commit_ = c.commit;
        dist_ = core::Distribution::balanced;  // released records wait for the consumer
        group_ = c.group;
        if (std::string err = open_consumer("earliest"); !err.empty()) return err;
        if (c.partition && c.from_time_ms) {
            // The offset for a time is a blocking query: on the probe's thread, then assigned
            // here (the first record at or after the time; none: the end).
            int32_t p = *c.partition;
            Adapter& a = a_;
            a_.probe_->offset_for_time(
                s_.topic, p, *c.from_time_ms, [&a, self = this, p](int64_t offset) {
                    asio::post(a.loop_.io(), [&a, self, p, offset] {
                        if (!a.has_direct(self) || !self->link)
                            return;  // the client went meanwhile
                        if (std::string err =
                                self->assign(p, offset >= 0 ? offset : RD_KAFKA_OFFSET_END);
                            !err.empty())
                            logger().warn("direct receiver '{}': {}", self->s_.name, err);
                    });
                });
        } else if (c.partition) {
            if (std::string err = assign(*c.partition, c.offset); !err.empty()) return err;
        } else {
            PartitionList topics(rd_kafka_topic_partition_list_new(1));
            rd_kafka_topic_partition_list_add(topics.get(), s_.topic.c_str(),
                                              RD_KAFKA_PARTITION_UA);
            if (rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_.get(), topics.get()))
                return "cannot subscribe to '" + s_.topic + "': " + rd_kafka_err2str(e);
        }
        link = l;
        waker_ = std::make_unique<QueueWaker>(a_.loop_, queue_, [this] { return serve(); });
        logger().info("direct receiver '{}': consuming topic '{}' in group '{}'{}", s_.name,
                      s_.topic, group_,
                      c.partition ? " partition " + std::to_string(*c.partition) : std::string());
        return {};
    }

    // One partition from `offset` (a real or logical one), without a group's rebalancing.
    std::string assign(int32_t partition, int64_t offset) {
        PartitionList one(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(one.get(), s_.topic.c_str(), partition)->offset = offset;
        parts_[partition] = Part{};
        if (offset >= 0) parts_[partition].start = offset;
        if (rd_kafka_resp_err_t e = rd_kafka_assign(consumer_.get(), one.get()))
            return std::string("cannot assign the partition: ") + rd_kafka_err2str(e);
        return {};
    }

    std::string open_consumer(const std::string& start) {
        Properties defaults{{"bootstrap.servers", a_.bootstrap_},
                            {"client.id", "trestle-" + a_.router_id_ + "-" + s_.name},
                            {"group.id", group_},
                            {"enable.auto.commit", "false"},
                            {"enable.auto.offset.store", "false"},
                            {"auto.offset.reset", start},
                            {"session.timeout.ms", "10000"},
                            {"heartbeat.interval.ms", "1000"},
                            {"fetch.wait.max.ms", "100"},
                            {"queued.max.messages.kbytes", "4096"},
                            {"reconnect.backoff.max.ms", "1000"}};
        Handle made;
        std::string err = make_consumer(
            defaults, a_.settings_.properties, made, queue_, [this](rd_kafka_conf_t* conf) {
                rd_kafka_conf_set_opaque(conf, this);
                rd_kafka_conf_set_rebalance_cb(conf, &RouteOut::on_rebalance);
                burst_.configure(conf);
            });
        consumer_ = std::move(made);
        return err;
    }

    // Each half prefetch limit popped (see FetchBurst), or after a resume: see Probe::nudge.
    void nudge() {
        if (!consumer_ || !a_.probe_ || stopping_ || parts_.empty()) return;
        auto busy = burst_.claim();
        if (!busy) return;
        std::vector<std::pair<std::string, int32_t>> ids;
        for (const auto& [id, p] : parts_) ids.emplace_back(s_.topic, id);
        a_.probe_->nudge(consumer_, std::move(ids), std::move(busy));
    }

    // Stops consuming: commits what consumers settled, leaves the group, unbinds.
    void shutdown() {
        if (!consumer_) return;
        stopping_ = true;
        commit(false);
        waker_.reset();
        rd_kafka_consumer_close(consumer_.get());  // revokes: on_rebalance commits again
        *alive_ = false;
        fetch_.reset();  // what it read and the loop did not take is not committed
        if (link) {
            core::Link* l = link;
            link = nullptr;
            a_.router_.detach(l, nullptr);
        }
        release_all();
        if (queue_) rd_kafka_queue_destroy(queue_);
        queue_ = nullptr;
        consumer_.reset();
    }

    // Fetched records, a bounded batch per call.
    bool serve() {
        if (!consumer_ || stopping_) return false;
        int n = 0;
        for (; n < 256; ++n) {
            rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 0);
            if (!m) break;
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    logger().warn("kafkaRoute '{}': consumer: {}", s_.name,
                                  rd_kafka_message_errstr(m));
            } else {
                if (burst_.popped(m)) nudge();
                take(m);
            }
            rd_kafka_message_destroy(m);
        }
        if (n < 256 && burst_.drained()) nudge();
        send();
        return n == 256;
    }

    // A record from the consumer queue (direct links; a route's records come through its fetch
    // thread).
    void take(const rd_kafka_message_t* m) {
        Fetched f;
        f.partition = m->partition;
        f.offset = m->offset;
        if (direct_ == Dialect::none) {
            read_fetched(m, a_.router_.now_ms(), a_.wall_ms(), f);
        } else {
            std::optional<std::string_view> key;
            if (m->key) key.emplace(static_cast<const char*>(m->key), m->key_len);
            std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
            if (direct_ == Dialect::strimzi) {
                f.message =
                    mapping::strimzi::message(s_.topic, m->partition, m->offset, key, value);
            } else {
                rd_kafka_timestamp_type_t tt;
                int64_t ts = rd_kafka_message_timestamp(m, &tt);
                f.message = mapping::eventhubs::message(m->offset, ts > 0 ? ts : 0, key, value,
                                                        record_headers(m));
            }
        }
        take(std::move(f));
    }

    // A route's record under its settings (on the fetch thread: touches nothing else).
    void read_fetched(const rd_kafka_message_t* m, uint64_t now_ms, int64_t wall_ms,
                      Fetched& f) const {
        std::string_view address;
        f.fate = read_record(m, s_, now_ms, wall_ms, address, f.message);
        if (f.fate == RecordFate::ok)
            f.address.assign(address);
        else if (f.fate != RecordFate::expired)
            f.record = std::make_unique<mapping::KafkaRecord>(record_of(m));
    }

    void take(Fetched&& f) {
        auto it = parts_.find(f.partition);
        if (it == parts_.end()) return;  // from a partition no longer ours
        Part& p = it->second;
        p.next_offset = f.offset + 1;
        ++counters.consumed;
        switch (f.fate) {
            case RecordFate::no_address:
                send_dead_letter(*f.record,
                                 "the record names no address (no key, no trestle.address header)");
                return;
            case RecordFate::expired:
                return;
            case RecordFate::unreadable:
                send_dead_letter(*f.record,
                                 "content-type application/x-amqp-body but the value is not AMQP "
                                 "body sections");
                return;
            case RecordFate::ok:
                break;
        }
        f.message->origin_log = log_id_;
        f.message->origin_partition = f.partition;
        f.message->origin_offset = f.offset;
        Track* t = new_track();
        t->partition = f.partition;
        t->offset = f.offset;
        t->message = std::move(f.message);
        t->address = std::move(f.address);
        p.pending.push_back(t);
        backlog_.push_back(t);
        ++outstanding_;
    }

    // What the fetch thread read since the last call.
    void take_fetched() {
        if (!fetch_ || stopping_) return;
        bool wake = false;
        std::vector<Fetched> got = fetch_->take(wake);
        for (auto& f : got) take(std::move(f));
        if (wake) nudge();
        send();
    }

    // A route's records are read on a thread of its own; the loop keeps the consumer queue
    // (rebalances, errors).
    void start_fetch_thread() {
        fetch_ = std::make_unique<FetchThread>(
            rd_kafka_queue_new(consumer_.get()), burst_,
            [this](const rd_kafka_message_t* m, uint64_t now_ms, int64_t wall_ms, Fetched& f) {
                read_fetched(m, now_ms, wall_ms, f);
            },
            [&loop = a_.loop_, this, alive = alive_] {
                asio::post(loop.io(), [this, alive] {
                    if (*alive) take_fetched();
                });
            },
            2048);
    }

    // Before the assignment starts fetching (after it, records may reach the consumer queue
    // first): the partitions' records go to the fetch thread's queue.
    void forward(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* parts) {
        for (int i = 0; i < parts->cnt; ++i) {
            rd_kafka_queue_t* q =
                rd_kafka_queue_get_partition(rk, parts->elems[i].topic, parts->elems[i].partition);
            if (!q) continue;  // not known yet: its records stay on the consumer queue
            rd_kafka_queue_forward(q, fetch_->queue());
            rd_kafka_queue_destroy(q);
        }
    }

    // Hands waiting records to the core while there is credit; pauses the partitions when
    // there is none (or too much is outstanding), so Kafka, not router memory, holds the rest.
    void send() {
        if (!link || stopping_) return;
        while (credit_ > 0 && !backlog_.empty()) {
            Track* t = backlog_.front();
            backlog_.pop_front();
            t->in_core = true;
            --credit_;
            a_.router_.transfer(link, t->message, t->address, false, t);
        }
        bool stop = credit_ <= 0 || outstanding_ >= max_outstanding();
        if (stop != paused_) pause(stop);
    }

    size_t max_outstanding() const { return link ? link->capacity() * 8 : 0; }

    // Per partition, the first record not yet handed to the core: a subscriber attached now
    // receives it and everything after it live.
    void live_positions(std::vector<core::LogPosition>& out) const {
        if (!consumer_ || stopping_ || dist_ != core::Distribution::multicast) return;
        for (const auto& [id, p] : parts_) {
            int64_t at = p.next_offset >= 0 ? p.next_offset : p.start;
            for (const Track* t : backlog_)
                if (t->partition == id) {
                    at = t->offset;  // the backlog is in fetch order: the first is the lowest
                    break;
                }
            if (at >= 0) out.push_back({s_.topic, id, at});
        }
    }

    void pause(bool on) {
        rd_kafka_topic_partition_list_t* l = nullptr;
        if (rd_kafka_assignment(consumer_.get(), &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return;
        PartitionList list(l);
        if (on)
            rd_kafka_pause_partitions(consumer_.get(), list.get());
        else
            rd_kafka_resume_partitions(consumer_.get(), list.get());
        paused_ = on;
        if (!on) nudge();
    }

    void send_dead_letter(const mapping::KafkaRecord& r, const std::string& reason) {
        const std::string& topic =
            s_.dead_letter_topic.empty() ? a_.settings_.dead_letter_topic : s_.dead_letter_topic;
        logger().warn("kafkaRoute '{}': record dead-lettered to '{}': {}", s_.name, topic, reason);
        if (a_.produce_dead_letter(topic, r, reason)) ++counters.dead_lettered;
    }

    // core::LinkPort
    void deliver(core::Delivery&) override {}
    void update(core::Delivery& d, const core::DeliveryState& state, bool settle) override {
        if (!settle || !d.handle) return;
        auto* t = static_cast<Track*>(d.handle);
        d.handle = nullptr;
        t->in_core = false;
        if (t->orphan) {
            orphans_.erase(std::remove(orphans_.begin(), orphans_.end(), t), orphans_.end());
            free_track(t);
            return;
        }
        switch (state.outcome) {
            case core::Outcome::rejected: {
                if (direct_ != Dialect::none) break;  // the client's own: rejected = consumed
                mapping::KafkaRecord r;
                mapping::KafkaRecordOptions o;
                std::string reason = "rejected by a consumer";
                if (state.error)
                    reason +=
                        ": " + state.error->name +
                        (state.error->description.empty() ? "" : " " + state.error->description);
                if (mapping::record_from_message(*t->message, t->address, o, a_.router_.now_ms(),
                                                 a_.wall_ms(), r))
                    send_dead_letter(r, reason);
                break;
            }
            case core::Outcome::released:
            case core::Outcome::modified: {
                auto d_of = a_.router_.configured_distribution(t->address).value_or(dist_);
                if (d_of != core::Distribution::multicast && !stopping_) {
                    // Anycast: it waits for a consumer (and holds back the committed offset).
                    t->retry_at = a_.router_.now_ms() + 1000;
                    retry_.push_back(t);
                    ++counters.redelivered;
                    return;
                }
                break;  // multicast: whoever wanted it had it
            }
            default:
                break;
        }
        finish(t);
    }

    void flow(uint32_t credit, bool drain) override {
        credit_ = drain ? 0 : static_cast<int32_t>(credit);
        // Not from inside a port call: the waker serves on the next turn.
        if (credit_ > 0 && waker_ && (!backlog_.empty() || paused_)) waker_->poke();
    }
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override {
        link = nullptr;
        if (direct_ != Dialect::none) a_.drop_direct(this);
    }

    void finish(Track* t) {
        t->done = true;
        --outstanding_;
        auto it = parts_.find(t->partition);
        if (it == parts_.end()) return;
        auto& q = it->second.pending;
        while (!q.empty() && q.front()->done) {
            free_track(q.front());
            q.pop_front();
        }
    }

    // Commits, per partition, up to the first record not yet done.
    void commit(bool async) {
        if (!consumer_ || !commit_) return;
        PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
        for (auto& [id, p] : parts_) {
            int64_t upto = p.pending.empty() ? p.next_offset : p.pending.front()->offset;
            if (upto < 0 || upto <= p.committed) continue;
            rd_kafka_topic_partition_list_add(l.get(), s_.topic.c_str(), id)->offset = upto;
            p.committed = upto;
        }
        if (l->cnt == 0) return;
        if (rd_kafka_resp_err_t e = rd_kafka_commit(consumer_.get(), l.get(), async ? 1 : 0))
            logger().warn("kafkaRoute '{}': commit failed: {}", s_.name, rd_kafka_err2str(e));
    }

    void tick() {
        if (!consumer_ || stopping_) return;
        // With records on the fetch thread, the consumer queue may stay empty for long: polled
        // here too, so librdkafka sees this consumer alive (max.poll.interval.ms).
        if (fetch_) serve();
        uint64_t now = a_.router_.now_ms();
        bool any = false;
        // Due retries go first, oldest first, ahead of newer records.
        std::vector<Track*> due;
        for (auto it = retry_.begin(); it != retry_.end();) {
            if ((*it)->retry_at <= now) {
                due.push_back(*it);
                it = retry_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = due.rbegin(); it != due.rend(); ++it) backlog_.push_front(*it), any = true;
        if (any) send();
        if (now >= next_commit_) {
            commit(true);
            next_commit_ = now + 1000;
        }
    }

    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* parts, void* opaque) {
        auto* self = static_cast<RouteOut*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            if (self->from_start_time_)
                self->look_up_start(parts);
            else
                self->assign_now(rk, parts);
        } else {
            // Not yet assigned, and now not to be.
            for (int i = 0; i < parts->cnt; ++i) self->starting_.erase(parts->elems[i].partition);
            self->commit(false);
            if (self->fetch_)
                self->fetch_->hold([parts](int32_t id) {
                    for (int i = 0; i < parts->cnt; ++i)
                        if (parts->elems[i].partition == id) return true;
                    return false;
                });
            for (int i = 0; i < parts->cnt; ++i) self->drop_partition(parts->elems[i].partition);
            if (cooperative(rk))
                rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
            else
                rd_kafka_assign(rk, nullptr);
            if (self->fetch_) self->fetch_->release();
            logger().info("kafkaRoute '{}': revoked topic '{}' partitions [{}]", self->s_.name,
                          self->s_.topic, partition_text(parts));
        }
    }

    static bool cooperative(rd_kafka_t* rk) {
        return std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    }

    void assign_now(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts) {
        for (int i = 0; i < parts->cnt; ++i) {
            Part& p = parts_[parts->elems[i].partition] = Part{};
            // Where consumption starts, when known here (committed or start time): lag before
            // the first record is fetched.
            if (parts->elems[i].offset >= 0) p.start = parts->elems[i].offset;
        }
        if (fetch_) forward(rk, parts);
        if (!cooperative(rk)) {
            rd_kafka_assign(rk, parts);
            paused_ = false;  // all of it is new, none paused
        } else {
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
            // Added to partitions already paused: paused with them, so that the resume that
            // comes with credit covers all (one resumed unpaused could be refetched from an old
            // position: librdkafka #4637).
            if (paused_) rd_kafka_pause_partitions(rk, parts);
        }
        logger().info("kafkaRoute '{}': assigned topic '{}' partitions [{}]", s_.name, s_.topic,
                      partition_text(parts));
        if (waker_) waker_->poke();
    }

    // "latest" means the records produced since this router started (not since the group
    // join completed, seconds later): a new group starts at the start time's offsets. The
    // lookups are network round trips (seconds when Kafka is slow): on the probe's thread,
    // the partitions assigned when they are done (librdkafka waits for the assign call).
    void look_up_start(rd_kafka_topic_partition_list_t* parts) {
        uint64_t lookup = ++lookups_;
        std::vector<int32_t> ids;
        for (int i = 0; i < parts->cnt; ++i) {
            ids.push_back(parts->elems[i].partition);
            starting_[parts->elems[i].partition] = lookup;
        }
        auto done = [&loop = a_.loop_, this, alive = alive_, lookup](Probe::StartOffsets r) {
            asio::post(loop.io(), [this, alive, lookup, r = std::move(r)] {
                if (*alive) start_looked_up(lookup, r);
            });
        };
        a_.probe_->start_offsets(consumer_, s_.topic, std::move(ids), a_.started_ms_, done);
    }

    void start_looked_up(uint64_t lookup, const Probe::StartOffsets& r) {
        if (stopping_ || !consumer_) return;
        if (r.committed_read && !r.by_time)
            logger().warn(
                "kafkaRoute '{}': no offsets for the start time within 5 s: partitions without "
                "a committed offset start at their end",
                s_.name);
        PartitionList parts(rd_kafka_topic_partition_list_new(static_cast<int>(r.offsets.size())));
        for (const auto& [id, offset] : r.offsets) {
            // Only what this lookup is still for: not revoked since, nor assigned again (a
            // later lookup has it).
            auto it = starting_.find(id);
            if (it == starting_.end() || it->second != lookup) continue;
            starting_.erase(it);
            rd_kafka_topic_partition_list_add(parts.get(), s_.topic.c_str(), id)->offset = offset;
        }
        if (parts->cnt > 0) assign_now(consumer_.get(), parts.get());
    }

    // Another member owns the partition now (it redelivers from the committed offset).
    void drop_partition(int32_t id) {
        auto it = parts_.find(id);
        if (it == parts_.end()) return;
        auto mine = [id](Track* t) { return t->partition == id; };
        backlog_.erase(std::remove_if(backlog_.begin(), backlog_.end(), mine), backlog_.end());
        retry_.erase(std::remove_if(retry_.begin(), retry_.end(), mine), retry_.end());
        for (Track* t : it->second.pending) {
            if (!t->done) --outstanding_;
            if (t->in_core) {
                t->orphan = true;
                orphans_.push_back(t);
            } else {
                free_track(t);
            }
        }
        parts_.erase(it);
    }

    // Tracks come and go by the thousand per second: some are kept for reuse (allocating one
    // per record and freeing it turns later, past malloc's per-thread cache, was ~8 % of the
    // loop in egress).
    Track* new_track() {
        if (spare_tracks_.empty()) return new Track;
        Track* t = spare_tracks_.back();
        spare_tracks_.pop_back();
        return t;
    }

    void free_track(Track* t) {
        if (spare_tracks_.size() >= 1024) {
            delete t;
            return;
        }
        *t = Track{};  // the message goes now
        spare_tracks_.push_back(t);
    }

    void release_all() {
        for (auto& [id, p] : parts_)
            for (Track* t : p.pending) delete t;
        parts_.clear();
        for (Track* t : orphans_) delete t;
        orphans_.clear();
        for (Track* t : spare_tracks_) delete t;
        spare_tracks_.clear();
        backlog_.clear();
        retry_.clear();
        outstanding_ = 0;
    }

    Adapter& a_;
    const RouteSettings s_;
    core::Distribution dist_ = core::Distribution::multicast;
    std::string group_;
    std::shared_ptr<rd_kafka_t> consumer_;  // shared with a nudge under way
    rd_kafka_queue_t* queue_ = nullptr;
    FetchBurst burst_;
    std::unique_ptr<QueueWaker> waker_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for the fetch thread's posts
    std::unique_ptr<FetchThread> fetch_;                          // a route's (not a direct link's)
    core::Link* link = nullptr;
    int32_t credit_ = 0;
    bool paused_ = false;
    bool stopping_ = false;
    bool from_start_time_ = false;
    // Assigned by the group, start offsets being looked up: partition -> lookup.
    std::map<int32_t, uint64_t> starting_;
    uint64_t lookups_ = 0;
    Dialect direct_ = Dialect::none;  // a client's link, not a route's waypoint
    bool commit_ = true;
    uint32_t log_id_ = 0;
    std::map<int32_t, Part> parts_;
    std::deque<Track*> backlog_;
    std::deque<Track*> retry_;
    std::vector<Track*> orphans_;
    std::vector<Track*> spare_tracks_;  // freed, kept for reuse
    size_t outstanding_ = 0;
    uint64_t next_commit_ = 0;
    RouteCounters counters;
};

// =============================================================================================
// Catching a resumed session up from the logs: one assign-only consumer of this router's
// serves the requests one at a time (sessions resuming together wait their turn, bounded in
// memory by their session queues), each from its stored positions up to the live positions
// taken when it was asked for, so nothing is missed or sent twice between catch-up and live.

class Adapter::Replayer {
  public:
    explicit Replayer(Adapter& a) : a_(a) {}
    ~Replayer() { close(); }

    uint64_t add(std::vector<core::LogPosition> from,
                 std::function<void(core::MessageRef, std::string_view)> record,
                 std::function<void()> done) {
        Request r;
        r.id = ++next_id_;
        r.record = std::move(record);
        r.done = std::move(done);
        std::vector<core::LogPosition> live = a_.live_positions();
        for (const auto& p : from) {
            const RouteSettings* route = a_.out_route(p.log);
            if (!route) continue;     // no longer bound here
            int64_t end = INT64_MAX;  // not known here: up to the end of the log
            for (const auto& l : live)
                if (l.log == p.log && l.partition == p.partition) end = l.offset;
            if (p.offset < end) r.parts[{p.log, p.partition}] = Range{p.offset, end, route};
        }
        uint64_t id = r.id;
        queue_.push_back(std::move(r));
        // Not from inside the caller (a session being set up): on the next turn.
        if (!active_)
            asio::post(a_.loop_.io(), [this, alive = alive_] {
                if (*alive && !active_) start_next();
            });
        return id;
    }

    void cancel(uint64_t id) {
        if (active_ && active_->id == id) {
            finish(false);
            return;
        }
        std::erase_if(queue_, [id](const Request& r) { return r.id == id; });
    }

    void tick() {
        if (active_ && a_.router_.now_ms() > active_->deadline_ms) {
            logger().warn(
                "session catch-up from the logs incomplete after 30 s ({} partition(s) "
                "not read to their end): the session continues live",
                active_->parts.size());
            finish(true);
        }
    }

    void close() {
        *alive_ = false;
        waker_.reset();
        if (consumer_) rd_kafka_consumer_close(consumer_.get());
        if (queue_handle_) rd_kafka_queue_destroy(queue_handle_);
        queue_handle_ = nullptr;
        consumer_.reset();
    }

  private:
    struct Range {
        int64_t from = 0, end = 0;
        const RouteSettings* route = nullptr;
    };
    using Parts = std::map<std::pair<std::string, int32_t>, Range>;
    struct Request {
        uint64_t id = 0;
        Parts parts;
        std::function<void(core::MessageRef, std::string_view)> record;
        std::function<void()> done;
        uint64_t deadline_ms = 0;
    };

    std::string open() {
        Properties defaults{{"group.id", "trestle.replay." + a_.router_id_},
                            {"client.id", "trestle-" + a_.router_id_ + "-replay"},
                            {"enable.auto.commit", "false"},
                            {"enable.auto.offset.store", "false"},
                            {"enable.partition.eof", "true"},
                            {"auto.offset.reset", "earliest"},  // positions past retention
                            {"fetch.wait.max.ms", "100"},
                            // as the routes' (librdkafka's default is 64 MB per consumer)
                            {"queued.max.messages.kbytes", "4096"},
                            {"reconnect.backoff.max.ms", "1000"}};
        Handle made;
        std::string err =
            make_consumer(defaults, a_.client_properties(), made, queue_handle_,
                          [this](rd_kafka_conf_t* conf) { burst_.configure(conf); });
        consumer_ = std::move(made);
        if (!err.empty()) return err;
        waker_ = std::make_unique<QueueWaker>(a_.loop_, queue_handle_, [this] { return serve(); });
        return {};
    }

    void start_next() {
        while (!active_ && !queue_.empty()) {
            active_ = std::make_unique<Request>(std::move(queue_.front()));
            queue_.pop_front();
            if (active_->parts.empty()) {
                finish(true);
                continue;
            }
            if (!consumer_)
                if (std::string err = open(); !err.empty()) {
                    logger().error("session catch-up from the logs: {}", err);
                    finish(true);
                    continue;
                }
            active_->deadline_ms = a_.router_.now_ms() + 30000;
            PartitionList l(
                rd_kafka_topic_partition_list_new(static_cast<int>(active_->parts.size())));
            for (const auto& [k, r] : active_->parts)
                rd_kafka_topic_partition_list_add(l.get(), k.first.c_str(), k.second)->offset =
                    r.from;
            rd_kafka_assign(consumer_.get(), l.get());
            waker_->poke();
        }
    }

    bool serve() {
        if (!consumer_) return false;
        int n = 0;
        bool wake = false;
        for (; n < 256 && active_; ++n) {
            rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 0);
            if (!m) break;
            if (!m->err && burst_.popped(m)) wake = true;
            handle(m);
            rd_kafka_message_destroy(m);
        }
        if (n < 256 && burst_.drained()) wake = true;
        if (wake) nudge();
        return n == 256;
    }

    // See RouteOut::nudge.
    void nudge() {
        if (!active_ || !a_.probe_) return;
        if (auto busy = burst_.claim()) {
            std::vector<std::pair<std::string, int32_t>> parts;
            for (const auto& [k, r] : active_->parts) parts.push_back(k);
            a_.probe_->nudge(consumer_, std::move(parts), std::move(busy));
        }
    }

    void handle(const rd_kafka_message_t* m) {
        if (!m->rkt) return;
        std::pair<std::string, int32_t> key{rd_kafka_topic_name(m->rkt), m->partition};
        auto it = active_->parts.find(key);
        if (it == active_->parts.end()) return;  // from an earlier request's assignment
        Range& r = it->second;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset >= r.from) done_with(key);  // the log ends before the live position
            return;
        }
        if (m->err) {
            logger().warn("session catch-up from the logs: {}", rd_kafka_message_errstr(m));
            return;
        }
        if (m->offset < r.from) return;
        if (m->offset >= r.end) {
            done_with(key);
            return;
        }
        r.from = m->offset + 1;
        bool last = r.from >= r.end;
        std::string_view address;
        core::MessageRef msg;
        if (read_record(m, *r.route, a_.router_.now_ms(), a_.wall_ms(), address, msg) ==
            RecordFate::ok) {
            msg->origin_log = a_.log_id(r.route->topic);
            msg->origin_partition = m->partition;
            msg->origin_offset = m->offset;
            uint64_t id = active_->id;
            active_->record(std::move(msg), address);
            if (!active_ || active_->id != id) return;  // cancelled from inside
        }
        if (last) done_with(key);
    }

    void done_with(const std::pair<std::string, int32_t>& key) {
        if (!active_) return;
        active_->parts.erase(key);
        if (active_->parts.empty()) finish(true);
    }

    void finish(bool call_done) {
        std::unique_ptr<Request> r = std::move(active_);
        if (consumer_) rd_kafka_assign(consumer_.get(), nullptr);
        if (!queue_.empty())
            asio::post(a_.loop_.io(), [this, alive = alive_] {
                if (*alive && !active_) start_next();
            });
        if (call_done && r && r->done) r->done();
    }

    Adapter& a_;
    std::shared_ptr<rd_kafka_t> consumer_;  // shared with a nudge under way
    rd_kafka_queue_t* queue_handle_ = nullptr;
    FetchBurst burst_;
    std::unique_ptr<QueueWaker> waker_;
    std::deque<Request> queue_;
    std::unique_ptr<Request> active_;
    uint64_t next_id_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// =============================================================================================
// Direct topic access: links of a listener with a kafkaDialect are link routed here (prefix
// "$strimzi/"), to a core connection of the adapter's own acting as their route container.

class Adapter::DirectPort final : public core::ConnectionPort {
  public:
    explicit DirectPort(Adapter& a) : a_(a) {}
    core::LinkPort* open_link(core::Link& link, const core::AttachRequest& req,
                              core::ErrorCondition& refusal) override {
        return a_.open_direct(link, req, refusal);
    }
    void close(const core::ErrorCondition&) override {}

  private:
    Adapter& a_;
};

namespace {
constexpr std::string_view strimzi_prefix = "$strimzi/";
constexpr std::string_view eventhubs_prefix = "$eventhubs/";

core::Terminus without_prefix(core::Terminus t) {
    for (auto p : {strimzi_prefix, eventhubs_prefix})
        if (t.address.starts_with(p)) t.address.erase(0, p.size());
    return t;
}
}  // namespace

void Adapter::start_direct() {
    core::ConnectionInfo info;
    info.protocol = "kafka";
    info.role = "route-container";
    info.container_id = "$kafka-direct/" + settings_.name;
    info.host = bootstrap_;
    info.link_capacity = 1000;
    direct_port_ = std::make_unique<DirectPort>(*this);
    direct_core_ = router_.connection_opened(std::move(info), *direct_port_);
    for (auto prefix : {strimzi_prefix, eventhubs_prefix})
        for (auto dir : {core::Direction::incoming, core::Direction::outgoing}) {
            core::LinkRouteRule r;
            r.name = std::string(prefix.substr(0, prefix.size() - 1)) +
                     (dir == core::Direction::incoming ? "-in" : "-out");
            r.prefix = std::string(prefix);
            r.direction = dir;
            r.container_id = "$kafka-direct/" + settings_.name;
            if (std::string err = router_.add_link_route(r); !err.empty())
                logger().error("kafka '{}': direct topic access unavailable: {}", settings_.name,
                               err);
        }
}

core::LinkPort* Adapter::open_direct(core::Link& link, const core::AttachRequest& req,
                                     core::ErrorCondition& err) {
    const core::Terminus& routed =
        req.direction == core::Direction::outgoing ? req.target : req.source;
    Dialect dialect =
        routed.address.starts_with(eventhubs_prefix) ? Dialect::eventhubs : Dialect::strimzi;
    const char* what = dialect == Dialect::strimzi ? "Strimzi" : "Event Hubs";
    core::Terminus source = without_prefix(req.source), target = without_prefix(req.target);
    bool sender = req.direction == core::Direction::outgoing;  // the client's sender
    if (dialect == Dialect::eventhubs &&
        EventHubsNodes::is_node(sender ? target.address : source.address)) {
        if (!eventhubs_nodes_) eventhubs_nodes_ = std::make_unique<EventHubsNodes>(*this);
        return eventhubs_nodes_->open(link, req, source, target);
    }
    // Opened after this port call (ports do not call into the core from inside one).
    auto answer = [this, source, target](core::Link* l, auto* port) {
        asio::post(loop_.io(), [this, l, port, source, target] {
            if (!has_direct(port) || port->link != l) return;  // the client detached meanwhile
            router_.peer_attached(l, source, target);
            refill_credit();
        });
    };
    if (sender) {
        RouteSettings s;
        s.name = std::string(dialect == Dialect::strimzi ? "strimzi/" : "eventhubs/") + req.name;
        std::optional<int32_t> partition;
        bool ok = true;
        if (dialect == Dialect::strimzi) {
            s.topic = mapping::strimzi::topic_name(target.address);  // empty: per message `to`
        } else {
            mapping::eventhubs::Target t;
            ok = mapping::eventhubs::read_target(target.address, t, err);
            s.topic = t.hub;
            partition = t.partition;
        }
        if (ok) {
            auto in = std::make_unique<RouteIn>(*this, s);
            in->dialect = dialect;
            in->partition = partition;
            in->link = &link;
            RouteIn* port = in.get();
            ins_.push_back(std::move(in));
            answer(&link, port);
            logger().info("{} sender '{}' to topic '{}'", what, req.name,
                          s.topic.empty() ? "(per message)" : s.topic);
            return port;
        }
    } else {
        RouteOut::Direct d;
        d.dialect = dialect;
        RouteSettings s;
        s.name = std::string(dialect == Dialect::strimzi ? "strimzi/" : "eventhubs/") + req.name;
        bool ok;
        if (dialect == Dialect::strimzi) {
            mapping::strimzi::Consume c;
            ok = mapping::strimzi::read_consume(source.address, req.source.filter, c, err);
            s.topic = c.topic;
            d.group = c.group;
            d.partition = c.partition;
            if (c.offset) d.offset = *c.offset;
        } else {
            mapping::eventhubs::Consume c;
            ok = mapping::eventhubs::read_consume(source.address, req.source.filter, c, err);
            using Kind = mapping::eventhubs::Start::Kind;
            s.topic = c.hub;
            d.group = c.group;
            d.partition = c.partition;
            d.commit = false;
            d.offset = c.start.kind == Kind::earliest ? RD_KAFKA_OFFSET_BEGINNING
                       : c.start.kind == Kind::latest ? RD_KAFKA_OFFSET_END
                                                      : c.start.value;
            if (c.start.kind == Kind::time) d.from_time_ms = c.start.value;
        }
        if (ok) {
            auto out = std::make_unique<RouteOut>(*this, s);
            RouteOut* port = out.get();
            outs_.push_back(std::move(out));
            std::string error = port->start_direct(&link, d);
            if (error.empty()) {
                answer(&link, port);
                return port;
            }
            port->link = nullptr;
            port->shutdown();
            outs_.pop_back();
            err = {dialect == Dialect::strimzi
                       ? std::string(mapping::strimzi::condition::kafka_subscribe)
                       : std::string(core::condition::internal_error),
                   error};
        }
    }
    logger().info("{} {} '{}' on '{}' refused: {} {}", what, sender ? "sender" : "receiver",
                  req.name, sender ? target.address : source.address, err.name, err.description);
    return nullptr;
}

bool Adapter::has_direct(const void* port) const {
    for (const auto& r : ins_)
        if (r.get() == port) return true;
    for (const auto& o : outs_)
        if (o.get() == port) return true;
    return false;
}

// The client detached a direct link: its producer slots forget it, its consumer commits and
// leaves the group (after the port call).
void Adapter::drop_direct(RouteIn* r) {
    asio::post(loop_.io(), [this, r] {
        for (auto& s : slots_)
            if (s.route == r) s.route = nullptr;  // its delivery reports find no route
        std::erase_if(ins_, [r](const std::unique_ptr<RouteIn>& x) { return x.get() == r; });
    });
}

void Adapter::drop_direct(RouteOut* o) {
    asio::post(loop_.io(), [this, o] {
        for (auto it = outs_.begin(); it != outs_.end(); ++it)
            if (it->get() == o) {
                (*it)->shutdown();
                outs_.erase(it);
                return;
            }
    });
}

uint32_t Adapter::log_id(const std::string& topic) {
    for (size_t i = 0; i < log_names_.size(); ++i)
        if (log_names_[i] == topic) return static_cast<uint32_t>(i + 1);
    log_names_.push_back(topic);
    return static_cast<uint32_t>(log_names_.size());
}

const RouteSettings* Adapter::out_route(const std::string& topic) const {
    for (const auto& o : outs_)
        if (o->s_.topic == topic && o->dist_ == core::Distribution::multicast) return &o->s_;
    return nullptr;
}

std::vector<core::LogPosition> Adapter::live_positions() const {
    std::vector<core::LogPosition> out;
    for (const auto& o : outs_) o->live_positions(out);
    return out;
}

const std::string& Adapter::log_name(uint32_t id) const {
    static const std::string none;
    return id >= 1 && id <= log_names_.size() ? log_names_[id - 1] : none;
}

uint64_t Adapter::replay(std::vector<core::LogPosition> from,
                         std::function<void(core::MessageRef, std::string_view)> record,
                         std::function<void()> done) {
    if (!replayer_) replayer_ = std::make_unique<Replayer>(*this);
    return replayer_->add(std::move(from), std::move(record), std::move(done));
}

void Adapter::cancel(uint64_t replay_id) {
    if (replayer_) replayer_->cancel(replay_id);
}

// =============================================================================================

Adapter::Adapter(core::Router& router, net::EventLoop& loop, Settings settings,
                 std::string router_id)
    : router_(router),
      loop_(loop),
      settings_(std::move(settings)),
      router_id_(std::move(router_id)),
      started_ms_(epoch_ms()),
      ticker_(loop.io()) {
    refresh_wall_offset();
}

Adapter::~Adapter() {
    shutdown();
}

std::string Adapter::make_producer() {
    Properties defaults{{"bootstrap.servers", bootstrap_},
                        {"client.id", "trestle-" + router_id_},
                        {"enable.idempotence", "true"},
                        {"acks", "all"},
                        {"linger.ms", "5"},
                        {"reconnect.backoff.max.ms", "1000"},
                        {"queue.buffering.max.messages",
                         std::to_string(std::max<uint32_t>(100000, settings_.max_in_flight * 2))},
                        {"batch.num.messages", std::to_string(std::clamp<uint32_t>(
                                                   settings_.max_in_flight / 4, 1, 10000))}};
    std::string err;
    rd_kafka_conf_t* conf = make_conf(defaults, settings_.properties, err, ClientKind::producer);
    if (!conf) return err;
    auto thread =
        std::make_unique<ProducerThread>(conf, [this, alive = std::weak_ptr<int>(alive_)] {
            asio::post(loop_.io(), [this, alive] {
                if (alive.lock()) serve_reports();
            });
        });
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return std::string("Kafka producer: ") + errstr;
    }
    // A restart: everything of the old producer was reported (nothing is in flight).
    std::unique_ptr<ProducerThread> old = std::move(producer_thread_);
    if (old) {
        old->drain();  // anything not handed over yet fails there and is reported below
        old->stop();
    }
    drop_topic_handles();
    producer_.reset(rk);
    if (old)
        for (const auto& r : old->take_reports()) delivery_report(r.opaque, r.err);
    old.reset();  // after its producer: its callbacks' opaque
    producer_thread_ = std::move(thread);
    producer_thread_->start(rk);
    if (!submit_produced_) submit_produced_ = std::make_shared<SubmitProduced>(*this);
    fatal_ = false;
    return {};
}

std::string Adapter::start() {
    if (settings_.bootstrap == "embedded") {
        try {
            embedded_ = std::make_unique<EmbeddedCluster>(settings_.embedded_brokers);
        } catch (const std::exception& e) {
            return e.what();
        }
        bootstrap_ = embedded_->bootstrap_servers();
        logger().info("kafka '{}': embedded Kafka (in memory, volatile) with {} broker(s) at {}",
                      settings_.name, settings_.embedded_brokers, bootstrap_);
    } else {
        bootstrap_ = settings_.bootstrap;
    }
    if (std::string err = make_producer(); !err.empty()) return err;
    {
        probe_ = std::make_unique<Probe>(client_properties(), consumed_topics(), 2000);
        if (std::string err = probe_->start(); !err.empty()) return err;
    }
    if (settings_.create_topics)
        if (std::string err = create_topics(); !err.empty()) return err;

    if (!settings_.retained_topic.empty()) {
        // Loaded before the routes bind and the listeners open: clients see the whole set.
        retained_ = std::make_unique<KafkaRetainedStore>(
            loop_, producer_.get(), client_properties(), settings_.retained_topic,
            [this] { return router_.now_ms(); });
        if (std::string err = retained_->load(30000); !err.empty())
            logger().error("kafka '{}': {}", settings_.name, err);
        router_.set_retained_store(retained_.get());
    }
    if (!settings_.sessions_topic.empty()) {
        sessions_ = std::make_unique<KafkaSessionState>(
            loop_, producer_.get(), client_properties(), settings_.sessions_topic, router_id_,
            settings_.instance_timeout_ms, [this] { return router_.now_ms(); });
        if (std::string err = sessions_->load(30000); !err.empty())
            logger().error("kafka '{}': {}", settings_.name, err);
    }

    core::ConnectionInfo info;
    info.protocol = "kafka";
    info.role = "kafka";
    info.container_id = settings_.name;
    info.host = bootstrap_;
    info.link_capacity = 1000;
    core_ = router_.connection_opened(std::move(info), *this);
    for (const auto& r : settings_.routes)
        if (std::string err = bind_route(r); !err.empty()) return err;
    start_direct();
    refill_credit();
    schedule_tick();
    return {};
}

std::string Adapter::bind_route(const RouteSettings& r) {
    if (r.in) {
        ins_.push_back(std::make_unique<RouteIn>(*this, r));
        if (std::string err = ins_.back()->attach(); !err.empty()) {
            ins_.pop_back();
            return "kafkaRoute '" + r.name + "': " + err;
        }
    }
    if (r.out) {
        outs_.push_back(std::make_unique<RouteOut>(*this, r));
        if (std::string err = outs_.back()->start(); !err.empty()) {
            outs_.back()->shutdown();
            outs_.pop_back();
            return "kafkaRoute '" + r.name + "': " + err;
        }
    }
    logger().info("kafkaRoute '{}': addresses '{}' {} topic '{}'", r.name, r.bound_pattern(),
                  r.in && r.out ? "<->"
                  : r.in        ? "->"
                                : "<-",
                  r.topic);
    return {};
}

std::vector<std::string> Adapter::consumed_topics() const {
    std::vector<std::string> topics;
    for (const auto& r : settings_.routes)
        if (r.out) topics.push_back(r.topic);
    return topics;
}

std::string Adapter::add_route(const RouteSettings& r) {
    if (!core_ || stopping_) return "Kafka is not running";
    for (const auto& o : settings_.routes)
        if (o.name == r.name) return "kafkaRoute '" + r.name + "' exists";
    if (settings_.create_topics) {
        std::vector<std::string> topics{r.topic};
        if (!r.dead_letter_topic.empty()) topics.push_back(r.dead_letter_topic);
        if (std::string err = create_topics(std::move(topics)); !err.empty()) return err;
    }
    // Unbound again if the new route cannot bind (e.g. its pattern overlaps another's waypoint).
    if (std::string err = bind_route(r); !err.empty()) {
        remove_route(r.name);
        return err;
    }
    settings_.routes.push_back(r);
    if (probe_) probe_->set_topics(consumed_topics());
    refill_credit();
    return {};
}

bool Adapter::remove_route(const std::string& name) {
    bool found = false;
    for (auto it = ins_.begin(); it != ins_.end();) {
        if ((*it)->s_.name != name) {
            ++it;
            continue;
        }
        found = true;
        RouteIn* r = it->get();
        if (core::Link* l = r->link) {
            r->link = nullptr;
            router_.detach(l, nullptr);
        }
        // Its records still in flight are reported to nobody (their producers saw the link go).
        for (auto& s : slots_)
            if (s.route == r) {
                s.route = nullptr;
                s.delivery = nullptr;
            }
        it = ins_.erase(it);
    }
    for (auto it = outs_.begin(); it != outs_.end();) {
        if ((*it)->s_.name != name) {
            ++it;
            continue;
        }
        found = true;
        (*it)->shutdown();  // commits what was settled, leaves the group
        it = outs_.erase(it);
    }
    std::erase_if(settings_.routes, [&](const RouteSettings& r) { return r.name == name; });
    if (probe_) probe_->set_topics(consumed_topics());
    if (found) logger().info("kafkaRoute '{}': removed", name);
    return found;
}

std::string Adapter::create_topics() {
    std::vector<std::string> topics;
    for (const auto& r : settings_.routes) {
        topics.push_back(r.topic);
        if (!r.dead_letter_topic.empty()) topics.push_back(r.dead_letter_topic);
    }
    topics.push_back(settings_.dead_letter_topic);
    if (!settings_.retained_topic.empty()) topics.push_back(settings_.retained_topic);
    if (!settings_.sessions_topic.empty()) topics.push_back(settings_.sessions_topic);
    return create_topics(std::move(topics));
}

std::string Adapter::create_topics(std::vector<std::string> topics) {
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    if (embedded_) {
        for (const auto& t : topics) {
            std::string err;
            if (!embedded_->create_topic(t, settings_.embedded_partitions, err)) return err;
        }
        return {};
    }
    // A real cluster: ask for what is missing without holding up start-up (producers wait for
    // a topic's metadata anyway). Existing topics and refusals (no permission, a cluster that
    // auto-creates) are the operator's business: only logged.
    std::vector<rd_kafka_NewTopic_t*> nts;
    char errstr[512];
    for (const auto& t : topics)
        if (auto* nt = rd_kafka_NewTopic_new(t.c_str(), -1, -1, errstr, sizeof errstr)) {
            // State topics keep the last value per key.
            if (t == settings_.retained_topic || t == settings_.sessions_topic)
                rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
            nts.push_back(nt);
        }
    if (!admin_queue_) admin_queue_ = rd_kafka_queue_new(producer_.get());
    rd_kafka_AdminOptions_t* opts =
        rd_kafka_AdminOptions_new(producer_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, 30000, errstr, sizeof errstr);
    rd_kafka_CreateTopics(producer_.get(), nts.data(), nts.size(), opts, admin_queue_);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy_array(nts.data(), nts.size());
    if (admin_waker_) return {};
    admin_waker_ = std::make_unique<QueueWaker>(loop_, admin_queue_, [this] {
        while (rd_kafka_event_t* ev = rd_kafka_queue_poll(admin_queue_, 0)) {
            if (rd_kafka_event_error(ev)) {
                logger().warn("kafka '{}': CreateTopics: {}", settings_.name,
                              rd_kafka_event_error_string(ev));
            } else if (const auto* res = rd_kafka_event_CreateTopics_result(ev)) {
                size_t n = 0;
                const rd_kafka_topic_result_t** rs = rd_kafka_CreateTopics_result_topics(res, &n);
                for (size_t i = 0; i < n; ++i) {
                    auto e = rd_kafka_topic_result_error(rs[i]);
                    if (!e)
                        logger().info("kafka '{}': created topic '{}'", settings_.name,
                                      rd_kafka_topic_result_name(rs[i]));
                    else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        logger().warn("kafka '{}': cannot create topic '{}': {}", settings_.name,
                                      rd_kafka_topic_result_name(rs[i]),
                                      rd_kafka_topic_result_error_string(rs[i]));
                }
            }
            rd_kafka_event_destroy(ev);
        }
        return false;
    });
    return {};
}

void Adapter::schedule_tick() {
    ticker_.expires_after(std::chrono::milliseconds(250));
    ticker_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopping_) tick();
    });
}

void Adapter::tick() {
    loop_.begin_turn();  // what the session state's tick publishes is stamped with this turn
    refresh_wall_offset();
    for (auto& o : outs_) o->tick();
    if (sessions_) sessions_->tick();
    if (replayer_) replayer_->tick();
    if (fatal_) {
        // Everything in flight has failed back to its producer (they resend); start afresh.
        uint64_t in_flight = 0;
        for (auto& r : ins_) in_flight += r->counters.in_flight;
        if (in_flight == 0) {
            if (std::string err = make_producer(); !err.empty()) {
                logger().error("kafka '{}': cannot restart the producer: {}", settings_.name, err);
            } else {
                logger().info("kafka '{}': producer restarted", settings_.name);
                if (retained_) retained_->set_producer(producer_.get());
                if (sessions_) sessions_->set_producer(producer_.get());
            }
            refill_credit();
        }
    }
    schedule_tick();
}

void Adapter::shutdown() {
    if (stopping_ && !producer_) return;
    stopping_ = true;
    ticker_.cancel();
    if (replayer_) replayer_->close();
    // Leaves the instances (held wills deleted) while the producer can still write it.
    if (sessions_) sessions_->detach();
    router_.wills().use_store(nullptr);
    for (auto& o : outs_) o->shutdown();
    if (producer_) {
        // Delivery reports for what is in flight (outcomes reach their producers), bounded.
        producer_thread_->drain();
        rd_kafka_flush(producer_.get(), 5000);
        if (rd_kafka_outq_len(producer_.get()) > 0) {
            logger().warn(
                "kafka '{}': {} message(s) not acknowledged by Kafka at shutdown; their "
                "producers see them fail",
                settings_.name, rd_kafka_outq_len(producer_.get()));
            rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(producer_.get(), 1000);
        }
        producer_thread_->stop();
        serve_reports();
        settle_failures();
    }
    if (retained_) {
        retained_->detach();  // the view stays, for what still runs until exit
        router_.set_retained_store(nullptr);
    }
    for (auto& r : ins_)
        if (core::Link* l = r->link) {
            r->link = nullptr;
            router_.detach(l, nullptr);
        }
    if (core_) {
        router_.connection_closed(core_);
        core_ = nullptr;
    }
    if (direct_core_) {
        router_.connection_closed(direct_core_);
        direct_core_ = nullptr;
    }
    if (eventhubs_nodes_) eventhubs_nodes_->close();
    outs_.clear();
    slots_.clear();
    free_slot_ = 0;
    ins_.clear();
    admin_waker_.reset();
    if (admin_queue_) rd_kafka_queue_destroy(admin_queue_);
    admin_queue_ = nullptr;
    drop_topic_handles();
    producer_.reset();
    producer_thread_.reset();  // after its producer: its callbacks' opaque
    probe_.reset();
    slots_used_ = 0;
    embedded_.reset();
}

Properties Adapter::client_properties() const {
    Properties p = settings_.properties;
    p["bootstrap.servers"] = bootstrap_;
    return p;
}

RouteCounters Adapter::counters(const std::string& route) const {
    RouteCounters c;
    for (const auto& r : ins_)
        if (r->s_.name == route) {
            c.produced = r->counters.produced;
            c.produce_failed = r->counters.produce_failed;
            c.in_flight = r->counters.in_flight;
        }
    for (const auto& o : outs_)
        if (o->s_.name == route) {
            c.consumed = o->counters.consumed;
            c.dead_lettered = o->counters.dead_lettered;
            c.redelivered = o->counters.redelivered;
        }
    return c;
}

}  // namespace trestle::kafka

namespace trestle::kafka {

Health Adapter::health() const {
    if (stopping_) return {false, "kafka '" + settings_.name + "': shutting down"};
    if (fatal_)
        return {false,
                "kafka '" + settings_.name + "': the producer hit a fatal error and is restarting"};
    if (!probe_) return {false, "kafka '" + settings_.name + "': not started"};
    Probe::Reading r = probe_->reading();
    uint64_t now = net::monotonic_ms();
    if (!r.checked) return {false, "kafka '" + settings_.name + "': brokers not checked yet"};
    if (!r.reachable)
        return {false, "kafka '" + settings_.name + "': no broker answers (" + r.error + ") for " +
                           std::to_string((now - r.down_since_ms) / 1000) + " s"};
    // Brokers answer but do not acknowledge what we produce (e.g. no in-sync replicas).
    constexpr uint64_t stall_ms = 10000;
    if (slots_used_ > 0 && now - last_progress_ms_ > stall_ms)
        return {false, "kafka '" + settings_.name + "': " + std::to_string(slots_used_) +
                           " record(s) not acknowledged for " +
                           std::to_string((now - last_progress_ms_) / 1000) + " s"};
    return {true, {}};
}

std::vector<PartitionLag> Adapter::lag(const std::string& route) const {
    std::vector<PartitionLag> out;
    if (!probe_) return out;
    Probe::Reading r = probe_->reading();
    for (const auto& o : outs_) {
        if (!route.empty() && o->s_.name != route) continue;
        for (const auto& [id, p] : o->parts_) {
            PartitionLag l;
            l.route = o->s_.name;
            l.topic = o->s_.topic;
            l.partition = id;
            l.committed = p.committed;
            l.position = p.next_offset;
            auto it = r.high.find({o->s_.topic, id});
            if (it != r.high.end()) l.high = it->second;
            // From the first record not yet settled by consumers (what the next commit covers).
            int64_t from = !p.pending.empty() ? p.pending.front()->offset
                           : l.position >= 0  ? l.position
                           : l.committed >= 0 ? l.committed
                                              : p.start;
            if (l.high == 0) from = 0;  // an empty partition has no lag wherever we start
            if (l.high >= 0 && from >= 0) l.lag = std::max<int64_t>(0, l.high - from);
            out.push_back(std::move(l));
        }
    }
    return out;
}

}  // namespace trestle::kafka
