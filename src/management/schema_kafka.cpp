// Kafka: the kafka entity (the cluster, state topics) and kafkaRoute (addresses <-> a topic).
#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

void add_kafka(Types& types) {
    EntityTypeSchema t;
    t.short_name = "kafka";
    t.long_name = "io.trestle.kafka";
    t.singleton = true;
    t.description =
        "The Kafka cluster behind the router (kafkaRoutes bind addresses to its "
        "topics).";
    t.attributes.push_back(str("name", "Name used in logs and management.", "kafka"));
    t.attributes.push_back(str("bootstrapServers",
                               "Comma-separated host:port list, or 'embedded': librdkafka's "
                               "mock cluster in-process on loopback (in memory, volatile; "
                               "its address is logged).",
                               "embedded"));
    t.attributes.push_back(integer("embeddedBrokers", "Brokers of the embedded cluster.", 1, 1, 9));
    t.attributes.push_back(integer("embeddedPartitions",
                                   "Partitions of the topics created in the embedded cluster.", 4,
                                   1, 1000));
    t.attributes.push_back(map("properties",
                               "librdkafka properties for every Kafka client of the router "
                               "(security.protocol, sasl.*, ssl.*, ...), as a JSON object."));
    t.attributes.push_back(integer("maxInFlight",
                                   "Messages per kafkaRoute sent to Kafka and not yet "
                                   "acknowledged; producers get no credit beyond it.",
                                   10000, 1, 1000000));
    t.attributes.push_back(
        boolean("createTopics", "Create the routes' and state topics that do not exist.", true));
    t.attributes.push_back(str("retainedTopic",
                               "Compacted topic of retained messages (empty: in memory only).",
                               "trestle.retained"));
    t.attributes.push_back(str("sessionsTopic",
                               "Compacted topic of MQTT sessions, wills and instance "
                               "heartbeats, shared by every instance on this Kafka (empty: "
                               "in memory only).",
                               "trestle.sessions"));
    t.attributes.push_back(integer("instanceTimeout",
                                   "Seconds without a heartbeat after which another instance "
                                   "publishes the wills of this one's clients.",
                                   10, 2, 3600));
    t.attributes.push_back(str("deadLetterTopic",
                               "Where records go that map to no address or that consumers "
                               "reject (reason in header trestle.dead-letter-reason).",
                               "trestle.dead-letter"));
    types.push_back(std::move(t));
}

void add_kafka_route(Types& types) {
    EntityTypeSchema t;
    t.short_name = "kafkaRoute";
    t.long_name = "io.trestle.kafkaRoute";
    t.description =
        "Binds addresses to a Kafka topic: producers' messages go to the topic, "
        "its records go to the addresses' consumers.";
    t.attributes.push_back(str("name", "Unique name (default: the prefix or pattern)."));
    t.attributes.push_back(str("prefix", "Matches the address and addresses below it."));
    t.attributes.push_back(str("pattern", "Token pattern: '*' one token, '#' zero or more."));
    t.attributes.push_back(required(str("topic", "The Kafka topic.")));
    t.attributes.push_back(enumeration("direction",
                                       "in = producers' messages into the topic, out = the "
                                       "topic's records to consumers, both.",
                                       {"in", "out", "both"}, "both"));
    t.attributes.push_back(enumeration("key",
                                       "Record key: the address (keeps an address ordered in "
                                       "one partition), or none (address in header "
                                       "trestle.address).",
                                       {"address", "none"}, "address"));
    t.attributes.push_back(
        boolean("headers", "Map message properties to record headers and back.", true));
    t.attributes.push_back(str("groupId",
                               "Consumer group (default: trestle.<name> for balanced and "
                               "closest addresses, shared by all instances; "
                               "trestle.<name>.<router id> for multicast ones)."));
    t.attributes.push_back(enumeration("startPosition",
                                       "Where a new consumer group starts (default: earliest "
                                       "for balanced/closest, latest for multicast).",
                                       {"earliest", "latest"}));
    t.attributes.push_back(str("deadLetterTopic", "Overrides the kafka entity's."));
    t.attributes.push_back(str("address",
                               "Address of records with neither key nor trestle.address "
                               "(default: none, they are dead-lettered)."));
    types.push_back(std::move(t));
}

}  // namespace trestle::management::schema
