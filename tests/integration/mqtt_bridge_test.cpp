// MQTT and AMQP clients exchanging messages through the routing core, both directions, with
// the mapping table of src/mapping/mqtt_amqp.hpp.
#include <gtest/gtest.h>

#include <proton/annotation_key.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>

#include "amqp_client.hpp"
#include "mqtt_helpers.hpp"
#include "router_process.hpp"

using namespace trestle::test;
namespace m = trestle::mqtt;
using proton::transfer;

namespace {

const char* kConfig = R"(
router {
    id: Rbridge
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
}
address {
    prefix: telemetry
    distribution: multicast
}
address {
    prefix: jobs
    distribution: balanced
}
)";

class Bridge : public ::testing::Test {
  protected:
    void SetUp() override {
        router = std::make_unique<RouterProcess>(kConfig);
        mqtt_port = router->port("mqtt");
        amqp_url = router->url("amqp");
    }
    // `sub` subscribes to `filter`, then `amqp` opens a sender to `address`, which the
    // subscription makes a destination (it gets credit).
    int sender_to_subscribed(Paho& sub, const std::string& filter, int qos, AmqpClient& amqp,
                             const std::string& address) {
        sub.connect();
        sub.subscribe(filter, qos);
        int s = amqp.open_sender(address);
        EXPECT_TRUE(amqp.wait_credit(s, 1)) << "an MQTT subscription is a destination";
        return s;
    }
    std::unique_ptr<RouterProcess> router;
    int mqtt_port = 0;
    std::string amqp_url;
};

std::string text_of(const proton::message& msg) {
    if (msg.body().type() == proton::STRING) return proton::get<std::string>(msg.body());
    if (msg.body().type() == proton::BINARY)
        return std::string(proton::get<proton::binary>(msg.body()));
    return "<" + proton::type_name(msg.body().type()) + ">";
}

TEST_F(Bridge, MqttPublishReachesAnAmqpReceiverWithTheMapping) {
    AmqpClient amqp(amqp_url);
    LinkConfig acc;
    acc.auto_accept = true;
    int r = amqp.open_receiver("telemetry/dev1", acc);
    ASSERT_TRUE(amqp.wait_link_open(r));
    Paho pub(mqtt_port, "bridge-pub");
    pub.connect();
    ::mqtt::properties props{{::mqtt::property::USER_PROPERTY, "unit", "celsius"},
                             {::mqtt::property::CONTENT_TYPE, "text/plain"},
                             {::mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1},
                             {::mqtt::property::RESPONSE_TOPIC, "replies/dev1"},
                             {::mqtt::property::CORRELATION_DATA, std::string("c-1")},
                             {::mqtt::property::MESSAGE_EXPIRY_INTERVAL, 60}};
    EXPECT_EQ(pub.publish("telemetry/dev1", "21.5", 1, false, props), 0);
    auto got = amqp.receive(r);
    ASSERT_TRUE(got);
    const proton::message& msg = got->message;
    EXPECT_EQ(text_of(msg), "21.5") << "payload format 1: an AMQP string";
    EXPECT_EQ(msg.to(), "telemetry/dev1");
    EXPECT_EQ(msg.content_type(), "text/plain");
    EXPECT_EQ(msg.reply_to(), "replies/dev1");
    EXPECT_EQ(proton::coerce<std::string>(msg.correlation_id()), "c-1");
    EXPECT_TRUE(msg.durable()) << "QoS 1 -> durable";
    EXPECT_GT(msg.ttl().milliseconds(), 0u);
    EXPECT_LE(msg.ttl().milliseconds(), 60000u);
    EXPECT_EQ(proton::get<int32_t>(msg.message_annotations().get(proton::symbol("x-opt-mqtt-qos"))),
              1);
    EXPECT_EQ(proton::get<std::string>(msg.properties().get("unit")), "celsius");
    EXPECT_FALSE(got->settled) << "QoS 1 -> unsettled";
}

TEST_F(Bridge, AmqpMessagesReachMqttSubscribers) {
    Paho sub(mqtt_port, "bridge-sub");
    AmqpClient amqp(amqp_url);
    int s = sender_to_subscribed(sub, "telemetry/#", 2, amqp, "telemetry/dev2");
    proton::message msg;
    msg.body(proton::binary("raw bytes"));
    msg.durable(true);
    msg.properties().put("site", "north");
    msg.properties().put("count", 3);
    msg.content_type("application/octet-stream");
    EXPECT_EQ(amqp.wait_outcome(s, amqp.send(s, msg)).state, transfer::ACCEPTED)
        << "accepted once the MQTT session has it";
    auto got = sub.receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->get_topic(), "telemetry/dev2") << "the target address is the topic";
    EXPECT_EQ(got->to_string(), "raw bytes");
    EXPECT_EQ(got->get_qos(), 1) << "durable -> QoS 1";
    const auto& props = got->get_properties();
    EXPECT_EQ(::mqtt::get<std::string>(props, ::mqtt::property::CONTENT_TYPE),
              "application/octet-stream");
    EXPECT_EQ(props.count(::mqtt::property::USER_PROPERTY), 2u);

    LinkConfig presettled;
    presettled.presettled = true;
    int ps = amqp.open_sender("telemetry/dev2", presettled);
    ASSERT_TRUE(amqp.wait_credit(ps, 1));
    proton::message fire;
    fire.body(std::string("fire and forget"));
    fire.durable(true);
    amqp.send(ps, fire);
    auto q0 = sub.receive();
    ASSERT_TRUE(q0);
    EXPECT_EQ(q0->get_qos(), 0) << "presettled -> QoS 0";
}

TEST_F(Bridge, AmqpRejectionBecomesAnMqtt5ReasonCode) {
    AmqpClient amqp(amqp_url);
    int r = amqp.open_receiver("orders/eu");
    ASSERT_TRUE(amqp.wait_link_open(r));
    RawMqtt pub(mqtt_port, m::v5);
    ASSERT_EQ(pub.connect("reject-pub").code, 0);
    pub.publish("orders/eu", "bad order", 1, 1);
    auto got = amqp.receive(r);
    ASSERT_TRUE(got);
    amqp.reject(r, got->id, "amqp:unauthorized-access", "not your order");
    auto ack = pub.receive();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type, m::PacketType::puback);
    EXPECT_EQ(ack->ack.code, m::reason::not_authorized);

    pub.publish("orders/eu", "worse", 2, 2);
    got = amqp.receive(r);
    ASSERT_TRUE(got);
    amqp.reject(r, got->id, "app:broken", "");
    ack = pub.receive();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->type, m::PacketType::pubrec);
    EXPECT_EQ(ack->ack.code, m::reason::unspecified_error);

    pub.publish("orders/eu", "good", 1, 3);
    got = amqp.receive(r);
    ASSERT_TRUE(got);
    EXPECT_FALSE(pub.receive(200ms)) << "no PUBACK before the AMQP consumer's outcome";
    amqp.accept(r, got->id);
    ack = pub.receive();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->ack.code, m::reason::success);
}

TEST_F(Bridge, RetainedMessagesReachNewAmqpReceiversFirst) {
    RawMqtt pub(mqtt_port, m::v311);
    ASSERT_EQ(pub.connect("ret-pub").code, 0);
    pub.publish("telemetry/room1", "19.0", 1, 1, true);
    ASSERT_TRUE(pub.receive());
    AmqpClient amqp(amqp_url);
    LinkConfig acc;
    acc.auto_accept = true;
    int r = amqp.open_receiver("telemetry/room1", acc);
    auto got = amqp.receive(r);
    ASSERT_TRUE(got);
    EXPECT_EQ(text_of(got->message), "19.0");
    EXPECT_TRUE(proton::get<bool>(
        got->message.message_annotations().get(proton::symbol("x-opt-retain-message"))));
}

TEST_F(Bridge, AmqpRetainedPublishIsStoredForMqtt) {
    AmqpClient amqp(amqp_url);
    int s = amqp.open_sender("");
    ASSERT_TRUE(amqp.wait_credit(s, 1));
    proton::message msg;
    msg.to("telemetry/state");
    msg.body(std::string("set by AMQP"));
    msg.message_annotations().put(proton::symbol("x-opt-retain-message"), true);
    msg.message_annotations().put(proton::symbol("x-opt-mqtt-qos"), 1);
    amqp.wait_outcome(s, amqp.send(s, msg));
    Paho sub(mqtt_port, "ret-sub");
    sub.connect();
    sub.subscribe("telemetry/state", 1);
    auto got = sub.receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->to_string(), "set by AMQP");
    EXPECT_TRUE(got->is_retained());
    EXPECT_EQ(got->get_qos(), 1);
}

// A sender with a fixed target on an anycast address that MQTT subscriptions match: its
// messages become MQTT messages, so the router reads them like an anonymous sender's (retain,
// QoS, expiry), although AMQP -> AMQP forwarding on such a link reads nothing.
TEST_F(Bridge, AFixedAddressAmqpSendersRetainedMessageIsStoredForMqtt) {
    Paho watcher(mqtt_port, "ret-watch");
    AmqpClient amqp(amqp_url);
    int s = sender_to_subscribed(watcher, "jobs/#", 1, amqp, "jobs/lamp");
    proton::message msg;
    msg.body(std::string("on"));
    msg.durable(true);
    msg.message_annotations().put(proton::symbol("x-opt-retain-message"), true);
    EXPECT_EQ(amqp.wait_outcome(s, amqp.send(s, msg)).state, transfer::ACCEPTED);
    auto live = watcher.receive();
    ASSERT_TRUE(live);
    EXPECT_EQ(live->to_string(), "on");
    Paho late(mqtt_port, "ret-late");
    late.connect();
    late.subscribe("jobs/lamp", 1);
    auto got = late.receive();
    ASSERT_TRUE(got) << "stored as the topic's retained message";
    EXPECT_EQ(got->to_string(), "on");
    EXPECT_TRUE(got->is_retained());
    EXPECT_EQ(got->get_qos(), 1);
}

TEST_F(Bridge, AmqpReceiverSubscribesWithAnMqttTopicFilter) {
    AmqpClient amqp(amqp_url);
    LinkConfig acc;
    acc.auto_accept = true;
    int r = amqp.open_receiver("telemetry/+/temp", acc);
    ASSERT_TRUE(amqp.wait_link_open(r));
    RawMqtt pub(mqtt_port, m::v311);
    ASSERT_EQ(pub.connect("filter-pub").code, 0);
    pub.publish("telemetry/kitchen/temp", "22", 1, 1);
    pub.publish("telemetry/kitchen/humidity", "40", 1, 2);
    pub.publish("telemetry/hall/temp", "18", 1, 3);
    EXPECT_EQ(text_of(amqp.receive(r)->message), "22");
    EXPECT_EQ(text_of(amqp.receive(r)->message), "18");
    amqp.sync();
    EXPECT_EQ(amqp.pending(r), 0u);
}

TEST_F(Bridge, RequestReplyAcrossProtocols) {
    AmqpClient service(amqp_url);
    int requests = service.open_receiver("jobs/resize");
    ASSERT_TRUE(service.wait_link_open(requests));
    int replies = service.open_sender("");
    Paho client(mqtt_port, "requester");
    client.connect();
    client.subscribe("replies/requester", 1);
    // Not waiting for the PUBACK here: it comes with the service's outcome (end to end).
    auto request = ::mqtt::make_message("jobs/resize", "image-7", 1, false);
    request->set_properties({{::mqtt::property::RESPONSE_TOPIC, "replies/requester"},
                             {::mqtt::property::CORRELATION_DATA, std::string("req-7")}});
    auto token = client.client().publish(request);
    auto req = service.receive(requests);
    ASSERT_TRUE(req);
    proton::message reply;
    reply.to(req->message.reply_to());
    reply.correlation_id(req->message.correlation_id());
    reply.body(std::string("done"));
    ASSERT_TRUE(service.wait_credit(replies, 1));
    service.send(replies, reply);
    service.accept(requests, req->id);
    EXPECT_TRUE(token->wait_for(5s)) << "PUBACK once the service accepted";
    auto got = client.receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->to_string(), "done");
    EXPECT_EQ(
        ::mqtt::get<::mqtt::binary>(got->get_properties(), ::mqtt::property::CORRELATION_DATA),
        "req-7");
}

// EnMasse's MQTT-over-AMQP wills: a sender link to `$lwt` named by the client id carries the
// will; detach-forced or an abnormal connection end publishes it, a clean end discards it.
proton::message will_message(const std::string& topic, const std::string& body) {
    proton::message w;
    w.to(topic);
    w.subject("will");
    w.body(proton::binary(body));
    w.durable(true);
    w.message_annotations().put(proton::symbol("x-opt-mqtt-qos"), 1);
    w.message_annotations().put(proton::symbol("x-opt-retain-message"), false);
    return w;
}

TEST_F(Bridge, AmqpWillIsPublishedWhenItsLinkIsDetachedForced) {
    Paho sub(mqtt_port, "will-sub");
    sub.connect();
    sub.subscribe("telemetry/wills/#", 1);
    AmqpClient amqp(amqp_url);
    LinkConfig named;
    named.name = "device-7";
    int w = amqp.open_sender("$lwt", named);
    ASSERT_TRUE(amqp.wait_credit(w, 1));
    EXPECT_EQ(
        amqp.wait_outcome(w, amqp.send(w, will_message("telemetry/wills/device-7", "first"))).state,
        transfer::ACCEPTED);
    ASSERT_TRUE(amqp.wait_credit(w, 1)) << "a will can be replaced";
    EXPECT_EQ(
        amqp.wait_outcome(w, amqp.send(w, will_message("telemetry/wills/device-7", "gone"))).state,
        transfer::ACCEPTED);
    amqp.close_link(w, "amqp:link:detach-forced",
                    "Link detached due to a brute MQTT client disconnection");
    auto got = sub.receive(5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->get_topic(), "telemetry/wills/device-7");
    EXPECT_EQ(got->to_string(), "gone") << "the last will set";
    EXPECT_EQ(got->get_qos(), 1);
}

TEST_F(Bridge, AmqpWillIsDiscardedOnACleanDetachOrClose) {
    Paho sub(mqtt_port, "will-sub2");
    sub.connect();
    sub.subscribe("telemetry/wills/#", 1);
    {
        AmqpClient amqp(amqp_url);
        LinkConfig named;
        named.name = "device-8";
        int w = amqp.open_sender("$lwt", named);
        ASSERT_TRUE(amqp.wait_credit(w, 1));
        amqp.wait_outcome(w, amqp.send(w, will_message("telemetry/wills/device-8", "not this")));
        amqp.close_link(w);  // clean detach: the will is deleted
        ASSERT_TRUE(amqp.wait_link_closed(w));
        named.name = "device-9";
        int w2 = amqp.open_sender("$lwt", named);
        ASSERT_TRUE(amqp.wait_credit(w2, 1));
        amqp.wait_outcome(w2, amqp.send(w2, will_message("telemetry/wills/device-9", "nor this")));
        amqp.close();  // clean connection close
        ASSERT_TRUE(amqp.wait_closed());
    }
    // A marker published after both ends is the first thing the subscriber sees.
    Paho pub(mqtt_port, "will-marker");
    pub.connect();
    pub.publish("telemetry/wills/marker", "marker", 1);
    auto got = sub.receive(5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->to_string(), "marker");
}

TEST_F(Bridge, AmqpWillIsPublishedWhenTheConnectionDropsWithoutClose) {
    Paho sub(mqtt_port, "will-sub3");
    sub.connect();
    sub.subscribe("telemetry/wills/#", 1);
    // A client process that sets its will and dies without closing its connection.
    std::string script = R"PY(
import os, sys
from proton import Message
from proton.utils import BlockingConnection
c = BlockingConnection(sys.argv[1])
s = c.create_sender("$lwt", name="device-10")
m = Message(address="telemetry/wills/device-10", subject="will", body=b"crashed", durable=True)
s.send(m)
os._exit(0)
)PY";
    std::string out;
    ASSERT_EQ(run_command({"/usr/bin/python3", "-c", script, amqp_url}, &out), 0) << out;
    auto got = sub.receive(5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->get_topic(), "telemetry/wills/device-10");
    EXPECT_EQ(got->to_string(), "crashed");
}

}  // namespace
