#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "kafka/adapter.hpp"
#include "kafka/commit_tracker.hpp"
#include "kafka/compacted_stores.hpp"
#include "kafka/direct_links.hpp"
#include "kafka/embedded.hpp"
#include "kafka/eventhubs_nodes.hpp"
#include "kafka/probe.hpp"
#include "kafka/records.hpp"
#include "kafka/route_in.hpp"
#include "kafka/route_out.hpp"
#include "kafka/session_replay.hpp"
#include "trestle/core/address_pattern.hpp"

namespace trestle::kafka {

namespace asio = boost::asio;

std::string RouteSettings::bound_pattern() const {
    return prefix.empty() ? core::canonical_pattern(pattern) : core::prefix_to_pattern(prefix);
}

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
        for (const auto& [id, p] : o->tracker_.parts()) {
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
