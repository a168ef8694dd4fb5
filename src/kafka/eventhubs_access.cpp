// The Azure Event Hubs dialect (mapping/eventhubs.hpp): a hub is a topic, a sender's target may
// name a partition, a batch carries one record per event, and a receiver reads one partition of
// a consumer group from a selector's start, keeping its own checkpoints (nothing committed).
#include "kafka/client.hpp"
#include "kafka/direct_access.hpp"
#include "kafka/eventhubs_nodes.hpp"
#include "mapping/eventhubs.hpp"

namespace trestle::kafka {

namespace {

class EventHubsAccess final : public DirectAccess {
  public:
    std::string_view id() const override { return "eventhubs"; }
    std::string_view title() const override { return "Event Hubs"; }

    bool is_node(std::string_view address) const override {
        return Adapter::EventHubsNodes::is_node(address);
    }

    bool read_target(std::string_view address, DirectTarget& out,
                     core::ErrorCondition& error) const override {
        mapping::eventhubs::Target t;
        if (!mapping::eventhubs::read_target(address, t, error)) return false;
        out.topic = t.hub;
        out.partition = t.partition;
        return true;
    }

    bool read_source(std::string_view address, std::string_view filter, DirectConsume& out,
                     core::ErrorCondition& error) const override {
        mapping::eventhubs::Consume c;
        if (!mapping::eventhubs::read_consume(address, filter, c, error)) return false;
        using Kind = mapping::eventhubs::Start::Kind;
        out.topic = c.hub;
        out.group = c.group;
        out.partition = c.partition;
        out.commit = false;
        out.offset = c.start.kind == Kind::earliest ? RD_KAFKA_OFFSET_BEGINNING
                     : c.start.kind == Kind::latest ? RD_KAFKA_OFFSET_END
                                                    : c.start.value;
        if (c.start.kind == Kind::time) out.from_time_ms = c.start.value;
        return true;
    }

    // One record per event (key from x-opt-partition-key, properties as headers; hub and
    // partition from the link's target). All are read before any is produced: a bad event
    // rejects a batch whole.
    bool read_produce(const core::Message& m, DirectProduce& out,
                      std::vector<mapping::KafkaRecord>& records, std::string& error) override {
        // An SDK's batch holds its events; any other message is one event.
        if (!mapping::eventhubs::read_batch(m, events_)) events_.assign(1, m.bytes());
        if (records.size() < events_.size()) records.resize(events_.size());
        mapping::Produce p;
        for (size_t i = 0; i < events_.size(); ++i)
            if (!mapping::read_direct_produce(events_[i], {}, "x-opt-partition-key", p, records[i],
                                              error, true)) {
                if (events_.size() > 1)
                    error = "event " + std::to_string(i + 1) + " of the batch: " + error;
                return false;
            }
        out.topic.clear();
        out.partition.reset();
        out.count = events_.size();
        return true;
    }

    core::MessageRef message(const std::string&, const rd_kafka_message_t* m) const override {
        std::optional<std::string_view> key;
        if (m->key) key.emplace(static_cast<const char*>(m->key), m->key_len);
        std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        return mapping::eventhubs::message(m->offset, ts > 0 ? ts : 0, key, value,
                                           record_headers(m));
    }

  private:
    std::vector<std::string_view> events_;  // a transfer's events (reused; the loop's thread)
};

}  // namespace

DirectAccess& eventhubs_access() {
    static EventHubsAccess instance;
    return instance;
}

}  // namespace trestle::kafka
