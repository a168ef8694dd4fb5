// Into Kafka: the waypoint link of a route's addresses (or a client's direct sender link).
// Each delivery becomes a record for the producer thread; its outcome waits for the delivery
// report; credit is what is left of the route's in-flight budget.
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
#include "net/event_loop.hpp"
#include "trestle/core/router.hpp"

namespace trestle::kafka {

class Adapter::RouteIn final : public core::LinkPort {
  public:
    RouteIn(Adapter& a, const RouteSettings& s) : a_(a), s_(s) {
        options_.key_is_address = s.key_is_address;
        options_.headers = s.headers;
    }

    std::string attach();

    void deliver(core::Delivery& d) override;

    // Settled right after this port call (the core is not re-entered from inside one).
    void post_failures();

    // Direct topic access (a client's sender link): the dialect reads the message's records
    // (one, or an Event Hubs batch's events: all read before any is produced, so a bad event
    // rejects the batch whole), topic and partition; the delivery is settled when every record
    // is acknowledged.
    void produce_direct(core::Delivery& d, uint32_t slot);

    void update(core::Delivery& d, const core::DeliveryState&, bool settle) override;
    void flow(uint32_t, bool) override {}
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override {
        link = nullptr;
        a_.forget_route(this);
        if (direct) a_.drop_direct(this);
    }

    // The producer's handle of the route's topic, taken again after a producer restart.
    rd_kafka_topic_t* topic();

    Adapter& a_;
    const RouteSettings s_;  // a copy: routes come and go at runtime
    rd_kafka_topic_t* topic_ = nullptr;
    uint32_t topic_gen_ = 0;
    DirectAccess* direct = nullptr;    // a client's direct link, not a route's waypoint
    std::optional<int32_t> partition;  // a direct link's target's partition
    mapping::KafkaRecordOptions options_;
    mapping::KafkaRecord record_;              // reused: no allocation per message once warm
    std::vector<mapping::KafkaRecord> batch_;  // a direct link's records (reused)
    core::Link* link = nullptr;
    int32_t granted = 0;  // credit the core has from us, as far as we know
    RouteCounters counters;
};

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

}  // namespace trestle::kafka
