// Kafka routes under operation: start-offset lookups off the loop, routes created and deleted
// at runtime.
#include "kafka_fixture.hpp"

using namespace trestle::test;
using proton::transfer;

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
