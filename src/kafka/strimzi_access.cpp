// The Strimzi AMQP bridge's dialect (mapping/strimzi.hpp): a sender's target or each message's
// `to` names the topic, annotations the key and partition; a receiver's source names a topic
// and a consumer group, its filters a partition and an offset.
#include "kafka/client.hpp"
#include "kafka/direct_access.hpp"
#include "mapping/strimzi.hpp"

namespace trestle::kafka {

namespace {

class StrimziAccess final : public DirectAccess {
  public:
    std::string_view id() const override { return "strimzi"; }
    std::string_view title() const override { return "Strimzi"; }

    bool read_target(std::string_view address, DirectTarget& out,
                     core::ErrorCondition&) const override {
        out.topic = mapping::strimzi::topic_name(address);  // empty: per message `to`
        return true;
    }

    bool read_source(std::string_view address, std::string_view filter, DirectConsume& out,
                     core::ErrorCondition& error) const override {
        mapping::strimzi::Consume c;
        if (!mapping::strimzi::read_consume(address, filter, c, error)) return false;
        out.topic = c.topic;
        out.group = c.group;
        out.partition = c.partition;
        if (c.offset) out.offset = *c.offset;
        return true;
    }

    bool read_produce(const core::Message& m, DirectProduce& out,
                      std::vector<mapping::KafkaRecord>& records, std::string& error) override {
        if (records.empty()) records.resize(1);
        mapping::Produce p;
        if (!mapping::strimzi::read_produce(m, p, records[0], error)) return false;
        out.topic = std::move(p.topic);
        out.partition = p.partition;
        out.count = 1;
        return true;
    }

    core::MessageRef message(const std::string& topic, const rd_kafka_message_t* m) const override {
        std::optional<std::string_view> key;
        if (m->key) key.emplace(static_cast<const char*>(m->key), m->key_len);
        std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
        return mapping::strimzi::message(topic, m->partition, m->offset, key, value);
    }

    core::ErrorCondition produce_failed(rd_kafka_resp_err_t err) const override {
        return {std::string(mapping::strimzi::condition::error_to_kafka),
                "Kafka: " + error_text(err)};
    }
    std::string_view produce_condition() const override {
        return mapping::strimzi::condition::error_to_kafka;
    }
    std::string_view subscribe_condition() const override {
        return mapping::strimzi::condition::kafka_subscribe;
    }
};

}  // namespace

DirectAccess& strimzi_access() {
    static StrimziAccess instance;
    return instance;
}

}  // namespace trestle::kafka
