// MQTT 3.1.1 and 5.0 server behaviour against real clients (Eclipse Paho C++, mosquitto's
// command-line tools) and, for what no client library sends, a raw socket client.
#include <gtest/gtest.h>

#include <set>

#include "amqp_client.hpp"
#include "mqtt_helpers.hpp"
#include "router_process.hpp"

using namespace trestle::test;
namespace m = trestle::mqtt;

namespace {

const char* kConfig = R"(
router {
    id: Rmqtt
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
    websocketPath: /mqtt
    topicAliasMaximum: 10
    receiveMaximum: 20
    maxPacketSize: 65536
}
mqttListener {
    name: v5only
    host: 127.0.0.1
    port: 0
    protocolVersions: 5
    maxConnections: 2
    maxKeepAliveSeconds: 30
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
}
)";

class Mqtt : public ::testing::Test {
  protected:
    void SetUp() override {
        router = std::make_unique<RouterProcess>(kConfig);
        port = router->port("mqtt");
        v5only = router->port("v5only");
    }
    std::unique_ptr<RouterProcess> router;
    int port = 0, v5only = 0;
};

std::string payload_of(const mqtt::const_message_ptr& m) {
    return m ? m->to_string() : "<nothing>";
}

TEST_F(Mqtt, CleanSessionAndSessionPresentBothVersions) {
    for (int version : {MQTTVERSION_3_1_1, MQTTVERSION_5}) {
        std::string id = "persist-" + std::to_string(version);
        {
            Paho c(port, id, version);
            EXPECT_FALSE(c.connect(false, 60, 3600).is_session_present());
            c.subscribe("p/x", 1);
            c.disconnect();
        }
        Paho again(port, id, version);
        EXPECT_TRUE(again.connect(false, 60, 3600).is_session_present()) << version;
        again.disconnect();
        Paho clean(port, id, version);
        EXPECT_FALSE(clean.connect(true).is_session_present()) << "clean start discards it";
    }
}

TEST_F(Mqtt, ServerAssignsAClientIdentifier) {
    RawMqtt c(port, m::v5);
    m::Connack ack = c.connect("", true);
    EXPECT_EQ(ack.code, 0);
    ASSERT_TRUE(ack.properties.assigned_client_identifier);
    EXPECT_FALSE(ack.properties.assigned_client_identifier->empty());
    EXPECT_EQ(ack.properties.receive_maximum, 20) << "the server's receive maximum";
    EXPECT_EQ(ack.properties.topic_alias_maximum, 10);
    EXPECT_EQ(ack.properties.maximum_packet_size, 65536u);
}

TEST_F(Mqtt, EmptyClientIdNeedsCleanSessionIn311) {
    RawMqtt c(port, m::v311);
    EXPECT_EQ(c.connect("", false).code, 0x02) << "identifier rejected";
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(Mqtt, ListenerProtocolVersionsAndConnectionLimit) {
    RawMqtt old(v5only, m::v311);
    EXPECT_EQ(old.connect("old", true).code, 0x01) << "unacceptable protocol version";
    EXPECT_TRUE(old.wait_closed());
    RawMqtt a(v5only, m::v5), b(v5only, m::v5), c(v5only, m::v5);
    EXPECT_EQ(a.connect("a").code, 0);
    EXPECT_EQ(b.connect("b").code, 0);
    EXPECT_EQ(c.connect("c").code, m::reason::quota_exceeded) << "maxConnections: 2";
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(Mqtt, ServerKeepAliveCapsTheClients) {
    RawMqtt c(v5only, m::v5);
    m::Connack ack = c.connect("ka", true, 100);
    EXPECT_EQ(ack.code, 0);
    EXPECT_EQ(ack.properties.server_keep_alive, 30);
}

TEST_F(Mqtt, KeepAliveIsEnforcedAtOneAndAHalfAndTheWillFollows) {
    Paho watcher(port, "watcher");
    watcher.connect();
    watcher.subscribe("wills/#", 1);
    RawMqtt silent(port, m::v5);
    m::Will w;
    w.topic = "wills/silent";
    w.payload = "gone quiet";
    auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(silent.connect("silent", true, 1, {}, w).code, 0);
    auto d = silent.receive(10s);  // nothing sent for 1.5 x 1 s
    auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, m::PacketType::disconnect);
    EXPECT_EQ(d->disconnect.code, m::reason::keep_alive_timeout);
    EXPECT_GE(waited, 1400ms) << "not before 1.5 x keep alive";
    EXPECT_LE(waited, 3000ms);
    EXPECT_TRUE(silent.wait_closed());
    EXPECT_EQ(payload_of(watcher.receive()), "gone quiet");
}

TEST_F(Mqtt, ClientIdTakeoverDisconnectsTheOldConnection) {
    Paho first(port, "same-id");
    first.connect();
    Paho second(port, "same-id");
    second.connect();
    EXPECT_TRUE(first.wait_lost());
    EXPECT_EQ(first.disconnect_reason(), m::reason::session_taken_over);
    second.subscribe("t/takeover", 1);
    Paho pub(port, "pub-takeover");
    pub.connect();
    pub.publish("t/takeover", "to the new one", 1);
    EXPECT_EQ(payload_of(second.receive()), "to the new one");
}

TEST_F(Mqtt, PublishQos012BothVersionsWithMosquittoAndPaho) {
    Paho sub(port, "sub-qos", MQTTVERSION_5);
    sub.connect();
    sub.subscribe("q/#", 2);
    for (int qos : {0, 1, 2}) {
        Paho pub(port, "pub-qos" + std::to_string(qos), MQTTVERSION_3_1_1);
        pub.connect();
        pub.publish("q/" + std::to_string(qos), "qos" + std::to_string(qos), qos);
        auto msg = sub.receive();
        ASSERT_TRUE(msg) << qos;
        EXPECT_EQ(msg->to_string(), "qos" + std::to_string(qos));
        EXPECT_EQ(msg->get_qos(), qos);
    }
    std::string out;
    EXPECT_EQ(run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port), "-t",
                           "q/mosq", "-m", "from mosquitto_pub", "-q", "2", "-V", "mqttv311"},
                          &out),
              0)
        << out;
    EXPECT_EQ(payload_of(sub.receive()), "from mosquitto_pub");
}

TEST_F(Mqtt, UnacknowledgedQos1IsRedeliveredWithDupOnReconnect) {
    Paho pub(port, "dup-pub");
    pub.connect();
    uint16_t first_id;
    {
        RawMqtt s(port, m::v311);
        ASSERT_EQ(s.connect("dup-sub", false).code, 0);
        s.subscribe(1, "dup/t", 1);
        ASSERT_EQ(s.receive()->type, m::PacketType::suback);
        pub.publish("dup/t", "once", 1);
        auto raw = s.receive_raw();
        ASSERT_TRUE(raw);
        EXPECT_EQ(uint8_t((*raw)[0]) & 0x08, 0) << "first delivery without DUP";
        m::DecodeError err;
        first_id = m::decode(*raw, m::v311, err)->publish.packet_id;
        // Gone without PUBACK.
    }
    RawMqtt s(port, m::v311);
    m::Connack ack = s.connect("dup-sub", false);
    EXPECT_TRUE(ack.session_present);
    auto raw = s.receive_raw();
    ASSERT_TRUE(raw);
    EXPECT_EQ(uint8_t((*raw)[0]) & 0x08, 0x08) << "redelivered with DUP";
    m::DecodeError err;
    auto p = m::decode(*raw, m::v311, err);
    EXPECT_EQ(p->publish.packet_id, first_id);
    EXPECT_EQ(p->publish.payload, "once");
    s.ack(m::PacketType::puback, first_id);
}

TEST_F(Mqtt, PacketIdsInFlightAreDistinctAndReusedOnlyWhenAcknowledged) {
    Paho pub(port, "ids-pub");
    pub.connect();
    RawMqtt s(port, m::v5);  // its own receive maximum: more in flight than a short scan covers
    m::Properties props;
    props.receive_maximum = 500;
    ASSERT_EQ(s.connect("ids-sub", true, 0, props).code, 0);
    s.subscribe(1, "ids/t", 1);
    ASSERT_EQ(s.receive()->type, m::PacketType::suback);
    auto receive_ids = [&](int n, std::set<uint16_t>& ids) {
        for (int i = 0; i < n; ++i) {
            auto p = s.receive();
            ASSERT_TRUE(p) << "message " << i << " of " << n << " not received";
            ASSERT_EQ(p->type, m::PacketType::publish);
            EXPECT_NE(p->publish.packet_id, 0);
            EXPECT_TRUE(ids.insert(p->publish.packet_id).second)
                << "packet id " << p->publish.packet_id << " given twice while in flight";
        }
    };
    std::set<uint16_t> first;
    for (int i = 0; i < 100; ++i) ASSERT_EQ(pub.publish("ids/t", std::to_string(i), 1), 0);
    receive_ids(100, first);
    // Half acknowledged; the other half stays in flight.
    std::set<uint16_t> open;
    int k = 0;
    for (uint16_t id : first) {
        if (k++ % 2)
            s.ack(m::PacketType::puback, id);
        else
            open.insert(id);
    }
    std::set<uint16_t> second;
    for (int i = 0; i < 100; ++i) ASSERT_EQ(pub.publish("ids/t", "again", 1), 0);
    receive_ids(100, second);
    for (uint16_t id : second)
        EXPECT_EQ(open.count(id), 0u) << "id " << id << " is still in flight";
}

TEST_F(Mqtt, WildcardsAndDollarTopics) {
    Paho all(port, "all");
    all.connect();
    all.subscribe("#", 0);
    Paho sys(port, "sys");
    sys.connect();
    sys.subscribe("$SYS/#", 0);
    Paho plus(port, "plus");
    plus.connect();
    plus.subscribe("+/b", 0);
    Paho pub(port, "wild-pub");
    pub.connect();
    pub.publish("$SYS/load", "hidden from #", 1);
    pub.publish("a/b", "visible", 1);
    EXPECT_EQ(payload_of(sys.receive()), "hidden from #");
    EXPECT_EQ(payload_of(all.receive()), "visible") << "'#' skipped the $SYS topic";
    EXPECT_EQ(payload_of(plus.receive()), "visible");
}

TEST_F(Mqtt, NoLocal) {
    Paho me(port, "nolocal-me");
    me.connect();
    me.subscribe("chat", 1, mqtt::subscribe_options(true));  // no local
    Paho other(port, "nolocal-other");
    other.connect();
    other.subscribe("chat", 1);
    me.publish("chat", "hello", 1);
    EXPECT_EQ(payload_of(other.receive()), "hello");
    EXPECT_FALSE(me.receive(300ms)) << "not echoed to its own publisher";
}

TEST_F(Mqtt, RetainHandlingAndRetainAsPublished) {
    Paho pub(port, "rh-pub");
    pub.connect();
    pub.publish("rh/state", "retained one", 1, true);
    {
        Paho never(port, "rh-2");
        never.connect();
        never.subscribe(
            "rh/state", 1,
            mqtt::subscribe_options(false, false, mqtt::subscribe_options::DONT_SEND_RETAINED));
        EXPECT_FALSE(never.receive(300ms)) << "retain handling 2: none";
    }
    Paho always(port, "rh-0");
    always.connect();
    always.subscribe("rh/state", 1);
    auto r = always.receive();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->is_retained());
    EXPECT_EQ(r->to_string(), "retained one");
    always.subscribe(
        "rh/state", 1,
        mqtt::subscribe_options(false, false, mqtt::subscribe_options::SEND_RETAINED_ON_NEW));
    EXPECT_FALSE(always.receive(300ms)) << "retain handling 1: only for a new subscription";

    Paho keep(port, "rap-1");
    keep.connect();
    keep.subscribe("rap/x", 1, mqtt::subscribe_options(false, true));  // retain as published
    Paho drop(port, "rap-0");
    drop.connect();
    drop.subscribe("rap/x", 1);
    pub.publish("rap/x", "live and retained", 1, true);
    auto k = keep.receive();
    auto d = drop.receive();
    ASSERT_TRUE(k && d);
    EXPECT_TRUE(k->is_retained());
    EXPECT_FALSE(d->is_retained()) << "live messages lose the flag unless retain-as-published";
}

TEST_F(Mqtt, SubscriptionIdentifiers) {
    Paho c(port, "subid");
    c.connect();
    c.subscribe("sid/+", 1, mqtt::subscribe_options(),
                {{mqtt::property::SUBSCRIPTION_IDENTIFIER, 7}});
    c.subscribe("sid/#", 1, mqtt::subscribe_options(),
                {{mqtt::property::SUBSCRIPTION_IDENTIFIER, 9}});
    Paho pub(port, "subid-pub");
    pub.connect();
    pub.publish("sid/a", "x", 1);
    auto msg = c.receive();
    ASSERT_TRUE(msg);
    std::set<int> ids;
    const auto& props = msg->get_properties();
    for (size_t i = 0; i < props.count(mqtt::property::SUBSCRIPTION_IDENTIFIER); ++i)
        ids.insert(mqtt::get<int>(props, mqtt::property::SUBSCRIPTION_IDENTIFIER, i));
    EXPECT_EQ(ids, (std::set<int>{7, 9})) << "one copy carrying both identifiers";
    EXPECT_FALSE(c.receive(300ms)) << "overlapping subscriptions: delivered once";
}

TEST_F(Mqtt, SharedSubscriptionsSplitTheMessages) {
    Paho w1(port, "w1"), w2(port, "w2"), all(port, "w-all");
    w1.connect();
    w2.connect();
    all.connect();
    w1.subscribe("$share/workers/jobs/#", 1);
    w2.subscribe("$share/workers/jobs/#", 1);
    all.subscribe("jobs/#", 1);
    Paho pub(port, "jobs-pub");
    pub.connect();
    for (int i = 0; i < 10; ++i) pub.publish("jobs/" + std::to_string(i), std::to_string(i), 1);
    std::set<std::string> seen;
    int n1 = 0, n2 = 0;
    while (auto m1 = w1.receive(500ms)) {
        seen.insert(m1->to_string());
        ++n1;
    }
    while (auto m2 = w2.receive(500ms)) {
        seen.insert(m2->to_string());
        ++n2;
    }
    EXPECT_EQ(n1 + n2, 10) << "each message to exactly one member";
    EXPECT_EQ(seen.size(), 10u);
    EXPECT_GT(n1, 0);
    EXPECT_GT(n2, 0);
    int n_all = 0;
    while (all.receive(500ms)) ++n_all;
    EXPECT_EQ(n_all, 10) << "a plain subscription still gets every one";
}

TEST_F(Mqtt, TopicAliasesBothWays) {
    RawMqtt sub(port, m::v5);
    m::Properties props;
    props.topic_alias_maximum = 5;
    ASSERT_EQ(sub.connect("alias-sub", true, 0, props).code, 0);
    sub.subscribe(1, "alias/#", 0);
    ASSERT_EQ(sub.receive()->type, m::PacketType::suback);

    RawMqtt pub(port, m::v5);
    ASSERT_EQ(pub.connect("alias-pub").code, 0);
    m::Properties a1;
    a1.topic_alias = 1;
    pub.publish("alias/long/topic/name", "first", 0, 0, false, a1);
    pub.publish("", "second", 0, 0, false, a1);  // the alias stands for the topic

    auto p1 = sub.receive();
    auto p2 = sub.receive();
    ASSERT_TRUE(p1 && p2);
    EXPECT_EQ(p1->publish.topic, "alias/long/topic/name");
    ASSERT_TRUE(p1->publish.properties.topic_alias) << "the server sets an alias for the client";
    EXPECT_EQ(p2->publish.topic, "") << "and then uses it";
    EXPECT_EQ(p2->publish.properties.topic_alias, p1->publish.properties.topic_alias);
    EXPECT_EQ(p2->publish.payload, "second");

    m::Properties bad;
    bad.topic_alias = 11;  // beyond topicAliasMaximum 10
    pub.publish("alias/x", "y", 0, 0, false, bad);
    auto d = pub.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, m::PacketType::disconnect);
    EXPECT_EQ(d->disconnect.code, m::reason::topic_alias_invalid);
}

TEST_F(Mqtt, MessageExpiryIsCountedDownAndHonoured) {
    Paho sub(port, "exp-sub");
    sub.connect();
    sub.subscribe("exp/live", 1);
    Paho pub(port, "exp-pub");
    pub.connect();
    pub.publish("exp/live", "soon gone", 1, false, {{mqtt::property::MESSAGE_EXPIRY_INTERVAL, 30}});
    auto msg = sub.receive();
    ASSERT_TRUE(msg);
    int left = mqtt::get<int>(msg->get_properties(), mqtt::property::MESSAGE_EXPIRY_INTERVAL);
    EXPECT_GT(left, 0);
    EXPECT_LE(left, 30);
    pub.publish("exp/retained", "expires", 1, true, {{mqtt::property::MESSAGE_EXPIRY_INTERVAL, 1}});
    // Within a deadline, a new subscriber no longer gets it: it expired.
    EXPECT_TRUE(poll_until(
        [&] {
            Paho late(port, "exp-late");
            late.connect();
            late.subscribe("exp/retained", 1);
            return !late.receive(200ms);
        },
        10s))
        << "an expired retained message is not delivered";
}

TEST_F(Mqtt, ServerEnforcesItsReceiveMaximum) {
    // An AMQP consumer that grants no credit: QoS 1 publishes to its address wait for its
    // outcome, so no PUBACK comes back and the client's window (receiveMaximum 20) fills.
    AmqpClient amqp(router->url("amqp"));
    LinkConfig no_credit;
    no_credit.credit_window = 0;
    int r = amqp.open_receiver("rm/t", no_credit);
    ASSERT_TRUE(amqp.wait_link_open(r));
    RawMqtt pub(port, m::v5);
    ASSERT_EQ(pub.connect("rm-pub").code, 0);
    for (uint16_t i = 1; i <= 20; ++i) pub.publish("rm/t", "x", 1, i);
    EXPECT_FALSE(pub.receive(300ms)) << "20 in flight is allowed, and none is acknowledged yet";
    pub.publish("rm/t", "one too many", 1, 21);
    auto d = pub.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, m::PacketType::disconnect);
    EXPECT_EQ(d->disconnect.code, m::reason::receive_maximum_exceeded);
}

TEST_F(Mqtt, ServerRespectsTheClientsReceiveMaximum) {
    RawMqtt sub(port, m::v5);
    m::Properties props;
    props.receive_maximum = 2;
    ASSERT_EQ(sub.connect("rmax-sub", true, 0, props).code, 0);
    sub.subscribe(1, "rmax/t", 1);
    ASSERT_EQ(sub.receive()->type, m::PacketType::suback);
    Paho pub(port, "rmax-pub");
    pub.connect();
    for (int i = 0; i < 5; ++i) pub.publish("rmax/t", std::to_string(i), 1);
    auto a = sub.receive();
    auto b = sub.receive();
    ASSERT_TRUE(a && b);
    EXPECT_FALSE(sub.receive(300ms)) << "two unacknowledged: the server waits";
    sub.ack(m::PacketType::puback, a->publish.packet_id);
    auto c = sub.receive();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->publish.payload, "2");
}

TEST_F(Mqtt, PacketSizeLimitsBothWays) {
    RawMqtt small(port, m::v5);
    m::Properties props;
    props.maximum_packet_size = 100;
    ASSERT_EQ(small.connect("small-client", true, 0, props).code, 0);
    small.subscribe(1, "size/#", 0);
    ASSERT_EQ(small.receive()->type, m::PacketType::suback);
    Paho pub(port, "size-pub");
    pub.connect();
    pub.publish("size/big", std::string(500, 'x'), 1);
    pub.publish("size/small", "fits", 1);
    auto p = small.receive();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->publish.payload, "fits") << "too large for the client: not sent";

    RawMqtt big(port, m::v5);
    ASSERT_EQ(big.connect("big-sender").code, 0);
    big.publish("size/huge", std::string(70000, 'y'), 0);  // beyond maxPacketSize 65536
    auto d = big.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->disconnect.code, m::reason::packet_too_large);
    EXPECT_TRUE(big.wait_closed());
    RawMqtt old(port, m::v311);
    ASSERT_EQ(old.connect("big-311").code, 0);
    old.publish("size/huge", std::string(70000, 'y'), 0);
    EXPECT_TRUE(old.wait_closed()) << "3.1.1: closed";
}

TEST_F(Mqtt, Mqtt5PropertiesTravel) {
    Paho sub(port, "props-sub");
    sub.connect();
    sub.subscribe("props/t", 1);
    Paho pub(port, "props-pub");
    pub.connect();
    mqtt::properties props{{mqtt::property::USER_PROPERTY, "site", "north"},
                           {mqtt::property::USER_PROPERTY, "site", "south"},
                           {mqtt::property::CONTENT_TYPE, "application/json"},
                           {mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1},
                           {mqtt::property::RESPONSE_TOPIC, "replies/42"},
                           {mqtt::property::CORRELATION_DATA, std::string("\x01\x02\x03", 3)}};
    pub.publish("props/t", "{\"t\":21}", 1, false, props);
    auto msg = sub.receive();
    ASSERT_TRUE(msg);
    const auto& got = msg->get_properties();
    EXPECT_EQ(got.count(mqtt::property::USER_PROPERTY), 2u) << "repeated keys kept in order";
    EXPECT_EQ(mqtt::get<std::string>(got, mqtt::property::CONTENT_TYPE), "application/json");
    EXPECT_EQ(mqtt::get<uint8_t>(got, mqtt::property::PAYLOAD_FORMAT_INDICATOR), 1);
    EXPECT_EQ(mqtt::get<std::string>(got, mqtt::property::RESPONSE_TOPIC), "replies/42");
    EXPECT_EQ(mqtt::get<mqtt::binary>(got, mqtt::property::CORRELATION_DATA),
              std::string("\x01\x02\x03", 3));
}

TEST_F(Mqtt, ReasonCodesAndStrings) {
    RawMqtt c(port, m::v5);
    ASSERT_EQ(c.connect("rc-raw").code, 0);
    c.publish("nobody/listens", "x", 1, 1);
    auto puback = c.receive();
    ASSERT_TRUE(puback);
    EXPECT_EQ(puback->ack.code, m::reason::no_matching_subscribers);
    m::Packet u;
    u.type = m::PacketType::unsubscribe;
    u.unsubscribe.packet_id = 3;
    u.unsubscribe.filters = {"never/subscribed"};
    c.send(u);
    auto ack = c.receive();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->unsuback.codes, std::vector<uint8_t>{m::reason::no_subscription_existed});
    c.subscribe(4, "bad/#/filter", 0);
    auto s = c.receive();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->suback.codes, std::vector<uint8_t>{m::reason::topic_filter_invalid});
    c.publish("bad/+", "x", 0);
    auto d = c.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->disconnect.code, m::reason::topic_name_invalid);
    EXPECT_TRUE(d->disconnect.properties.reason_string) << "with a reason string";
}

TEST_F(Mqtt, AuthIsRefusedCleanly) {
    RawMqtt method(port, m::v5);
    m::Properties props;
    props.authentication_method = "SCRAM-SHA-256";
    EXPECT_EQ(method.connect("auth", true, 0, props).code, m::reason::bad_authentication_method);
    EXPECT_TRUE(method.wait_closed());
    RawMqtt c(port, m::v5);
    ASSERT_EQ(c.connect("auth2").code, 0);
    m::Packet a;
    a.type = m::PacketType::auth;
    a.auth.code = 0x18;
    c.send(a);
    auto d = c.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->disconnect.code, m::reason::protocol_error);
}

TEST_F(Mqtt, MalformedPacketsGetTheSpecsReactionAndOthersCarryOn) {
    Paho bystander(port, "bystander");
    bystander.connect();
    bystander.subscribe("still/here", 1);

    RawMqtt v5c(port, m::v5);
    ASSERT_EQ(v5c.connect("bad5").code, 0);
    v5c.send_bytes(std::string("\x36\x03\x00\x01t", 5));  // PUBLISH with QoS 3
    auto d = v5c.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->type, m::PacketType::disconnect);
    EXPECT_EQ(d->disconnect.code, m::reason::malformed_packet);
    EXPECT_TRUE(v5c.wait_closed());

    RawMqtt v3c(port, m::v311);
    ASSERT_EQ(v3c.connect("bad3").code, 0);
    v3c.send_bytes(
        std::string("\x82\x04\x00\x00\x00\x00", 6));  // SUBSCRIBE, packet id 0, no filter
    EXPECT_FALSE(v3c.receive(2s)) << "3.1.1: no DISCONNECT, just closed";
    EXPECT_TRUE(v3c.closed());

    RawMqtt garbage(port, m::v5);
    garbage.send_bytes("GET / HTTP/1.1\r\n\r\n");  // not MQTT at all (and not our WS path)
    EXPECT_TRUE(garbage.wait_closed());

    EXPECT_EQ(router->process()
                  .wait_for_line(std::regex("protocol error .*malformed|PUBLISH with QoS 3"))
                  .size(),
              1u);
    Paho pub(port, "after-bad");
    pub.connect();
    pub.publish("still/here", "fine", 1);
    EXPECT_EQ(payload_of(bystander.receive()), "fine");
}

TEST_F(Mqtt, MqttOverWebSocket) {
    std::string uri = "ws://127.0.0.1:" + std::to_string(port) + "/mqtt";
    mqtt::async_client ws(uri, "ws-client", mqtt::create_options(MQTTVERSION_5), nullptr);
    ws.start_consuming();
    mqtt::connect_options opts;
    opts.set_mqtt_version(MQTTVERSION_5);
    ws.connect(opts)->wait_for(10s);
    ASSERT_TRUE(ws.is_connected());
    ws.subscribe("ws/#", 1)->wait_for(10s);
    Paho tcp(port, "tcp-pub");
    tcp.connect();
    tcp.publish("ws/hello", "over WebSocket", 1);
    mqtt::const_message_ptr msg;
    ASSERT_TRUE(ws.try_consume_message_for(&msg, 5s));
    EXPECT_EQ(msg->to_string(), "over WebSocket");
    ws.publish(mqtt::make_message("ws/back", "from WebSocket", 1, false))->wait_for(10s);
    ws.disconnect()->wait_for(5s);
}

}  // namespace
