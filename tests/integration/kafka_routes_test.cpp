// Kafka routes: the settlement chain through delivery reports, consumers fed from topics,
// faults and restarts, dead letters. Kafka is librdkafka's mock cluster in its own process; kcat
// reads and writes topics independently of Trestle.
#include "kafka_fixture.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

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

}  // namespace
