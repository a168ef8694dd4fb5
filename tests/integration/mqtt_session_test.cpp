// MQTT persistent sessions (offline queues, expiry, bounds), retained messages and wills.
#include <gtest/gtest.h>

#include "mqtt_helpers.hpp"
#include "router_process.hpp"

using namespace trestle::test;
namespace m = trestle::mqtt;

namespace {

const char* kConfig = R"(
router {
    id: Rsess
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
    maxSessionQueue: 50
}
)";

class Session : public ::testing::Test {
  protected:
    void SetUp() override {
        router = std::make_unique<RouterProcess>(kConfig);
        port = router->port("mqtt");
    }
    // A raw publisher (fast to connect; Paho is the subscriber under test).
    void publish(const std::string& topic, const std::string& payload, uint8_t qos,
                 bool retain = false, m::Properties props = {}) {
        RawMqtt p(port, m::v5);
        ASSERT_EQ(p.connect("pub-" + std::to_string(seq++)).code, 0);
        p.publish(topic, payload, qos, qos ? 1 : 0, retain, props);
        if (qos) {
            ASSERT_TRUE(p.receive());  // its PUBACK / PUBREC: the router has it
        }
        m::Packet d;
        d.type = m::PacketType::disconnect;
        p.send(d);
    }
    std::unique_ptr<RouterProcess> router;
    int port = 0;
    int seq = 0;
};

std::string payload_of(const ::mqtt::const_message_ptr& m) {
    return m ? m->to_string() : "<nothing>";
}

TEST_F(Session, OfflineQos1IsQueuedAndDeliveredOnReconnect311) {
    {
        Paho c(port, "offline-311", MQTTVERSION_3_1_1);
        c.connect(false);
        c.subscribe("queue/#", 1);
        c.disconnect();
    }
    publish("queue/a", "while away 1", 1);
    publish("queue/b", "while away 2", 1);
    publish("queue/c", "qos 0 is not kept", 0);
    Paho c(port, "offline-311", MQTTVERSION_3_1_1);
    EXPECT_TRUE(c.connect(false).is_session_present());
    EXPECT_EQ(payload_of(c.receive()), "while away 1");
    EXPECT_EQ(payload_of(c.receive()), "while away 2");
    EXPECT_FALSE(c.receive(300ms)) << "QoS 0 is dropped for offline sessions";
}

TEST_F(Session, SessionExpiryEndsTheSession) {
    {
        Paho c(port, "expiring", MQTTVERSION_5);
        c.connect(false, 60, 1);  // session expiry 1 s
        c.subscribe("exp/#", 1);
        c.disconnect();
    }
    ASSERT_FALSE(
        router->process().wait_for_line(std::regex("MQTT session 'expiring' expired"), 10s).empty())
        << "a session with expiry 1 s ends";
    publish("exp/x", "after expiry", 1);
    Paho c(port, "expiring", MQTTVERSION_5);
    EXPECT_FALSE(c.connect(false, 60, 1).is_session_present()) << "the session expired";
    EXPECT_FALSE(c.receive(300ms));
}

TEST_F(Session, QueueIsBoundedAndOverflowIsLogged) {
    {
        Paho c(port, "bounded", MQTTVERSION_5);
        c.connect(false, 60, 3600);
        c.subscribe("bound/t", 1);
        c.disconnect();
    }
    RawMqtt p(port, m::v5);
    ASSERT_EQ(p.connect("bound-pub").code, 0);
    for (uint16_t i = 1; i <= 60; ++i) {
        p.publish("bound/t", std::to_string(i), 1, i);
        ASSERT_TRUE(p.receive()) << i;
    }
    EXPECT_FALSE(
        router->process().wait_for_line(std::regex("session 'bounded' queue full"), 2s).empty());
    Paho c(port, "bounded", MQTTVERSION_5);
    c.connect(false, 60, 3600);
    int n = 0;
    std::string first;
    while (auto msg = c.receive(500ms)) {
        if (n++ == 0) first = msg->to_string();
    }
    EXPECT_EQ(n, 50) << "maxSessionQueue: 50";
    EXPECT_EQ(first, "1") << "the oldest are kept, the newest beyond the bound are dropped";
}

TEST_F(Session, RetainedSetReplacedDeletedByEmptyPayload) {
    publish("ret/door", "open", 1, true);
    publish("ret/door", "closed", 1, true);
    {
        Paho c(port, "ret-1");
        c.connect();
        c.subscribe("ret/#", 1);
        auto msg = c.receive();
        ASSERT_TRUE(msg);
        EXPECT_EQ(msg->to_string(), "closed");
        EXPECT_TRUE(msg->is_retained());
        EXPECT_FALSE(c.receive(300ms)) << "one retained message per topic";
    }
    publish("ret/door", "", 1, true);  // empty payload: delete
    Paho c(port, "ret-2");
    c.connect();
    c.subscribe("ret/#", 1);
    EXPECT_FALSE(c.receive(300ms)) << "deleted";
}

TEST_F(Session, WillOnAbnormalDisconnectNotOnCleanOneAnd0x04) {
    Paho watcher(port, "will-watcher");
    watcher.connect();
    watcher.subscribe("will/#", 1);
    m::Will w;
    w.topic = "will/a";
    w.payload = "a died";
    w.properties.user_properties = {{"cause", "crash"}};
    {
        RawMqtt a(port, m::v5);
        ASSERT_EQ(a.connect("will-a", true, 0, {}, w).code, 0);
        // The socket just goes away.
    }
    auto msg = watcher.receive();
    ASSERT_TRUE(msg);
    EXPECT_EQ(msg->to_string(), "a died");
    EXPECT_EQ(msg->get_properties().count(::mqtt::property::USER_PROPERTY), 1u)
        << "will properties kept";

    w.topic = "will/b";
    w.payload = "b left cleanly";
    {
        RawMqtt b(port, m::v5);
        ASSERT_EQ(b.connect("will-b", true, 0, {}, w).code, 0);
        m::Packet d;
        d.type = m::PacketType::disconnect;
        b.send(d);
        EXPECT_TRUE(b.wait_closed());
    }
    EXPECT_FALSE(watcher.receive(300ms)) << "no will after a clean DISCONNECT";

    w.topic = "will/c";
    w.payload = "c asked for its will";
    {
        RawMqtt c(port, m::v5);
        ASSERT_EQ(c.connect("will-c", true, 0, {}, w).code, 0);
        m::Packet d;
        d.type = m::PacketType::disconnect;
        d.disconnect.code = m::reason::disconnect_with_will;
        c.send(d);
        EXPECT_TRUE(c.wait_closed());
    }
    EXPECT_EQ(payload_of(watcher.receive()), "c asked for its will");
}

TEST_F(Session, WillDelayAndReconnectCancelsIt) {
    Paho watcher(port, "delay-watcher");
    watcher.connect();
    watcher.subscribe("delayed/#", 1);
    m::Will w;
    w.topic = "delayed/x";
    w.payload = "x is gone for good";
    w.properties.will_delay_interval = 1;
    m::Properties keep;
    keep.session_expiry_interval = 60;
    {
        RawMqtt x(port, m::v5);
        ASSERT_EQ(x.connect("delayed-x", false, 0, keep, w).code, 0);
    }
    {
        RawMqtt again(port, m::v5);
        m::Connack ack = again.connect("delayed-x", false, 0, keep, w);  // a will per CONNECT
        EXPECT_TRUE(ack.session_present);
        EXPECT_FALSE(watcher.receive(1500ms)) << "back before the delay: no will";
    }
    // Gone again (abnormally) and not back: the will comes after about a second.
    auto start = std::chrono::steady_clock::now();
    auto msg = watcher.receive(5s);
    EXPECT_EQ(payload_of(msg), "x is gone for good");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 700ms);
}

TEST_F(Session, RetainedWillIsStored) {
    m::Will w;
    w.topic = "status/node1";
    w.payload = "offline";
    w.retain = true;
    w.qos = 1;
    {
        RawMqtt n(port, m::v311);
        ASSERT_EQ(n.connect("node1", true, 0, {}, w).code, 0);
    }
    // The will is published on disconnect: wait until a subscriber sees it retained.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        RawMqtt s(port, m::v311);
        ASSERT_EQ(s.connect("late-" + std::to_string(seq++)).code, 0);
        s.subscribe(1, "status/#", 1);
        s.receive();  // SUBACK
        auto p = s.receive(300ms);
        seen = p && p->type == m::PacketType::publish && p->publish.payload == "offline" &&
               p->publish.retain;
    }
    EXPECT_TRUE(seen);
}

}  // namespace
