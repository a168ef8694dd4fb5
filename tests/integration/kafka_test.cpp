// Kafka behind the routing core: addresses bound to topics, the settlement chain through
// Kafka's delivery reports, consumers fed from topics, faults, restarts and two instances on
// one Kafka. Kafka is librdkafka's mock cluster in its own process; kcat reads and writes
// topics independently of Trestle.
#include <gtest/gtest.h>

#include <regex>

#include <proton/annotation_key.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <unistd.h>

#include "amqp_client.hpp"
#include "kafka_helpers.hpp"
#include "mqtt_helpers.hpp"
#include "router_process.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string router_config(const std::string& id, const std::string& bootstrap,
                          const std::string& extra = "", const std::string& kafka_extra = "") {
    return "router {\n    id: " + id +
           "\n}\n"
           "listener {\n    name: amqp\n    host: 127.0.0.1\n    port: 0\n}\n"
           "mqttListener {\n    name: mqtt\n    host: 127.0.0.1\n    port: 0\n}\n"
           "address {\n    prefix: jobs\n    distribution: balanced\n}\n" +
           kafka_section(bootstrap, kafka_extra) +
           "kafkaRoute {\n    name: telemetry\n    pattern: telemetry/#\n    topic: telemetry\n}\n"
           "kafkaRoute {\n    name: jobs\n    prefix: jobs\n    topic: jobs\n}\n" +
           extra;
}

// A trestled bound to the mock cluster, ready once its consumers own their partitions.
struct Instance {
    Instance(const std::string& id, const std::string& bootstrap, const std::string& extra = "",
             const std::string& kafka_extra = "", std::vector<std::string> args = {})
        : router(std::make_unique<RouterProcess>(router_config(id, bootstrap, extra, kafka_extra),
                                                 std::move(args))) {
        mqtt_port = router->port("mqtt");
        amqp_url = router->url("amqp");
    }
    // Waits until the route's consumer has been assigned its partitions.
    bool consuming(const std::string& route, Duration t = 20s) {
        return !router->process()
                    .wait_for_line(std::regex("kafkaRoute '" + route + "': assigned topic"), t)
                    .empty();
    }
    std::unique_ptr<RouterProcess> router;
    int mqtt_port = 0;
    std::string amqp_url;
};

class Kafka : public ::testing::Test {
  protected:
    void SetUp() override {
        kafka = std::make_unique<KafkaMock>();
        kafka->topic("telemetry", 4);
        kafka->topic("jobs", 2);
    }
    std::unique_ptr<KafkaMock> kafka;
};

// True once the publish was acknowledged with success; false on failure or timeout.
bool acked(const ::mqtt::delivery_token_ptr& t, Duration timeout) {
    try {
        return t->wait_for(timeout) && t->get_reason_code() == 0;
    } catch (const ::mqtt::exception&) {
        return false;
    }
}

// The reason code of a QoS 1 publish: the PUBACK's, or the one it failed with.
int publish_reason(Paho& c, const std::string& topic, const std::string& payload) {
    try {
        return c.publish(topic, payload, 1);
    } catch (const ::mqtt::exception& e) {
        return e.get_reason_code();
    }
}

std::string body_text(const proton::message& m) {
    if (m.body().type() == proton::BINARY)
        return std::string(proton::get<proton::binary>(m.body()));
    return proton::get<std::string>(m.body());
}

TEST_F(Kafka, MqttQos1PublishLandsInTheTopicWithKeyAndHeaders) {
    Instance a("A", kafka->bootstrap());
    Paho pub(a.mqtt_port, "kpub");
    pub.connect();
    ::mqtt::properties props{{::mqtt::property::USER_PROPERTY, "unit", "celsius"},
                             {::mqtt::property::CONTENT_TYPE, "text/plain"}};
    int64_t before = wall_ms();
    ASSERT_EQ(pub.publish("telemetry/dev1", "21.5", 1, false, props), 0);
    int64_t after = wall_ms();
    // Acknowledged means in Kafka: the record is there when the PUBACK is.
    auto recs = kcat_consume(kafka->bootstrap(), "telemetry");
    ASSERT_EQ(recs.size(), 1u);
    // Stamped with the router's cached clock: when it was published, not a stale turn's time.
    EXPECT_GE(recs[0].timestamp_ms, before);  // stamped when produced, after the send
    EXPECT_LE(recs[0].timestamp_ms, after);
    EXPECT_EQ(recs[0].key, "telemetry/dev1") << "key = the address";
    EXPECT_EQ(recs[0].value, "21.5");
    EXPECT_EQ(recs[0].headers.count("trestle.qos"), 0u) << "QoS 1 is a record without the header";
    EXPECT_EQ(recs[0].headers["unit"], "celsius");
    EXPECT_EQ(recs[0].headers["content-type"], "text/plain");
}

TEST_F(Kafka, AmqpSenderIsAcceptedOnlyOnceKafkaHasTheMessage) {
    Instance a("A", kafka->bootstrap());
    AmqpClient c(a.amqp_url);
    int s = c.open_sender("jobs/build");
    ASSERT_TRUE(c.wait_credit(s, 1)) << "a bound address has a destination: Kafka";
    proton::message m;
    m.body("compile");
    m.subject("job");
    m.properties().put("priority", "high");
    int64_t before = wall_ms();
    auto out = c.wait_outcome(s, c.send(s, m));
    int64_t after = wall_ms();
    EXPECT_EQ(out.state, transfer::ACCEPTED);
    EXPECT_TRUE(out.settled);
    auto recs = kcat_consume(kafka->bootstrap(), "jobs");
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].key, "jobs/build");
    EXPECT_EQ(recs[0].value, "compile");
    EXPECT_GE(recs[0].timestamp_ms, before);  // stamped when produced, after the send
    EXPECT_LE(recs[0].timestamp_ms, after);
    EXPECT_EQ(recs[0].headers["subject"], "job");
    EXPECT_EQ(recs[0].headers["priority"], "high");
}

// A sender with a fixed target (not anonymous) on a Kafka-bound address: the record carries
// what the message's header and annotations say (durable = QoS 1, TTL, retain), as for an
// anonymous sender, although such links are not inspected for AMQP -> AMQP forwarding.
TEST_F(Kafka, AFixedAddressAmqpSendersDurableTtlAndRetainReachTheRecord) {
    Instance a("A", kafka->bootstrap());
    AmqpClient c(a.amqp_url);
    int s = c.open_sender("jobs/nightly");
    ASSERT_TRUE(c.wait_credit(s, 2));
    proton::message durable;
    durable.body(std::string("d"));
    durable.durable(true);
    durable.ttl(proton::duration(60000));
    durable.message_annotations().put(proton::symbol("x-opt-retain-message"), true);
    EXPECT_EQ(c.wait_outcome(s, c.send(s, durable)).state, transfer::ACCEPTED);
    proton::message plain;
    plain.body(std::string("p"));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, plain)).state, transfer::ACCEPTED);
    auto recs = kcat_consume(kafka->bootstrap(), "jobs");
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].value, "d");
    EXPECT_EQ(recs[0].headers.count("trestle.qos"), 0u) << "durable: QoS 1, no header";
    EXPECT_EQ(recs[0].headers["trestle.retain"], "true");
    ASSERT_EQ(recs[0].headers.count("trestle.expires-at"), 1u) << "the TTL as an expiry";
    EXPECT_GT(std::stoll(recs[0].headers["trestle.expires-at"]), wall_ms() + 50000);
    EXPECT_EQ(recs[1].value, "p");
    EXPECT_EQ(recs[1].headers["trestle.qos"], "0") << "not durable: QoS 0";
    EXPECT_EQ(recs[1].headers.count("trestle.retain"), 0u);
    EXPECT_EQ(recs[1].headers.count("trestle.expires-at"), 0u);
}

TEST_F(Kafka, ARecordProducedWithKcatReachesMqttAndAmqpSubscribers) {
    Instance a("A", kafka->bootstrap());
    ASSERT_TRUE(a.consuming("telemetry"));
    Paho sub(a.mqtt_port, "ksub");
    sub.connect();
    sub.subscribe("telemetry/#", 1);
    AmqpClient c(a.amqp_url);
    LinkConfig acc;
    acc.auto_accept = true;
    int r = c.open_receiver("telemetry/dev9", acc);
    ASSERT_TRUE(c.wait_link_open(r));
    c.sync();
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/dev9", "from-kafka",
                 {{"site", "north"}, {"content-type", "text/plain"}});
    auto got = sub.receive(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->get_topic(), "telemetry/dev9");
    EXPECT_EQ(got->to_string(), "from-kafka");
    EXPECT_EQ(got->get_qos(), 1) << "a record without trestle.qos is QoS 1";
    EXPECT_EQ(::mqtt::get<std::string>(got->get_properties(), ::mqtt::property::CONTENT_TYPE),
              "text/plain");
    auto am = c.receive(r, 10s);
    ASSERT_TRUE(am);
    EXPECT_EQ(am->message.to(), "telemetry/dev9");
    EXPECT_EQ(proton::get<std::string>(am->message.properties().get("site")), "north");
}

// The kafka entity's properties are one set for every client of the router; each client gets
// those librdkafka applies to its kind. A producer-only property no longer reaches consumers
// (a CONFWARN each) nor the metadata probe (a producer: enable.gapless.guarantee without
// enable.idempotence made it refuse to start, idempotence being set by default only on the
// router's real producer); a consumer-only one does not reach the producer.
TEST_F(Kafka, EachKafkaClientGetsOnlyThePropertiesThatApplyToItsKind) {
    Instance a("A", kafka->bootstrap(), "",
               "    properties: {\"enable.gapless.guarantee\": \"true\", \"linger.ms\": \"2\", "
               "\"fetch.wait.max.ms\": \"50\"}\n");
    ASSERT_TRUE(a.consuming("telemetry"));
    Paho sub(a.mqtt_port, "props-sub");
    sub.connect();
    sub.subscribe("telemetry/#", 1);
    Paho pub(a.mqtt_port, "props-pub");
    pub.connect();
    ASSERT_EQ(pub.publish("telemetry/p", "produced", 1), 0);
    auto recs = kcat_consume(kafka->bootstrap(), "telemetry");
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].value, "produced");
    auto got = sub.receive(10s);
    ASSERT_TRUE(got) << "the route's consumer reads the topic";
    EXPECT_EQ(got->to_string(), "produced");
    // librdkafka: "... is a producer property and will be ignored by this consumer instance"
    EXPECT_FALSE(a.router->process().has_line(std::regex("will be ignored by this")))
        << a.router->process().output();
}

// librdkafka 2.0 stops fetching for a second whenever its prefetch queue is full; a route
// wakes the fetcher once it has drained a full queue. Here every fetch (64 KB) fills the
// 32 KB prefetch and 8 MB of records wait: without the wake-up they take about half a
// minute (measured: 4 MB in 16 s), with it about two seconds; the deadline is 15 s.
TEST_F(Kafka, ARouteIsNotThrottledToItsPrefetchLimitPerSecond) {
    Instance a("A", kafka->bootstrap(), "",
               "    properties: {\"queued.max.messages.kbytes\": \"32\", "
               "\"fetch.max.bytes\": \"65536\", \"max.partition.fetch.bytes\": \"65536\", "
               "\"message.max.bytes\": \"65536\"}\n");
    ASSERT_TRUE(a.consuming("telemetry"));
    Paho sub(a.mqtt_port, "bulk-sub");
    sub.connect();
    sub.subscribe("telemetry/#", 1);
    constexpr int n = 8000;
    // Over the four partitions (the mock cluster keeps only a few MB of each).
    std::vector<std::pair<std::string, std::string>> records;
    for (int i = 0; i < n; ++i) {
        std::string v = std::to_string(i);
        records.emplace_back("telemetry/bulk/" + std::to_string(i % 8),
                             v + std::string(1000 - v.size(), '.'));
    }
    kcat_produce_many(kafka->bootstrap(), "telemetry", records);
    auto deadline = std::chrono::steady_clock::now() + 15s;
    int got = 0;
    while (got < n && std::chrono::steady_clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (!sub.receive(std::max(left, std::chrono::milliseconds(1)))) break;
        ++got;
    }
    EXPECT_EQ(got, n) << "records received within 15 s";
}

// Receives `n` QoS 1 PUBLISH packets, acknowledging each; their payloads in order.
std::vector<std::string> receive_acking(RawMqtt& c, int n, Duration timeout) {
    std::vector<std::string> got;
    while (static_cast<int>(got.size()) < n) {
        auto p = c.receive(timeout);
        if (!p) break;
        if (p->type != trestle::mqtt::PacketType::publish) continue;
        got.push_back(p->publish.payload);
        c.ack(trestle::mqtt::PacketType::puback, p->publish.packet_id);
    }
    return got;
}

TEST_F(Kafka, ASlowQos1SubscriberLosesNoRecordItsSessionQueueCannotHold) {
    // Receive maximum 5 and a session queue of 10: a subscriber that acknowledges nothing yet
    // holds 15 of the 200 records. The rest wait in the router, unsettled (the route's
    // partitions pause once its capacity is used), instead of being dropped as a full queue
    // drops messages from MQTT publishers. The other subscriber acknowledges as it reads
    // (still slower than the router: it needs the same), and gets all of them meanwhile.
    RouterProcess r(
        "router {\n    id: A\n}\n"
        "listener {\n    name: amqp\n    host: 127.0.0.1\n    port: 0\n}\n"
        "mqttListener {\n    name: mqtt\n    host: 127.0.0.1\n    port: 0\n"
        "    receiveMaximum: 5\n    maxSessionQueue: 10\n}\n" +
        kafka_section(kafka->bootstrap(), "") +
        "kafkaRoute {\n    name: telemetry\n    pattern: telemetry/#\n"
        "    topic: telemetry\n}\n");
    ASSERT_FALSE(r.process()
                     .wait_for_line(std::regex("kafkaRoute 'telemetry': assigned topic"), 20s)
                     .empty());
    RawMqtt slow(r.port("mqtt"), 4), fast(r.port("mqtt"), 4);
    ASSERT_EQ(slow.connect("slow").code, 0);
    ASSERT_EQ(fast.connect("fast").code, 0);
    slow.subscribe(1, "telemetry/#", 1);
    fast.subscribe(1, "telemetry/#", 1);
    ASSERT_TRUE(slow.receive(5s).has_value());  // SUBACK
    ASSERT_TRUE(fast.receive(5s).has_value());
    constexpr int n = 200;
    std::vector<std::pair<std::string, std::string>> records;
    std::vector<std::string> want;
    for (int i = 0; i < n; ++i) {
        want.push_back("m" + std::to_string(i));
        records.emplace_back("telemetry/slow", want.back());  // one key: one partition, in order
    }
    kcat_produce_many(kafka->bootstrap(), "telemetry", records);
    // Once the fast one has all, the router has read every record.
    EXPECT_EQ(receive_acking(fast, n, 10s), want);
    EXPECT_EQ(receive_acking(slow, n, 10s), want);
    EXPECT_EQ(r.process().output().find("queue full"), std::string::npos) << "a record was dropped";
}

// With the cooperative protocol (librdkafka's cooperative-sticky assignor) a rebalance adds
// partitions to those a route has, or takes some away, without revoking all. Here a route is
// paused (its subscriber takes nothing) through both: a second instance joining takes one
// partition, leaving takes it back. Every record of the partition it kept then arrives once
// the subscriber acknowledges. (A partition added while the route is paused is paused with
// the rest; whether an added one was left running instead is not observable here: the route
// re-checks its pause state every second while its credit is short.)
TEST_F(Kafka, APausedRouteThroughCooperativeRebalancesDeliversEverythingWithCredit) {
    kafka->topic("coop", 2);
    auto config = [&](const std::string& id, const std::string& mqtt_limits) {
        return "router {\n    id: " + id +
               "\n}\n"
               "listener {\n    name: amqp\n    host: 127.0.0.1\n    port: 0\n}\n"
               "mqttListener {\n    name: mqtt\n    host: 127.0.0.1\n    port: 0\n" +
               mqtt_limits + "}\n" +
               kafka_section(kafka->bootstrap(),
                             "    properties: {\"partition.assignment.strategy\": "
                             "\"cooperative-sticky\"}\n") +
               "address {\n    prefix: coop\n    distribution: balanced\n}\n"
               "kafkaRoute {\n    name: coop\n    prefix: coop\n    topic: coop\n}\n";
    };
    RouterProcess a(config("A", "    receiveMaximum: 5\n    maxSessionQueue: 10\n"));
    // A's route logs `what` (assigned, revoked) for the partitions `parts`.
    auto a_logs = [&a](const std::string& what, const std::string& parts, Duration t) {
        std::regex re("kafkaRoute 'coop': " + what + " topic 'coop' partitions \\[" + parts +
                      "\\]");
        return !a.process().wait_for_line(re, t).empty();
    };
    ASSERT_TRUE(a_logs("assigned", "0,1", 20s));
    auto b = std::make_unique<RouterProcess>(config("B", ""));
    auto got_b = b->process().wait_for_line(
        std::regex("kafkaRoute 'coop': assigned topic 'coop' partitions \\[(\\d)\\]"), 30s);
    ASSERT_EQ(got_b.size(), 2u) << "B never got a partition of its own";
    int mine = got_b[1] == "0" ? 1 : 0;  // A's, after the incremental revocation
    ASSERT_TRUE(a_logs("revoked", got_b[1], 20s));

    // A's subscriber takes nothing for now: A's route runs out of credit and pauses with
    // most of the records still in Kafka (the router holds at most a few thousand).
    RawMqtt sub(a.port("mqtt"), 4);
    ASSERT_EQ(sub.connect("coop-sub").code, 0);
    sub.subscribe(1, "coop/#", 1);
    ASSERT_TRUE(sub.receive(5s).has_value());  // SUBACK
    constexpr int n = 8000;
    std::vector<std::pair<std::string, std::string>> records;
    std::vector<std::string> want;
    for (int i = 0; i < n; ++i) {
        want.push_back("c" + std::to_string(i));
        records.emplace_back("coop/a", want.back());
    }
    kcat_produce_many(kafka->bootstrap(), "coop", records, mine);
    auto first = sub.receive(10s);
    ASSERT_TRUE(first && first->type == trestle::mqtt::PacketType::publish)
        << "the first record never came";
    EXPECT_EQ(first->publish.payload, "c0");

    // B leaves: its (empty) partition is added to A's paused route.
    b.reset();
    ASSERT_TRUE(a_logs("assigned", got_b[1], 30s));
    // Now the subscriber acknowledges, the first one too: every record arrives, in order.
    sub.ack(trestle::mqtt::PacketType::puback, first->publish.packet_id);
    std::vector<std::string> got = receive_acking(sub, n - 1, 10s);
    EXPECT_EQ(got.size(), static_cast<size_t>(n - 1))
        << "A's first partition stayed paused after the subscriber caught up";
    want.erase(want.begin());
    auto diff = std::mismatch(got.begin(), got.end(), want.begin());
    EXPECT_TRUE(diff.first == got.end())
        << "record " << (diff.first - got.begin()) << " out of order: " << *diff.first;
}

TEST_F(Kafka, NoAcknowledgementBeforeKafkaAcknowledges) {
    Instance a("A", kafka->bootstrap());
    Paho pub(a.mqtt_port, "kslow");
    pub.connect();
    ASSERT_EQ(pub.publish("telemetry/warm", "x", 1), 0);  // producer connected
    AmqpClient c(a.amqp_url);
    int s = c.open_sender("jobs/slow");
    ASSERT_TRUE(c.wait_credit(s, 1));
    kafka->command("down 1");
    auto tok = pub.client().publish(::mqtt::make_message("telemetry/dev1", "held", 1, false));
    int d = c.send(s, proton::message("held"));
    // While the broker is down neither the PUBACK nor the disposition may come.
    EXPECT_FALSE(tok->wait_for(1500ms)) << "PUBACK before Kafka had the message";
    EXPECT_EQ(c.outcome(s, d).state, transfer::NONE) << "outcome before Kafka had the message";
    kafka->command("up 1");
    EXPECT_TRUE(tok->wait_for(20s)) << "PUBACK once Kafka acknowledged";
    EXPECT_EQ(c.wait_outcome(s, d, 20s).state, transfer::ACCEPTED);
    auto recs = kcat_consume(kafka->bootstrap(), "telemetry");
    bool found = false;
    for (auto& r : recs) found |= r.value == "held";
    EXPECT_TRUE(found);
}

TEST_F(Kafka, AProduceErrorIsARejectionAReasonCodeOrAClose) {
    Instance a("A", kafka->bootstrap(),
               "kafkaRoute {\n    name: secret\n    prefix: secret\n"
               "    topic: secret\n    direction: in\n}\n");
    AmqpClient c(a.amqp_url);
    int s = c.open_sender("secret/a");
    ASSERT_TRUE(c.wait_credit(s, 1));
    // Produce (API key 0) refused: topic authorization failed (29), a permanent error.
    kafka->command("errors 0 1000 29");
    auto out = c.wait_outcome(s, c.send(s, proton::message("no")), 20s);
    EXPECT_EQ(out.state, transfer::REJECTED);
    EXPECT_EQ(out.condition, "amqp:unauthorized-access");
    EXPECT_NE(out.description.find("Kafka"), std::string::npos) << out.description;

    Paho v5(a.mqtt_port, "kv5");
    v5.connect();
    EXPECT_EQ(publish_reason(v5, "secret/b", "no"), 0x87) << "MQTT 5: not authorized";
    kafka->command("clear 0");
}
// A record librdkafka refuses before sending it (larger than message.max.bytes) fails its
// message alone: the ones before and after it land. The MQTT records (no headers) go through
// rd_kafka_produce_batch, the AMQP string ones (two headers) through rd_kafka_produceva.
TEST_F(Kafka, ARecordTooLargeForKafkaFailsAloneAndItsNeighboursLand) {
    Instance a("A", kafka->bootstrap(), "", "    properties: {\"message.max.bytes\": \"65536\"}\n");
    const std::string big(70000, 'b');
    Paho v5(a.mqtt_port, "big-pub");
    v5.connect();
    auto send = [&](const std::string& payload) {
        return v5.client().publish(::mqtt::make_message("telemetry/big", payload, 1, false));
    };
    auto first = send("before");
    auto large = send(big);
    auto last = send("after");
    EXPECT_TRUE(acked(first, 20s));
    int reason = -1;  // -1: no PUBACK
    try {
        if (large->wait_for(20s)) reason = large->get_reason_code();
    } catch (const ::mqtt::exception& e) {
        reason = e.get_reason_code();
    }
    EXPECT_EQ(reason, 0x80) << "a record Kafka cannot take: unspecified error";
    EXPECT_TRUE(acked(last, 20s));

    AmqpClient c(a.amqp_url);
    int s = c.open_sender("telemetry/amqp");
    ASSERT_TRUE(c.wait_credit(s, 3));
    auto d1 = c.send(s, proton::message("before"));
    auto d2 = c.send(s, proton::message(big));
    auto d3 = c.send(s, proton::message("after"));
    EXPECT_EQ(c.wait_outcome(s, d1, 20s).state, transfer::ACCEPTED);
    auto refused = c.wait_outcome(s, d2, 20s);
    EXPECT_EQ(refused.state, transfer::REJECTED);
    EXPECT_EQ(refused.condition, "amqp:link:message-size-exceeded") << refused.description;
    EXPECT_EQ(c.wait_outcome(s, d3, 20s).state, transfer::ACCEPTED);

    std::multiset<std::string> values;
    for (auto& r : kcat_consume(kafka->bootstrap(), "telemetry")) values.insert(r.value);
    EXPECT_EQ(values, (std::multiset<std::string>{"after", "after", "before", "before"}));
}

TEST_F(Kafka, Mqtt311ConnectionClosedWithoutAckWhenKafkaFails) {
    Instance a("A", kafka->bootstrap(),
               "kafkaRoute {\n    name: secret\n    prefix: secret\n"
               "    topic: secret\n    direction: in\n}\n");
    RawMqtt raw(a.mqtt_port, 4);
    ASSERT_EQ(raw.connect("k311").code, 0);
    kafka->command("errors 0 1000 29");
    raw.publish("secret/x", "no", 1, 7);
    // 3.1.1 has no negative PUBACK: the connection closes so the client sends again later.
    while (auto p = raw.receive(20s))
        ASSERT_NE(p->type, trestle::mqtt::PacketType::puback) << "acknowledged a lost message";
    EXPECT_TRUE(raw.wait_closed(1s));
    kafka->command("clear 0");
}

TEST_F(Kafka, AFatalProducerErrorFailsTheMessageAndTheProducerRestarts) {
    // With the gap-less guarantee a permanently failed record is fatal for the idempotent
    // producer: the router fails what is in flight and makes a new producer.
    Instance a("A", kafka->bootstrap(), "",
               "    properties: {\"enable.idempotence\": \"true\", "
               "\"enable.gapless.guarantee\": \"true\"}\n");
    Paho v5(a.mqtt_port, "fatal");
    v5.connect();
    ASSERT_EQ(v5.publish("telemetry/f", "before", 1), 0);
    // Produce (API key 0) answered once with an invalid producer epoch (47).
    kafka->command("errors 0 1 47");
    EXPECT_GE(publish_reason(v5, "telemetry/f", "lost"), 0x80)
        << "a failed publish is not acknowledged as a success";
    ASSERT_FALSE(a.router->process()
                     .wait_for_line(std::regex("kafka 'kafka': producer restarted"), 20s)
                     .empty());
    Paho again(a.mqtt_port, "fatal2");
    again.connect();
    EXPECT_EQ(again.publish("telemetry/f", "after", 1), 0);
    std::set<std::string> values;
    for (auto& r : kcat_consume(kafka->bootstrap(), "telemetry")) values.insert(r.value);
    EXPECT_TRUE(values.count("before") && values.count("after"));
}

TEST_F(Kafka, BrokerDownDuringAQos1StreamLosesNothingAcknowledged) {
    Instance a("A", kafka->bootstrap());
    Paho pub(a.mqtt_port, "kstream");
    pub.connect();
    std::vector<::mqtt::delivery_token_ptr> toks;
    const int n = 300;
    std::thread outage;
    std::atomic<bool> up{false};
    for (int i = 0; i < n; ++i) {
        if (i == 100) {
            kafka->command("down 1");
            outage = std::thread([&] {
                // Down until the router has seen the outage (its probe finds no broker).
                a.router->process().wait_for_line(std::regex("kafka: no broker answers"), 30s);
                kafka->command("up 1");
                up = true;
            });
        }
        // At most 50 unacknowledged: the publisher is paced by acks, so it stalls during the
        // outage (as a real device would) and resumes after it.
        if (i >= 50) acked(toks[i - 50], 30s);
        toks.push_back(
            pub.client().publish(::mqtt::make_message("telemetry/s", std::to_string(i), 1, false)));
    }
    std::set<std::string> acks;
    for (int i = 0; i < n; ++i)
        if (acked(toks[i], 30s)) acks.insert(std::to_string(i));
    outage.join();
    EXPECT_TRUE(up);
    EXPECT_EQ(acks.size(), static_cast<size_t>(n)) << "every publish acknowledged after recovery";
    auto recs = kcat_wait(kafka->bootstrap(), "telemetry", acks.size());
    std::set<std::string> in_kafka;
    for (auto& r : recs) in_kafka.insert(r.value);
    for (const auto& v : acks) EXPECT_TRUE(in_kafka.count(v)) << "acknowledged " << v << " missing";
}

TEST_F(Kafka, KillDashNineMidStreamLosesNothingAcknowledged) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    Paho pub(a->mqtt_port, "kkill");
    pub.connect();
    std::vector<::mqtt::delivery_token_ptr> toks;
    const int n = 1000;
    // 50 publishes in flight when the router is killed at the 1000th.
    for (int i = 0; i < n; ++i) {
        if (i >= 50) acked(toks[i - 50], 10s);
        toks.push_back(
            pub.client().publish(::mqtt::make_message("telemetry/k", std::to_string(i), 1, false)));
    }
    kill(a->router->process().pid(), SIGKILL);
    // What was acknowledged before the kill; one deadline for all (the rest fail with the
    // connection).
    auto deadline = std::chrono::steady_clock::now() + 10s;
    std::set<std::string> acks;
    for (int i = 0; i < n; ++i) {
        auto left =
            std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
        if (acked(toks[i], std::max(left, Duration(1)))) acks.insert(std::to_string(i));
    }
    EXPECT_GE(acks.size(), static_cast<size_t>(n - 50)) << "the stream ran until the kill";
    auto recs = kcat_wait(kafka->bootstrap(), "telemetry", acks.size());
    std::set<std::string> in_kafka;
    for (auto& r : recs) in_kafka.insert(r.value);
    size_t missing = 0;
    for (const auto& v : acks) missing += in_kafka.count(v) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << acks.size() << " acknowledged, " << in_kafka.size() << " in Kafka";
}

TEST_F(Kafka, ABalancedConsumerRestartResumesFromTheCommittedOffset) {
    for (int i = 0; i < 5; ++i)
        kcat_produce(kafka->bootstrap(), "jobs", "jobs/q", "job-" + std::to_string(i));
    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    std::vector<std::string> got;
    {
        AmqpClient c(a->amqp_url);
        LinkConfig acc;
        acc.auto_accept = true;
        int r = c.open_receiver("jobs/q", acc);
        for (int i = 0; i < 5; ++i) {
            auto m = c.receive(r, 20s);
            ASSERT_TRUE(m) << "record " << i;
            got.push_back(body_text(m->message));
        }
        c.sync();
    }
    ASSERT_EQ(a->router->terminate(), 0);
    for (int i = 5; i < 10; ++i)
        kcat_produce(kafka->bootstrap(), "jobs", "jobs/q", "job-" + std::to_string(i));
    a = std::make_unique<Instance>("A", kafka->bootstrap());
    AmqpClient c(a->amqp_url);
    LinkConfig acc;
    acc.auto_accept = true;
    int r = c.open_receiver("jobs/q", acc);
    for (int i = 5; i < 10; ++i) {
        auto m = c.receive(r, 30s);
        ASSERT_TRUE(m) << "record " << i;
        got.push_back(body_text(m->message));
    }
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(got[i], "job-" + std::to_string(i)) << "no gap, in order";
    EXPECT_FALSE(c.receive(r, 500ms)) << "nothing delivered twice";
}

// A balanced route's partitions move: when B joins, A (eager rebalance) gives both up and takes
// one back; when B leaves, A takes B's back. Records are read on the route's fetch thread from a
// queue the partitions' queues are forwarded to: none may be lost or skipped across a revocation
// (what A fetched and did not take, what it held unsettled), and a partition assigned again must
// reach the route again.
TEST_F(Kafka, ABalancedRouteDeliversEveryRecordWhilePartitionsMoveBetweenInstances) {
    const std::vector<std::string> keys{"jobs/a", "jobs/b", "jobs/c", "jobs/d"};
    std::set<std::string> all;
    auto produce = [&](int from, int to) {
        std::vector<std::pair<std::string, std::string>> recs;
        for (int i = from; i < to; ++i)
            for (const auto& k : keys) {
                recs.emplace_back(k, k + "-" + std::to_string(i));
                all.insert(recs.back().second);
            }
        kcat_produce_many(kafka->bootstrap(), "jobs", recs);
    };
    produce(0, 100);
    std::set<int> partitions;
    for (const auto& r : kcat_consume(kafka->bootstrap(), "jobs")) partitions.insert(r.partition);
    ASSERT_EQ(partitions.size(), 2u) << "the keys cover both partitions";

    std::set<std::string> got;
    // Takes what arrived on `links` (accepting it) until `want` has all been received.
    auto receive_until = [&](AmqpClient& c, const std::vector<int>& links,
                             const std::set<std::string>& want, Duration timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        auto missing = [&] {
            return std::any_of(want.begin(), want.end(),
                               [&](const std::string& v) { return !got.count(v); });
        };
        while (missing() && std::chrono::steady_clock::now() < deadline)
            for (int l : links)
                while (auto m = c.receive(l, 20ms)) {
                    got.insert(body_text(m->message));
                    c.accept(l, m->id);
                }
        return !missing();
    };

    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    ASSERT_TRUE(a->consuming("jobs"));
    AmqpClient ca(a->amqp_url);
    std::vector<int> at_a;
    for (const auto& k : keys) at_a.push_back(ca.open_receiver(k));  // manual accept, window 10
    // A holds records unsettled (and more in its backlog) when B joins.
    std::vector<std::pair<int, int>> unsettled;
    for (int l : at_a)
        for (int i = 0; i < 5; ++i) {
            auto m = ca.receive(l, 20s);
            ASSERT_TRUE(m) << "record " << i << " at A";
            got.insert(body_text(m->message));
            unsettled.emplace_back(l, m->id);
        }

    Instance b("B", kafka->bootstrap());
    AmqpClient cb(b.amqp_url);
    std::vector<int> at_b;
    for (const auto& k : keys) at_b.push_back(cb.open_receiver(k));
    ASSERT_TRUE(b.consuming("jobs", 30s));
    produce(100, 200);
    std::set<std::string> first = all;
    for (auto [l, id] : unsettled) ca.accept(l, id);  // A's are orphans now: B redelivers them
    auto deadline = std::chrono::steady_clock::now() + 60s;
    bool done = false;
    while (!done && std::chrono::steady_clock::now() < deadline)
        done = receive_until(ca, at_a, first, 100ms) || receive_until(cb, at_b, first, 100ms);
    size_t missing = 0;
    for (const auto& v : first) missing += got.count(v) ? 0 : 1;
    ASSERT_EQ(missing, 0u) << got.size() << " of " << first.size()
                           << " distinct records received at A and B";

    // B leaves: A is assigned B's partition again.
    cb.close();
    ASSERT_EQ(b.router->terminate(), 0);
    produce(200, 300);
    EXPECT_TRUE(receive_until(ca, at_a, all, 60s));
    missing = 0;
    for (const auto& v : all) missing += got.count(v) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "after B left: " << got.size() << " of " << all.size();
}

TEST_F(Kafka, RejectedAndAddresslessRecordsGoToTheDeadLetterTopic) {
    kafka->topic("trestle.dead-letter", 1);
    Instance a("A", kafka->bootstrap());
    AmqpClient c(a.amqp_url);
    LinkConfig manual;
    int r = c.open_receiver("jobs/bad", manual);
    ASSERT_TRUE(c.wait_link_open(r));
    kcat_produce(kafka->bootstrap(), "jobs", "jobs/bad", "poison");
    auto m = c.receive(r, 20s);
    ASSERT_TRUE(m);
    c.reject(r, m->id, "amqp:decode-error", "cannot parse");
    kcat_produce(kafka->bootstrap(), "jobs", "", "no-key");
    auto dl = kcat_wait(kafka->bootstrap(), "trestle.dead-letter", 2);
    ASSERT_EQ(dl.size(), 2u);
    std::map<std::string, Record> by_value;
    for (auto& d : dl) by_value[d.value] = d;
    ASSERT_TRUE(by_value.count("poison"));
    EXPECT_EQ(by_value["poison"].key, "jobs/bad");
    EXPECT_NE(by_value["poison"].headers["trestle.dead-letter-reason"].find("amqp:decode-error"),
              std::string::npos);
    ASSERT_TRUE(by_value.count("no-key"));
    EXPECT_NE(by_value["no-key"].headers["trestle.dead-letter-reason"].find("no address"),
              std::string::npos);
}

TEST_F(Kafka, TwoInstancesOnOneKafkaPublishAtAReachesASubscriberAtB) {
    Instance a("A", kafka->bootstrap());
    Instance b("B", kafka->bootstrap());
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho sub(b.mqtt_port, "ksub-b");
    sub.connect();
    sub.subscribe("telemetry/#", 1);
    Paho pub(a.mqtt_port, "kpub-a");
    pub.connect();
    ASSERT_EQ(pub.publish("telemetry/room1", "19.0", 1), 0);
    auto got = sub.receive(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->get_topic(), "telemetry/room1");
    EXPECT_EQ(got->to_string(), "19.0");
}

TEST_F(Kafka, APersistentSessionCreatedAtAResumesAtBWithItsMissedQos1Messages) {
    Instance a("A", kafka->bootstrap());
    Instance b("B", kafka->bootstrap(), "", "", {"--log-level", "debug"});
    ASSERT_TRUE(a.consuming("telemetry"));
    ASSERT_TRUE(b.consuming("telemetry"));
    {
        Paho dev(a.mqtt_port, "kpers");
        EXPECT_FALSE(dev.connect(false, 60, 300).is_session_present());
        dev.subscribe("telemetry/pers/#", 1);
        Paho pub(a.mqtt_port, "kpers-pub");
        pub.connect();
        ASSERT_EQ(pub.publish("telemetry/pers/x", "before", 1), 0);
        auto m = dev.receive(10s);
        ASSERT_TRUE(m);  // acknowledged while connected: not sent again
        EXPECT_EQ(m->to_string(), "before");
        dev.disconnect();
        // Missed while offline (in Kafka once acknowledged).
        for (int i = 1; i <= 3; ++i)
            ASSERT_EQ(pub.publish("telemetry/pers/x", "missed-" + std::to_string(i), 1), 0);
    }
    // B has read A's record of the session going offline.
    ASSERT_FALSE(
        b.router->process()
            .wait_for_line(
                std::regex("MQTT sessions: 'kpers' at instance 'A' \\(generation \\d+, offline\\)"),
                10s)
            .empty());
    Paho dev(b.mqtt_port, "kpers");
    EXPECT_TRUE(dev.connect(false, 60, 300).is_session_present());
    for (int i = 1; i <= 3; ++i) {
        auto m = dev.receive(10s);
        ASSERT_TRUE(m) << "missed message " << i;
        EXPECT_EQ(m->get_topic(), "telemetry/pers/x");
        EXPECT_EQ(m->to_string(), "missed-" + std::to_string(i));
    }
    // Its subscription is live at B too, after what it missed.
    Paho pub(a.mqtt_port, "kpers-pub2");
    pub.connect();
    ASSERT_EQ(pub.publish("telemetry/pers/x", "live", 1), 0);
    auto m = dev.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->to_string(), "live");
    // A let its copy go (it no longer queues for the client).
    EXPECT_FALSE(
        a.router->process()
            .wait_for_line(std::regex("MQTT session 'kpers' taken over by instance 'B'"), 10s)
            .empty());
}

// The sum of the offsets in a session record's positions, or -1 for another record.
int64_t positions_sum(const std::string& json) {
    if (json.find("\"disconnectedAt\":0") == std::string::npos) return -1;
    int64_t sum = 0;
    static const std::regex offset("\"offset\":(\\d+)");
    for (std::sregex_iterator it(json.begin(), json.end(), offset), end; it != end; ++it)
        sum += std::stoll((*it)[1]);
    return sum;
}

TEST_F(Kafka, AConnectedSessionsPositionsFollowWhatItAcknowledged) {
    // Refreshed every instanceTimeout while connected: a crash later costs it no repeats.
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    ASSERT_TRUE(a->consuming("telemetry"));
    auto dev = std::make_unique<Paho>(a->mqtt_port, "kpos");
    dev->connect(false, 60, 300);
    dev->subscribe("telemetry/pos/#", 1);
    int64_t at_subscribe = -1;
    ASSERT_TRUE(poll_until(
        [&] {
            for (const auto& r : kcat_consume(kafka->bootstrap(), "trestle.sessions"))
                if (r.key == "kpos" && positions_sum(r.value) >= 0) {
                    at_subscribe = positions_sum(r.value);
                    return true;
                }
            return false;
        },
        10s));
    for (int i = 1; i <= 3; ++i)
        kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/pos/x",
                     "seen-" + std::to_string(i));
    for (int i = 1; i <= 3; ++i) {
        auto m = dev->receive(10s);
        ASSERT_TRUE(m) << "message " << i;  // acknowledged by Paho on arrival
    }
    // The stored positions move past the three acknowledged records while it stays connected.
    ASSERT_TRUE(poll_until(
        [&] {
            int64_t latest = -1;
            for (const auto& r : kcat_consume(kafka->bootstrap(), "trestle.sessions"))
                if (r.key == "kpos") latest = positions_sum(r.value);
            return latest == at_subscribe + 3;
        },
        10s));
    kill(a->router->process().pid(), SIGKILL);
    dev.reset();
    a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    ASSERT_TRUE(a->consuming("telemetry"));
    Paho again(a->mqtt_port, "kpos");
    EXPECT_TRUE(again.connect(false, 60, 300).is_session_present());
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/pos/x", "after");
    auto m = again.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->to_string(), "after") << "acknowledged before the crash: not sent again";
}

TEST_F(Kafka, APersistentSessionSurvivesAKillDashNineOfItsInstanceAndCatchesUp) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    ASSERT_TRUE(a->consuming("telemetry"));
    {
        Paho dev(a->mqtt_port, "kres");
        dev.connect(false, 60, 300);
        dev.subscribe("telemetry/res/#", 1);
        dev.disconnect();
    }
    // The session's record (offline, with its positions) is in Kafka before the kill; only
    // observable by reading the topic.
    ASSERT_TRUE(poll_until(
        [&] {
            for (const auto& r : kcat_consume(kafka->bootstrap(), "trestle.sessions"))
                if (r.key == "kres" && !r.value.empty() &&
                    r.value.find("\"disconnectedAt\":0") == std::string::npos &&
                    r.value.find("\"positions\":[{") != std::string::npos)
                    return true;
            return false;
        },
        10s));
    kill(a->router->process().pid(), SIGKILL);
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/res/x", "while-down-1");
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/res/x", "while-down-2");
    a = std::make_unique<Instance>("A", kafka->bootstrap());
    Paho dev(a->mqtt_port, "kres");
    EXPECT_TRUE(dev.connect(false, 60, 300).is_session_present());
    std::vector<std::string> got;
    while (auto m = dev.receive(got.size() < 2 ? 10s : 1s)) got.push_back(m->to_string());
    ASSERT_GE(got.size(), 2u);
    // At least once: the missed ones, in order (a duplicate may follow from the live feed).
    EXPECT_EQ(got[0], "while-down-1");
    EXPECT_EQ(got[1], "while-down-2");
}

TEST_F(Kafka, TheWillOfAClientAtAIsPublishedAtBWhenAIsKilled) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    Paho dev(a->mqtt_port, "kwill");
    ::mqtt::connect_options opts =
        ::mqtt::connect_options_builder()
            .mqtt_version(MQTTVERSION_5)
            .clean_start(true)
            .will(::mqtt::message("telemetry/wills/kwill", "gone", 1, false))
            .finalize();
    dev.connect(opts);
    // B knows the will (from Kafka) before A dies.
    ASSERT_FALSE(b.router->process()
                     .wait_for_line(
                         std::regex("MQTT wills: will of 'kwill' at instance 'A' \\(held\\)"), 10s)
                     .empty());
    kill(a->router->process().pid(), SIGKILL);
    auto m = watcher.receive(15s);
    ASSERT_TRUE(m) << "the will was not published";
    EXPECT_EQ(m->get_topic(), "telemetry/wills/kwill");
    EXPECT_EQ(m->to_string(), "gone");
    EXPECT_TRUE(b.router->process().has_line(std::regex("instance 'A' is gone, claiming it")));
}

TEST_F(Kafka, TheAmqpWillOfAClientAtAIsPublishedAtBWhenAIsKilled) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch4");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    AmqpClient amqp(a->amqp_url);
    LinkConfig named;
    named.name = "amqp-dev";  // EnMasse: the $lwt link is named by the client id
    int w = amqp.open_sender("$lwt", named);
    ASSERT_TRUE(amqp.wait_credit(w, 1));
    proton::message will;
    will.to("telemetry/wills/amqp-dev");
    will.durable(true);
    will.body(std::string("amqp gone"));
    ASSERT_EQ(amqp.wait_outcome(w, amqp.send(w, will)).state, transfer::ACCEPTED);
    ASSERT_FALSE(
        b.router->process()
            .wait_for_line(std::regex("MQTT wills: will of 'amqp-dev' at instance 'A' \\(held\\)"),
                           10s)
            .empty());
    kill(a->router->process().pid(), SIGKILL);
    auto m = watcher.receive(15s);
    ASSERT_TRUE(m) << "the AMQP client's will was not published";
    EXPECT_EQ(m->get_topic(), "telemetry/wills/amqp-dev");
    EXPECT_EQ(m->to_string(), "amqp gone");
}

TEST_F(Kafka, AKafkaOutageLongerThanTheInstanceTimeoutPublishesNoWill) {
    Instance a("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch3");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    Paho dev(a.mqtt_port, "kwill3");
    dev.connect(::mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .will(::mqtt::message("telemetry/wills/kwill3", "gone", 1, false))
                    .finalize());
    ASSERT_FALSE(b.router->process()
                     .wait_for_line(
                         std::regex("MQTT wills: will of 'kwill3' at instance 'A' \\(held\\)"), 10s)
                     .empty());
    kafka->command("down 1");
    // The outage lasts twice the instance timeout: nobody hears anybody's heartbeat.
    EXPECT_FALSE(watcher.receive(4s));
    kafka->command("up 1");
    ASSERT_FALSE(
        b.router->process().wait_for_line(std::regex("brokers answer again"), 20s).empty());
    // Past B's own heartbeats flowing again for the timeout, and its next checks: no will.
    EXPECT_FALSE(watcher.receive(5s)) << "a will was published after a Kafka outage";
    EXPECT_FALSE(b.router->process().has_line(std::regex("claiming")));
    EXPECT_TRUE(dev.connected());
}

TEST_F(Kafka, AnOrderlyShutdownOfAPublishesNoWillOfItsConnectedClients) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch2");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    Paho dev(a->mqtt_port, "kwill2");
    dev.connect(::mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .will(::mqtt::message("telemetry/wills/kwill2", "gone", 1, false))
                    .finalize());
    ASSERT_FALSE(b.router->process()
                     .wait_for_line(
                         std::regex("MQTT wills: will of 'kwill2' at instance 'A' \\(held\\)"), 10s)
                     .empty());
    ASSERT_EQ(a->router->terminate(), 0);
    ASSERT_FALSE(b.router->process().wait_for_line(std::regex("instance 'A' left"), 10s).empty());
    // Past the instance timeout (2 s) and B's next check: no will.
    EXPECT_FALSE(watcher.receive(3500ms)) << "a will was published after an orderly shutdown";
    EXPECT_FALSE(b.router->process().has_line(std::regex("claiming")));
}

// --- Direct topic access in the Strimzi AMQP bridge's dialect (docs/kafka.md) ---------------

const std::string strimzi_listener =
    "listener {\n    name: strimzi\n    host: 127.0.0.1\n    port: 0\n    kafkaDialect: "
    "strimzi\n}\n";

proton::value annotation(const proton::message& m, const std::string& key) {
    auto ma = m.message_annotations();
    return ma.exists(proton::symbol(key)) ? ma.get(proton::symbol(key)) : proton::value();
}

TEST_F(Kafka, StrimziSenderProducesRecordsWithItsPartitionKeyAndTopic) {
    kafka->topic("orders", 3);
    kafka->topic("audit.log", 1);
    Instance a("A", kafka->bootstrap(), strimzi_listener);
    AmqpClient c(a.router->url("strimzi"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("orders");
    ASSERT_TRUE(c.wait_credit(s, 1));
    proton::message m1;
    m1.body(proton::binary("o-1"));
    m1.message_annotations().put(proton::symbol("x-opt-bridge.partition"), int32_t(2));
    m1.message_annotations().put(proton::symbol("x-opt-bridge.key"), std::string("cust-7"));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, m1)).state, proton::transfer::ACCEPTED);
    proton::message m2;  // `to` wins over the link's target; '/' becomes '.'
    m2.to("audit/log");
    m2.body(std::string("audited"));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, m2)).state, proton::transfer::ACCEPTED);
    auto orders = kcat_consume(kafka->bootstrap(), "orders");
    ASSERT_EQ(orders.size(), 1u);
    EXPECT_EQ(orders[0].partition, 2);
    EXPECT_EQ(orders[0].key, "cust-7");
    EXPECT_EQ(orders[0].value, "o-1");
    EXPECT_TRUE(orders[0].headers.empty()) << "the Strimzi record is the body alone";
    auto audit = kcat_consume(kafka->bootstrap(), "audit.log");
    ASSERT_EQ(audit.size(), 1u);
    EXPECT_EQ(audit[0].value, "audited");
    // A partition that does not exist: rejected with Strimzi's condition.
    proton::message m3;
    m3.body(proton::binary("x"));
    m3.message_annotations().put(proton::symbol("x-opt-bridge.partition"), int32_t(7));
    Outcome o = c.wait_outcome(s, c.send(s, m3));
    EXPECT_EQ(o.state, proton::transfer::REJECTED);
    EXPECT_EQ(o.condition, "io.strimzi:error-to-kafka") << o.description;
}

TEST_F(Kafka, StrimziReceiverConsumesInItsGroupWithTheBridgeAnnotations) {
    kafka->topic("orders", 3);
    Instance a("A", kafka->bootstrap(), strimzi_listener);
    kcat_produce(kafka->bootstrap(), "orders", "k1", "v1");
    kcat_produce(kafka->bootstrap(), "orders", "k1", "v2");
    AmqpClient c(a.router->url("strimzi"));
    ASSERT_TRUE(c.wait_open());
    LinkConfig accepting;
    accepting.auto_accept = true;
    int r = c.open_receiver("orders/group.id/billing", accepting);
    ASSERT_TRUE(c.wait_link_open(r));
    EXPECT_EQ(c.link_remote_address(r), "orders/group.id/billing");
    for (const char* want : {"v1", "v2"}) {
        auto got = c.receive(r, 15s);
        ASSERT_TRUE(got) << want;
        EXPECT_EQ(std::string(proton::get<proton::binary>(got->message.body())), want);
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-bridge.topic")),
                  "orders");
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-bridge.key")), "k1");
        EXPECT_GE(proton::get<int32_t>(annotation(got->message, "x-opt-bridge.partition")), 0);
        EXPECT_GE(proton::get<int64_t>(annotation(got->message, "x-opt-bridge.offset")), 0);
    }
}

TEST_F(Kafka, StrimziReceiverReadsOnePartitionFromAnOffsetAndBadRequestsGetStrimziErrors) {
    kafka->topic("orders", 3);
    Instance a("A", kafka->bootstrap(), strimzi_listener);
    AmqpClient c(a.router->url("strimzi"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("orders");
    ASSERT_TRUE(c.wait_credit(s, 1));
    for (int i = 0; i < 3; ++i) {
        proton::message m;
        m.body(proton::binary("p1-" + std::to_string(i)));
        m.message_annotations().put(proton::symbol("x-opt-bridge.partition"), int32_t(1));
        ASSERT_EQ(c.wait_outcome(s, c.send(s, m)).state, proton::transfer::ACCEPTED);
    }
    LinkConfig from_offset;
    from_offset.auto_accept = true;
    from_offset.filters = {{"io.strimzi:partition-filter:int", proton::value(int32_t(1))},
                           {"io.strimzi:offset-filter:long", proton::value(int64_t(1))}};
    int r = c.open_receiver("orders/group.id/replayer", from_offset);
    for (const char* want : {"p1-1", "p1-2"}) {
        auto got = c.receive(r, 15s);
        ASSERT_TRUE(got) << want;
        EXPECT_EQ(std::string(proton::get<proton::binary>(got->message.body())), want);
        EXPECT_EQ(proton::get<int32_t>(annotation(got->message, "x-opt-bridge.partition")), 1);
    }

    int no_group = c.open_receiver("orders");
    ASSERT_TRUE(c.wait_link_closed(no_group));
    EXPECT_EQ(c.link_error(no_group), "io.strimzi:no-group-id");
    LinkConfig offset_only;
    offset_only.filters = {{"io.strimzi:offset-filter:long", proton::value(int64_t(5))}};
    int bad = c.open_receiver("orders/group.id/g", offset_only);
    ASSERT_TRUE(c.wait_link_closed(bad));
    EXPECT_EQ(c.link_error(bad), "io.strimzi:no-partition-filter");
    LinkConfig negative;
    negative.filters = {{"io.strimzi:partition-filter:int", proton::value(int32_t(-1))}};
    int neg = c.open_receiver("orders/group.id/g", negative);
    ASSERT_TRUE(c.wait_link_closed(neg));
    EXPECT_EQ(c.link_error(neg), "io.strimzi:wrong-partition-filter");
}

// --- Direct topic access in Azure Event Hubs' dialect (docs/kafka.md) ----------------------

const std::string eventhubs_listener =
    "listener {\n    name: eventhubs\n    host: 127.0.0.1\n    port: 0\n    kafkaDialect: "
    "eventhubs\n}\n";

LinkConfig selector(const std::string& expr) {
    LinkConfig cfg;
    cfg.auto_accept = true;
    cfg.filters = {{"apache.org:selector-filter:string", proton::value(std::string(expr))}};
    return cfg;
}

TEST_F(Kafka, EventHubsPartitionSenderAndPartitionReceiversWithSelectorFilters) {
    kafka->topic("hub1", 2);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    AmqpClient c(a.router->url("eventhubs"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("hub1/Partitions/1");
    ASSERT_TRUE(c.wait_credit(s, 1));
    for (int i = 0; i < 3; ++i) {
        proton::message m;
        m.body(proton::binary("e" + std::to_string(i)));
        m.message_annotations().put(proton::symbol("x-opt-partition-key"), std::string("dev-1"));
        ASSERT_EQ(c.wait_outcome(s, c.send(s, m)).state, proton::transfer::ACCEPTED);
    }
    auto recs = kcat_consume(kafka->bootstrap(), "hub1");
    ASSERT_EQ(recs.size(), 3u);
    for (const auto& r : recs) {
        EXPECT_EQ(r.partition, 1);
        EXPECT_EQ(r.key, "dev-1");
    }

    // After offset 0 (exclusive), with Event Hubs' annotations.
    int r = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/1",
                            selector("amqp.annotation.x-opt-offset > '0'"));
    ASSERT_TRUE(c.wait_link_open(r));
    for (int i = 1; i <= 2; ++i) {
        auto got = c.receive(r, 15s);
        ASSERT_TRUE(got) << i;
        EXPECT_EQ(std::string(proton::get<proton::binary>(got->message.body())),
                  "e" + std::to_string(i));
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-offset")),
                  std::to_string(i));
        EXPECT_EQ(proton::get<int64_t>(annotation(got->message, "x-opt-sequence-number")), i);
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-partition-key")),
                  "dev-1");
        EXPECT_GT(proton::get<proton::timestamp>(annotation(got->message, "x-opt-enqueued-time"))
                      .milliseconds(),
                  0);
    }
    // From the start ('-1'), inclusive of nothing before it: everything.
    int all = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/1",
                              selector("amqp.annotation.x-opt-sequence-number > '-1'"));
    auto first = c.receive(all, 15s);
    ASSERT_TRUE(first);
    EXPECT_EQ(std::string(proton::get<proton::binary>(first->message.body())), "e0");
    // A start time is accepted (the mock cluster cannot look offsets up by time — it answers
    // -1, "nothing at or after", for any time — so where it starts is not checked here).
    int t = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/1",
                            selector("amqp.annotation.x-opt-enqueued-time >= '1700000000000'"));
    EXPECT_TRUE(c.wait_link_open(t));
    EXPECT_FALSE(c.link_closed(t));

    // Errors in Event Hubs' terms.
    int no_partition = c.open_receiver("hub1/ConsumerGroups/$Default");
    ASSERT_TRUE(c.wait_link_closed(no_partition));
    EXPECT_EQ(c.link_error(no_partition), "amqp:not-found");
    int bad = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/0",
                              selector("amqp.annotation.x-opt-offset < '5'"));
    ASSERT_TRUE(c.wait_link_closed(bad));
    EXPECT_EQ(c.link_error(bad), "com.microsoft:argument-error");
    int bad_target = c.open_sender("hub1/Partitions/x");
    ASSERT_TRUE(c.wait_link_closed(bad_target));
    EXPECT_EQ(c.link_error(bad_target), "com.microsoft:argument-out-of-range");
}

// Event Hubs' request-response nodes, as an Azure SDK uses them before it attaches to a hub:
// a sender to the node, a receiver from it named by the requests' reply-to.
struct NodeClient {
    NodeClient(AmqpClient& c, const std::string& node, const std::string& reply_to)
        : c(c), reply_to(reply_to) {
        LinkConfig rc;
        rc.name = reply_to;
        rc.auto_accept = true;
        receiver = c.open_receiver(node, rc);
        sender = c.open_sender(node);
    }
    // Sends a request naming `to` as its reply-to (empty: none); returns its outcome.
    DeliveryOutcome send(const std::map<std::string, std::string>& props, const std::string& id,
                         const std::string& to) {
        proton::message m;
        m.id(proton::message_id(id));
        if (!to.empty()) m.reply_to(to);
        for (auto& [k, v] : props) m.properties().put(k, v);
        m.body(std::string("SharedAccessSignature sr=x&sig=y"));
        return c.wait_outcome(sender, c.send(sender, m)).state;
    }
    // Sends a request; returns its response (none: a failed assertion).
    std::optional<proton::message> ask(const std::map<std::string, std::string>& props,
                                       const std::string& id) {
        last_outcome = send(props, id, reply_to);
        auto got = c.receive(receiver, 15s);
        if (!got) return std::nullopt;
        return got->message;
    }
    AmqpClient& c;
    std::string reply_to;
    int receiver = -1, sender = -1;
    DeliveryOutcome last_outcome = proton::transfer::NONE;
};

int32_t status_of(const proton::message& m) {
    return proton::get<int32_t>(m.properties().get("status-code"));
}
std::string condition_of(const proton::message& m) {
    proton::value v = m.properties().get("error-condition");
    return v.empty() ? std::string() : std::string(proton::get<proton::symbol>(v));
}

TEST_F(Kafka, EventHubsCbsAndManagementNodesAnswerAsTheServiceDoes) {
    kafka->topic("hub2", 3);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    AmqpClient c(a.router->url("eventhubs"));
    ASSERT_TRUE(c.wait_open());

    // $cbs: a put-token is accepted (202), the answer correlated to the request's message-id.
    NodeClient cbs(c, "$cbs", "cbs-replies");
    auto put = cbs.ask({{"operation", "put-token"},
                        {"type", "servicebus.windows.net:sastoken"},
                        {"name", "amqp://127.0.0.1/hub2"}},
                       "req-1");
    ASSERT_TRUE(put);
    EXPECT_EQ(cbs.last_outcome, transfer::ACCEPTED);
    EXPECT_EQ(proton::get<std::string>(put->correlation_id()), "req-1");
    EXPECT_EQ(status_of(*put), 202);
    auto odd = cbs.ask({{"operation", "delete-token"}}, "req-2");
    ASSERT_TRUE(odd);
    EXPECT_EQ(status_of(*odd), 400);
    EXPECT_EQ(condition_of(*odd), "amqp:not-implemented");
    // Requests that cannot be answered are rejected, not accepted and left unanswered: no
    // reply-to, or a reply-to no receiver of this connection is named or addressed by.
    EXPECT_EQ(cbs.send({{"operation", "put-token"}}, "req-3", ""), transfer::REJECTED);
    EXPECT_EQ(cbs.send({{"operation", "put-token"}}, "req-4", "nobody-listens"),
              transfer::REJECTED);
    AmqpClient other(a.router->url("eventhubs"));  // the same name on another connection
    ASSERT_TRUE(other.wait_open());
    NodeClient elsewhere(other, "$cbs", "elsewhere-replies");
    EXPECT_EQ(elsewhere.send({{"operation", "put-token"}}, "req-5", "cbs-replies"),
              transfer::REJECTED);
    EXPECT_EQ(c.pending(cbs.receiver), 0u);  // nothing crossed over to the first connection

    // $management READ com.microsoft:eventhub: the topic's partitions.
    NodeClient mgmt(c, "$management", "mgmt-replies");
    auto hub = mgmt.ask(
        {{"operation", "READ"}, {"type", "com.microsoft:eventhub"}, {"name", "hub2"}}, "m-1");
    ASSERT_TRUE(hub);
    ASSERT_EQ(status_of(*hub), 200)
        << proton::get<std::string>(hub->properties().get("status-description"));
    EXPECT_EQ(proton::get<std::string>(hub->correlation_id()), "m-1");
    std::map<std::string, proton::value> info;
    proton::get(hub->body(), info);
    EXPECT_EQ(proton::get<std::string>(info["name"]), "hub2");
    EXPECT_EQ(proton::get<int32_t>(info["partition_count"]), 3);
    std::vector<std::string> ids;
    proton::get(info["partition_ids"], ids);
    EXPECT_EQ(ids, (std::vector<std::string>{"0", "1", "2"}));

    // READ com.microsoft:partition, before and after two events in partition 2.
    auto partition = [&](const std::string& n, const std::string& id) {
        return mgmt.ask({{"operation", "READ"},
                         {"type", "com.microsoft:partition"},
                         {"name", "hub2"},
                         {"partition", n}},
                        id);
    };
    auto empty = partition("2", "m-2");
    ASSERT_TRUE(empty);
    ASSERT_EQ(status_of(*empty), 200);
    proton::get(empty->body(), info);
    EXPECT_TRUE(proton::get<bool>(info["is_partition_empty"]));
    EXPECT_EQ(proton::get<int64_t>(info["last_enqueued_sequence_number"]), -1);
    int s = c.open_sender("hub2/Partitions/2");
    ASSERT_TRUE(c.wait_credit(s, 1));
    for (int i = 0; i < 2; ++i) {
        proton::message m;
        m.body(proton::binary("e" + std::to_string(i)));
        ASSERT_EQ(c.wait_outcome(s, c.send(s, m)).state, transfer::ACCEPTED);
    }
    auto two = partition("2", "m-3");
    ASSERT_TRUE(two);
    ASSERT_EQ(status_of(*two), 200);
    proton::get(two->body(), info);
    EXPECT_FALSE(proton::get<bool>(info["is_partition_empty"]));
    EXPECT_EQ(proton::get<std::string>(info["partition"]), "2");
    EXPECT_EQ(proton::get<int64_t>(info["begin_sequence_number"]), 0);
    EXPECT_EQ(proton::get<int64_t>(info["last_enqueued_sequence_number"]), 1);
    EXPECT_EQ(proton::get<std::string>(info["last_enqueued_offset"]), "1");
    // The last record's own timestamp (read back from Kafka), not a placeholder.
    EXPECT_GT(proton::get<proton::timestamp>(info["last_enqueued_time_utc"]).milliseconds(),
              1700000000000);

    // Errors in the service's terms.
    auto none = partition("7", "m-4");
    ASSERT_TRUE(none);
    EXPECT_EQ(status_of(*none), 404);
    EXPECT_EQ(condition_of(*none), "com.microsoft:messaging-entity-not-found");
    auto nan = partition("x", "m-5");
    ASSERT_TRUE(nan);
    EXPECT_EQ(status_of(*nan), 400);
    EXPECT_EQ(condition_of(*nan), "com.microsoft:argument-error");
    auto unnamed = mgmt.ask({{"operation", "READ"}, {"type", "com.microsoft:eventhub"}}, "m-6");
    ASSERT_TRUE(unnamed);
    EXPECT_EQ(status_of(*unnamed), 400);
}

TEST_F(Kafka, EventHubsListenerAdvertisesAndEnforcesItsMaxMessageSize) {
    kafka->topic("hub3", 1);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    AmqpClient c(a.router->url("eventhubs"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("hub3");
    ASSERT_TRUE(c.wait_credit(s, 1));
    // (The advertised max-message-size is checked by the SDK test: Proton C++ 0.37 cannot read
    // it, the SDK sizes its batches by it.)
    proton::message big;
    big.body(proton::binary(std::string(1100000, 'x')));
    c.send(s, big);
    ASSERT_TRUE(c.wait_link_closed(s));
    EXPECT_EQ(c.link_error(s), "amqp:link:message-size-exceeded");
    // The connection and other links go on; a message within the limit lands.
    int s2 = c.open_sender("hub3");
    ASSERT_TRUE(c.wait_credit(s2, 1));
    proton::message ok;
    ok.body(proton::binary(std::string(1000, 'y')));
    ASSERT_EQ(c.wait_outcome(s2, c.send(s2, ok)).state, transfer::ACCEPTED);
    auto recs = kcat_consume(kafka->bootstrap(), "hub3");
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].value.size(), 1000u);
    // A will link ($lwt) too: its message is not buffered either.
    LinkConfig will_cfg;
    will_cfg.name = "client-with-a-big-will";
    int w = c.open_sender("$lwt", will_cfg);
    ASSERT_TRUE(c.wait_credit(w, 1));
    proton::message will;
    will.to("status/client");
    will.body(proton::binary(std::string(1100000, 'w')));
    c.send(w, will);
    ASSERT_TRUE(c.wait_link_closed(w));
    EXPECT_EQ(c.link_error(w), "amqp:link:message-size-exceeded");
}

// The real Azure SDK (@azure/event-hubs from npm, pinned in tests/integration/node): $cbs,
// $management, batches (one transfer, one record per event), properties, receiving.
TEST_F(Kafka, AzureEventHubsSdkSendsReadsPropertiesAndReceives) {
    ASSERT_TRUE(std::string(NODE_PATH).size() > 0) << "node not found at configure time";
    ASSERT_EQ(
        ::access((std::string(NODE_TESTS_DIR) + "/node_modules/@azure/event-hubs").c_str(), F_OK),
        0)
        << "run `npm ci` in " << NODE_TESTS_DIR << " (scripts/test.sh does)";
    kafka->topic("hub4", 3);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    std::string out;
    int rc = run_command({NODE_PATH, std::string(NODE_TESTS_DIR) + "/eventhubs_sdk.js",
                          std::to_string(a.router->port("eventhubs")), "hub4"},
                         &out, 90s);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
    // What Kafka holds, read independently of Trestle.
    auto recs = kcat_consume(kafka->bootstrap(), "hub4");
    std::vector<Record> p1, keyed;
    for (const auto& r : recs) {
        if (r.partition == 1 && r.key.empty()) p1.push_back(r);
        if (r.key == "dev-7") keyed.push_back(r);
    }
    ASSERT_EQ(p1.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(p1[i].value, "ev-" + std::to_string(i));
        EXPECT_EQ(p1[i].headers["n"], std::to_string(i));
        EXPECT_EQ(p1[i].headers["kind"], "sdk");
    }
    ASSERT_EQ(keyed.size(), 2u);
    EXPECT_EQ(keyed[0].value, "k-0");
    EXPECT_EQ(keyed[1].value, "k-1");
    EXPECT_EQ(keyed[0].partition, keyed[1].partition);  // one key, one partition
}

TEST_F(Kafka, ARetainedMessageSetAtAReachesANewSubscriberAtB) {
    Instance a("A", kafka->bootstrap());
    Instance b("B", kafka->bootstrap());
    Paho pub(a.mqtt_port, "kret-a");
    pub.connect();
    ASSERT_EQ(pub.publish("status/door", "open", 1, /*retain=*/true), 0);
    // B follows the retained topic: poll B with new subscribers until the message is there.
    ::mqtt::const_message_ptr got;
    for (int i = 0; i < 50 && !got; ++i) {
        Paho sub(b.mqtt_port, "kret-b" + std::to_string(i));
        sub.connect();
        sub.subscribe("status/#", 1);
        got = sub.receive(200ms);
    }
    ASSERT_TRUE(got) << "B never had A's retained message";
    EXPECT_EQ(got->get_topic(), "status/door");
    EXPECT_EQ(got->to_string(), "open");
    EXPECT_TRUE(got->is_retained());

    // Deleted at B (empty payload): gone at A too.
    Paho del(b.mqtt_port, "kret-del");
    del.connect();
    ASSERT_EQ(del.publish("status/door", "", 1, true), 0);
    bool gone = false;
    for (int i = 0; i < 50 && !gone; ++i) {
        Paho sub(a.mqtt_port, "kret-a" + std::to_string(i));
        sub.connect();
        sub.subscribe("status/#", 1);
        gone = !sub.receive(200ms);
    }
    EXPECT_TRUE(gone);
}

TEST_F(Kafka, RetainedMessagesSurviveARestartAndAreLoadedBeforeClientsConnect) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    {
        Paho pub(a->mqtt_port, "kret-pub");
        pub.connect();
        ASSERT_EQ(pub.publish("status/fan", "on", 1, true), 0);
        ASSERT_EQ(pub.publish("status/light", "off", 0, true), 0);
        // The QoS 0 one: wait until it is in Kafka before the restart.
        ASSERT_EQ(kcat_wait(kafka->bootstrap(), "trestle.retained", 2).size(), 2u);
    }
    ASSERT_EQ(a->router->terminate(), 0);
    a = std::make_unique<Instance>("A", kafka->bootstrap());
    EXPECT_TRUE(a->router->process().has_line(std::regex("retained messages: 2 loaded")));
    Paho sub(a->mqtt_port, "kret-sub");
    sub.connect();
    sub.subscribe("status/+", 1);
    std::map<std::string, std::string> got;
    for (int i = 0; i < 2; ++i)
        if (auto m = sub.receive(5s)) got[m->get_topic()] = m->to_string();
    EXPECT_EQ(got["status/fan"], "on");
    EXPECT_EQ(got["status/light"], "off");
}

TEST_F(Kafka, AnAmqpRetainedMessageSetAtAReachesANewAmqpReceiverAtB) {
    // Retained messages go to new receivers of multicast addresses (and MQTT filters).
    const std::string mc = "address {\n    prefix: status\n    distribution: multicast\n}\n";
    Instance a("A", kafka->bootstrap(), mc);
    Instance b("B", kafka->bootstrap(), mc);
    AmqpClient ca(a.amqp_url);
    int s = ca.open_sender("");
    ASSERT_TRUE(ca.wait_credit(s, 1));
    proton::message m;
    m.to("status/valve");
    m.body(std::string("closed"));
    m.message_annotations().put(proton::symbol("x-opt-retain-message"), true);
    ASSERT_EQ(ca.wait_outcome(s, ca.send(s, m)).state, transfer::RELEASED)
        << "nobody subscribed yet";
    std::optional<Received> got;
    for (int i = 0; i < 50 && !got; ++i) {
        AmqpClient cb(b.amqp_url);
        LinkConfig acc;
        acc.auto_accept = true;
        int r = cb.open_receiver("status/valve", acc);
        got = cb.receive(r, 200ms);
    }
    ASSERT_TRUE(got) << "B never had A's retained message";
    EXPECT_EQ(body_text(got->message), "closed");
    EXPECT_TRUE(proton::get<bool>(
        got->message.message_annotations().get(proton::symbol("x-opt-retain-message"))));
}

}  // namespace

namespace {

std::string manage(const std::string& url, std::vector<std::string> args) {
    args.insert(args.begin(), {TRESTLE_MANAGE_PATH, "-b", url});
    std::string out;
    int st = run_command(args, &out);
    return std::to_string(st) + " " + out;
}

// A multicast route starts at the router's start time: the offsets are looked up when the
// group assigns the partitions, a round trip per lookup. With Kafka slow to answer, clients of
// the router must not wait for them (they ran on the event loop: seconds of silence).
TEST_F(Kafka, AMulticastRoutesStartLookupsDoNotHoldUpClients) {
    kafka->topic("alerts", 4);
    Instance a("A", kafka->bootstrap());
    ASSERT_TRUE(a.consuming("telemetry"));
    ASSERT_TRUE(a.consuming("jobs"));
    RawMqtt pinger(a.mqtt_port, 4);
    ASSERT_EQ(pinger.connect("pinger").code, 0);
    RawMqtt sub(a.mqtt_port, 4);
    ASSERT_EQ(sub.connect("alert-sub").code, 0);
    sub.subscribe(1, "alerts/#", 0);
    ASSERT_TRUE(sub.receive());  // SUBACK

    kafka->command("rtt 1 500");  // every answer from the broker half a second late
    std::string created = manage(a.amqp_url, {"create", "--type=kafkaRoute", "--name=alerts",
                                              "prefix=alerts", "topic=alerts"});
    ASSERT_EQ(created.rfind("0 ", 0), 0u) << created;
    const std::regex assigned("kafkaRoute 'alerts': assigned topic");
    auto worst = std::chrono::milliseconds(0);
    int pings = 0;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    // A ping every 50 ms until the route has its partitions.
    while (a.router->process().wait_for_line(assigned, 50ms).empty() &&
           std::chrono::steady_clock::now() < deadline) {
        auto t0 = std::chrono::steady_clock::now();
        pinger.send_bytes(std::string("\xC0\x00", 2));
        auto resp = pinger.receive(10s);
        ASSERT_TRUE(resp && resp->type == trestle::mqtt::PacketType::pingresp);
        worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - t0));
        ++pings;
    }
    ASSERT_TRUE(a.router->process().has_line(assigned)) << "the route never got its partitions";
    EXPECT_GT(pings, 5) << "the group join and the lookups take seconds at this round-trip time";
    EXPECT_LT(worst.count(), 400) << "a PINGREQ waited " << worst.count() << " ms for the loop";

    // And the route works from where the lookups put it.
    kafka->command("rtt 1 0");
    kcat_produce(kafka->bootstrap(), "alerts", "alerts/fire", "hot");
    auto got = sub.receive(20s);
    ASSERT_TRUE(got && got->type == trestle::mqtt::PacketType::publish);
    EXPECT_EQ(got->publish.topic, "alerts/fire");
    EXPECT_EQ(got->publish.payload, "hot");
}

TEST_F(Kafka, AKafkaRouteCreatedAtRuntimeBindsAtOnceAndItsDeletionUnbindsIt) {
    kafka->topic("orders", 1);
    Instance a("A", kafka->bootstrap());
    std::string created = manage(a.amqp_url, {"create", "--type=kafkaRoute", "--name=orders",
                                              "prefix=orders", "topic=orders", "direction=in"});
    ASSERT_EQ(created.rfind("0 ", 0), 0u) << created;

    AmqpClient c(a.amqp_url);
    int s = c.open_sender("orders/eu");
    ASSERT_TRUE(c.wait_credit(s, 1)) << "the route's waypoint gives credit";
    int d = c.send(s, proton::message("first"));
    ASSERT_EQ(c.wait_outcome(s, d, 20s).state, transfer::ACCEPTED);
    auto recs = kcat_wait(kafka->bootstrap(), "orders", 1);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].key, "orders/eu");
    EXPECT_EQ(recs[0].value, "first");
    c.close_link(s);

    std::string dup =
        manage(a.amqp_url, {"create", "--type=kafkaRoute", "--name=orders", "prefix=x", "topic=x"});
    EXPECT_NE(dup.find("Status 400"), std::string::npos) << dup;

    std::string deleted = manage(a.amqp_url, {"delete", "--type=kafkaRoute", "--name=orders"});
    ASSERT_EQ(deleted.rfind("0 ", 0), 0u) << deleted;
    std::string listed = manage(a.amqp_url, {"query", "--type=kafkaRoute"});
    EXPECT_EQ(listed.find("\"orders\""), std::string::npos) << listed;

    // Unbound: orders/eu goes straight to its consumer, not to Kafka.
    LinkConfig acc;
    acc.auto_accept = true;
    int r = c.open_receiver("orders/eu", acc);
    ASSERT_TRUE(c.wait_link_open(r));
    int s2 = c.open_sender("orders/eu");
    ASSERT_TRUE(c.wait_credit(s2, 1));
    int d2 = c.send(s2, proton::message("second"));
    ASSERT_EQ(c.wait_outcome(s2, d2).state, transfer::ACCEPTED);
    auto got = c.receive(r);
    ASSERT_TRUE(got);
    EXPECT_EQ(body_text(got->message), "second");
    EXPECT_EQ(kcat_consume(kafka->bootstrap(), "orders").size(), 1u)
        << "nothing more went to the topic";
}

}  // namespace
