// Out of Kafka: a consumer feeding the addresses' consumers through a from-waypoint link (or a
// client's direct receiver link). Credit pauses partitions, so Kafka, not router memory, holds
// the backlog; offsets are committed up to the first unsettled record (CommitTracker);
// rejected records go to a dead-letter topic; released ones wait for another consumer.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka/adapter.hpp"
#include "kafka/client.hpp"
#include "kafka/commit_tracker.hpp"
#include "kafka/direct_access.hpp"
#include "kafka/fetch_thread.hpp"
#include "kafka/probe.hpp"
#include "mapping/kafka.hpp"
#include "trestle/core/router.hpp"

namespace trestle::kafka {

class Adapter::RouteOut final : public core::LinkPort {
  public:
    using Track = CommitTracker::Track;

    RouteOut(Adapter& a, const RouteSettings& s) : a_(a), s_(s) {}

    ~RouteOut() override {
        *alive_ = false;
        fetch_.reset();
        release_all();
    }

    std::string start();

    // Direct topic access on a link-routed link of a client receiver: the client's group
    // (Strimzi: from its committed offsets, a new group from the earliest) or one partition
    // from an offset (or a time); records in the dialect's form.
    std::string start_direct(core::Link* l, DirectAccess& dialect, const DirectConsume& c);

    // One partition from `offset` (a real or logical one), without a group's rebalancing.
    std::string assign(int32_t partition, int64_t offset);

    std::string open_consumer(const std::string& start);

    // Each half prefetch limit popped (see FetchBurst), or after a resume: see Probe::nudge.
    void nudge();

    // Stops consuming: commits what consumers settled, leaves the group, unbinds.
    void shutdown();

    // Fetched records, a bounded batch per call.
    bool serve();

    // A record from the consumer queue (direct links; a route's records come through its fetch
    // thread).
    void take(const rd_kafka_message_t* m);

    // A route's record under its settings (on the fetch thread: touches nothing else).
    void read_fetched(const rd_kafka_message_t* m, uint64_t now_ms, int64_t wall_ms,
                      Fetched& f) const;

    void take(Fetched&& f);

    // What the fetch thread read since the last call.
    void take_fetched();

    // A route's records are read on a thread of its own; the loop keeps the consumer queue
    // (rebalances, errors).
    void start_fetch_thread();

    // Before the assignment starts fetching (after it, records may reach the consumer queue
    // first): the partitions' records go to the fetch thread's queue.
    void forward(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* parts);

    // Hands waiting records to the core while there is credit; pauses the partitions when
    // there is none (or too much is outstanding), so Kafka, not router memory, holds the rest.
    void send();

    size_t max_outstanding() const { return link ? link->capacity() * 8 : 0; }

    // Per partition, the first record not yet handed to the core: a subscriber attached now
    // receives it and everything after it live.
    void live_positions(std::vector<core::LogPosition>& out) const;

    void pause(bool on);

    void send_dead_letter(const mapping::KafkaRecord& r, const std::string& reason);

    // core::LinkPort
    void deliver(core::Delivery&) override {}
    void update(core::Delivery& d, const core::DeliveryState& state, bool settle) override;

    void flow(uint32_t credit, bool drain) override {
        credit_ = drain ? 0 : static_cast<int32_t>(credit);
        // Not from inside a port call: the waker serves on the next turn.
        if (credit_ > 0 && waker_ && (!backlog_.empty() || paused_)) waker_->poke();
    }
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override {
        link = nullptr;
        if (direct_) a_.drop_direct(this);
    }

    void finish(Track* t) { tracker_.done(t); }

    // Commits, per partition, up to the first record not yet done (CommitTracker).
    void commit(bool async);

    void tick();

    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* parts, void* opaque);

    static bool cooperative(rd_kafka_t* rk) {
        return std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    }

    void assign_now(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts);

    // "latest" means the records produced since this router started (not since the group
    // join completed, seconds later): a new group starts at the start time's offsets. The
    // lookups are network round trips (seconds when Kafka is slow): on the probe's thread,
    // the partitions assigned when they are done (librdkafka waits for the assign call).
    void look_up_start(rd_kafka_topic_partition_list_t* parts);

    void start_looked_up(uint64_t lookup, const Probe::StartOffsets& r);

    // Another member owns the partition now (it redelivers from the committed offset).
    void drop_partition(int32_t id);

    void release_all() {
        backlog_.clear();
        retry_.clear();
        tracker_.clear();
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
    DirectAccess* direct_ = nullptr;  // a client's link, not a route's waypoint
    bool commit_ = true;
    uint32_t log_id_ = 0;
    CommitTracker tracker_;
    std::deque<Track*> backlog_;  // fetched, waiting for credit
    std::deque<Track*> retry_;    // released by an anycast consumer, sent again later
    uint64_t next_commit_ = 0;
    RouteCounters counters;
};

}  // namespace trestle::kafka
