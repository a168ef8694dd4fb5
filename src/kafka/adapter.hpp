// The Kafka adapter: kafkaRoutes bind addresses to topics. Into Kafka, a route is the waypoint
// of its addresses in the core (an idempotent acks=all producer; outcomes only after the
// delivery report; credit from the in-flight budget). Out of Kafka, a consumer feeds the
// addresses' consumers (credit pauses partitions; offsets committed only up to the first
// unsettled record; rejected records go to a dead-letter topic).
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <array>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kafka/client.hpp"
#include "kafka/producer_thread.hpp"
#include "mapping/kafka.hpp"
#include "net/event_loop.hpp"
#include "trestle/core/router.hpp"

namespace trestle::kafka {

class EmbeddedCluster;
class KafkaRetainedStore;
class KafkaSessionState;
class Probe;

struct RouteSettings {
    std::string name;
    std::string prefix;  // one of prefix / pattern (qdrouterd syntax)
    std::string pattern;
    std::string topic;
    bool in = true;   // producers' messages go to the topic
    bool out = true;  // the topic's records go to the addresses' consumers
    bool key_is_address = true;
    bool headers = true;
    std::string group_id;           // empty: derived from the distribution
    std::string start_position;     // earliest | latest; empty: derived from the distribution
    std::string dead_letter_topic;  // empty: the kafka entity's
    std::string address;            // for records that name no address

    // The qdrouterd-syntax pattern of the bound addresses.
    std::string bound_pattern() const;
};

struct Settings {
    std::string name = "kafka";
    std::string bootstrap = "embedded";
    int embedded_brokers = 1;
    int embedded_partitions = 4;
    Properties properties;
    uint32_t max_in_flight = 10000;
    bool create_topics = true;
    std::string retained_topic = "trestle.retained";
    std::string sessions_topic = "trestle.sessions";
    uint32_t instance_timeout_ms = 10000;  // no heartbeat for this long: an instance is gone
    std::string dead_letter_topic = "trestle.dead-letter";
    std::vector<RouteSettings> routes;
};

struct RouteCounters {
    uint64_t produced = 0;        // delivery reports: in Kafka
    uint64_t produce_failed = 0;  // delivery reports: failed (outcome rejected)
    uint64_t in_flight = 0;       // produced, no delivery report yet
    uint64_t consumed = 0;        // records routed out
    uint64_t dead_lettered = 0;
    uint64_t redelivered = 0;
};

// One consumed partition: where the route's consumer stands against the end of the log.
struct PartitionLag {
    std::string route, topic;
    int32_t partition = 0;
    int64_t committed = -1;  // -1: nothing committed by this router yet
    int64_t position = -1;   // after the last record fetched; -1: none yet
    int64_t high = -1;       // end of the log as last probed; -1: unknown
    int64_t lag = -1;        // high - committed (or - position); -1: unknown
};

// Time from produce to delivery report, as a Prometheus histogram.
struct LatencyHistogram {
    static constexpr std::array<double, 11> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1.0,  5.0};
    std::array<uint64_t, bounds.size()> counts{};  // per bucket, not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
    void add(double seconds) {
        size_t i = 0;
        while (i < bounds.size() && seconds > bounds[i]) ++i;
        if (i < bounds.size()) ++counts[i];
        ++count;
        sum_seconds += seconds;
    }
};

// Can the router use Kafka now? (readiness)
struct Health {
    bool up = false;
    std::string reason;  // why not
};

class Adapter final : public core::ConnectionPort, public core::MessageLogs {
  public:
    Adapter(core::Router& router, net::EventLoop& loop, Settings settings, std::string router_id);
    ~Adapter() override;

    // Connects (starting the embedded cluster if configured), creates topics, binds the
    // routes. Returns an error description, or empty.
    std::string start();
    // Delivery reports for everything in flight (bounded wait), commits, then unbinds.
    void shutdown();

    const Settings& settings() const { return settings_; }
    const std::string& bootstrap_servers() const { return bootstrap_; }
    // Librdkafka properties plus the broker list, for other clients of the same cluster.
    Properties client_properties() const;
    RouteCounters counters(const std::string& route) const;
    // Runtime management: binds a new route at once (its topic created if configured so) /
    // unbinds one (its consumer commits what was settled and leaves its group). add_route
    // returns an error description, or empty.
    std::string add_route(const RouteSettings& r);
    bool remove_route(const std::string& name);
    // Brokers answer (probed round trip) and produces are acknowledged; the reason if not.
    Health health() const;
    // Every consumed partition of every route (of `route` only, if given).
    std::vector<PartitionLag> lag(const std::string& route = {}) const;
    const LatencyHistogram& produce_latency() const { return latency_; }
    // MQTT sessions and wills in the sessions topic (null without one).
    KafkaSessionState* session_state() { return sessions_.get(); }

    // core::MessageLogs: the multicast routes' topics, which a resumed session catches up from.
    std::vector<core::LogPosition> live_positions() const override;
    const std::string& log_name(uint32_t id) const override;
    uint64_t replay(std::vector<core::LogPosition> from,
                    std::function<void(core::MessageRef, std::string_view)> record,
                    std::function<void()> done) override;
    void cancel(uint64_t replay_id) override;
    uint64_t in_flight() const { return slots_used_; }

    // core::ConnectionPort
    core::LinkPort* open_link(core::Link&, const core::AttachRequest&,
                              core::ErrorCondition&) override {
        return nullptr;
    }
    void close(const core::ErrorCondition&) override {}

    class RouteIn;
    class RouteOut;
    class Replayer;
    class DirectPort;
    class EventHubsNodes;

  private:
    friend class RouteIn;
    friend class RouteOut;
    friend class Replayer;
    uint32_t log_id(const std::string& topic);
    void start_direct();
    core::LinkPort* open_direct(core::Link& link, const core::AttachRequest& req,
                                core::ErrorCondition& refusal);
    bool has_direct(const void* port) const;
    void drop_direct(RouteIn* r);
    void drop_direct(RouteOut* o);
    const RouteSettings* out_route(const std::string& topic) const;

    // What a produced record's opaque points at: the adapter's slot table (no allocation per
    // record, and a delivery report that outlives its delivery finds an empty slot).
    struct Slot {
        RouteIn* route = nullptr;
        core::Delivery* delivery = nullptr;  // null: presettled, dead letter, or forgotten
        uint32_t next_free = 0;
        uint32_t records = 1;  // reports still due (an Event Hubs batch: one per event)
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;  // a batch's first failure
        bool used = false;
        uint64_t produced_us = 0;  // the loop's turn stamp (latency without a clock read)
    };
    uint32_t take_slot(RouteIn* route, core::Delivery* d);
    void free_slot(uint32_t i);
    void forget_route(RouteIn* route);

    void delivery_report(void* opaque, rd_kafka_resp_err_t err);
    void serve_reports();
    void settle_failures();
    void refill_credit();
    std::string create_topics();
    std::string create_topics(std::vector<std::string> topics);
    std::string bind_route(const RouteSettings& r);
    std::vector<std::string> consumed_topics() const;
    bool produce_dead_letter(const std::string& topic, const mapping::KafkaRecord& record,
                             const std::string& reason);
    std::string make_producer();
    void schedule_tick();
    void tick();

    core::Router& router_;
    net::EventLoop& loop_;
    Settings settings_;
    std::string router_id_;
    int64_t started_ms_;  // wall clock: where "latest" starts for a new consumer group
    std::string bootstrap_;
    std::unique_ptr<EmbeddedCluster> embedded_;
    Handle producer_;
    rd_kafka_queue_t* admin_queue_ = nullptr;  // CreateTopics results
    std::unique_ptr<QueueWaker> admin_waker_;
    core::Connection* core_ = nullptr;
    std::unique_ptr<KafkaRetainedStore> retained_;
    std::unique_ptr<KafkaSessionState> sessions_;
    std::unique_ptr<Replayer> replayer_;
    std::unique_ptr<DirectPort> direct_port_;
    std::unique_ptr<EventHubsNodes> eventhubs_nodes_;  // made when a client first needs them
    core::Connection* direct_core_ = nullptr;          // route container of direct topic access
    std::vector<std::string> log_names_;               // Message::origin_log - 1
    std::unique_ptr<Probe> probe_;
    LatencyHistogram latency_;
    // The wall clock as the loop's cached monotonic clock plus an offset refreshed every tick:
    // record timestamps and expiries without a clock read per message.
    int64_t wall_offset_ms_ = 0;
    int64_t wall_ms() const;
    void refresh_wall_offset();
    // Producer topic handles of the routes' topics: producev by handle, not by name (a name
    // costs librdkafka a write lock and a topic search per record). Dropped before the
    // producer they belong to; `topics_gen_` tells routes their cached handle is gone.
    std::vector<std::pair<std::string, rd_kafka_topic_t*>> topics_;
    uint32_t topics_gen_ = 1;
    rd_kafka_topic_t* topic_handle(const std::string& name);
    void drop_topic_handles();
    uint64_t slots_used_ = 0;        // records produced, no delivery report yet
    uint64_t last_progress_ms_ = 0;  // last delivery report, or when slots_used_ left 0
    std::vector<std::unique_ptr<RouteIn>> ins_;
    std::vector<std::unique_ptr<RouteOut>> outs_;
    std::vector<Slot> slots_;
    uint32_t free_slot_ = 0;  // 1-based index of the first free slot (0: none)
    // Produce calls that failed inside a port call, settled right after it.
    std::vector<std::pair<uint32_t, std::string>> failed_;
    bool failures_posted_ = false;
    bool fatal_ = false;  // the idempotent producer hit a fatal error
    // Routes' records reach librdkafka, and all delivery reports come back, through this
    // thread; a turn's records are handed over once the turn's handlers are done (a
    // Flushable). Made with the producer, destroyed after it.
    struct SubmitProduced;
    std::unique_ptr<ProducerThread> producer_thread_;
    std::shared_ptr<net::Flushable> submit_produced_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for what the thread posts
    void produce_off_loop(rd_kafka_topic_t* rkt, const mapping::KafkaRecord& r, uint32_t slot,
                          bool last);
    boost::asio::steady_timer ticker_;
    bool stopping_ = false;
};

}  // namespace trestle::kafka
