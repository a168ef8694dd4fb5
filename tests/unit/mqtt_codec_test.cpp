// MQTT codec: round trips for both protocol levels and the reason code for each malformation.
#include <gtest/gtest.h>

#include "mqtt/codec.hpp"

using namespace trestle::mqtt;

namespace {

Packet round_trip(const Packet& p, uint8_t level) {
    std::string bytes;
    encode(p, level, bytes);
    FrameInfo f = frame(bytes, 0);
    EXPECT_EQ(f.status, FrameInfo::Status::complete);
    EXPECT_EQ(f.total_size, bytes.size());
    DecodeError err;
    auto q = decode(bytes, level, err);
    EXPECT_TRUE(q) << err.message;
    return q ? *q : Packet{};
}

uint8_t error_of(const std::string& bytes, uint8_t level) {
    DecodeError err;
    auto p = decode(bytes, level, err);
    EXPECT_FALSE(p) << "expected a decode error";
    return err.reason;
}

std::string hex(std::initializer_list<int> bytes) {
    std::string s;
    for (int b : bytes) s += static_cast<char>(b);
    return s;
}

TEST(MqttCodec, ConnectRoundTripsBothLevels) {
    for (uint8_t level : {v311, v5}) {
        Packet p;
        p.type = PacketType::connect;
        p.connect.level = level;
        p.connect.client_id = "dev-1";
        p.connect.clean_start = false;
        p.connect.keep_alive = 30;
        p.connect.username = "u";
        p.connect.password = std::string("p\0w", 3);
        Will w;
        w.topic = "dev/1/status";
        w.payload = "offline";
        w.qos = 1;
        w.retain = true;
        if (level == v5) {
            w.properties.will_delay_interval = 5;
            w.properties.user_properties = {{"k", "v"}};
            p.connect.properties.session_expiry_interval = 3600;
            p.connect.properties.receive_maximum = 10;
            p.connect.properties.topic_alias_maximum = 5;
        }
        p.connect.will = w;
        Packet q = round_trip(p, level);
        EXPECT_TRUE(same(p, q)) << int(level);
    }
}

TEST(MqttCodec, PublishAcksSubscribeRoundTrip) {
    Packet p;
    p.type = PacketType::publish;
    p.publish.qos = 2;
    p.publish.dup = true;
    p.publish.retain = true;
    p.publish.topic = "a/b";
    p.publish.packet_id = 7;
    p.publish.payload = std::string(300, 'x');
    p.publish.properties.message_expiry_interval = 60;
    p.publish.properties.response_topic = "replies/1";
    p.publish.properties.correlation_data = std::string("\x01\x02", 2);
    p.publish.properties.content_type = "text/plain";
    p.publish.properties.payload_format_indicator = 1;
    p.publish.properties.subscription_identifiers = {3, 300000};
    p.publish.properties.user_properties = {{"a", "1"}, {"a", "2"}};
    EXPECT_TRUE(same(p, round_trip(p, v5)));

    Packet a;
    a.type = PacketType::pubrel;
    a.ack.type = PacketType::pubrel;
    a.ack.packet_id = 9;
    a.ack.code = reason::packet_identifier_not_found;
    EXPECT_TRUE(same(a, round_trip(a, v5)));
    a.ack.code = 0;
    std::string b;
    encode(a, v5, b);
    EXPECT_EQ(b, hex({0x62, 0x02, 0x00, 0x09})) << "success without properties is 2 bytes";

    Packet s;
    s.type = PacketType::subscribe;
    s.subscribe.packet_id = 3;
    s.subscribe.properties.subscription_identifiers = {12};
    s.subscribe.subscriptions = {{"a/+", 1, true, true, 2}, {"$share/g/x/#", 2, false, false, 0}};
    EXPECT_TRUE(same(s, round_trip(s, v5)));
}

TEST(MqttCodec, PublishScratchIsReusedWithoutLeftovers) {
    Packet with;
    with.type = PacketType::publish;
    with.publish.qos = 1;
    with.publish.topic = "a/b";
    with.publish.packet_id = 7;
    with.publish.payload = "first";
    with.publish.properties.content_type = "text/plain";
    with.publish.properties.user_properties = {{"k", "v"}};
    Packet without;
    without.type = PacketType::publish;
    without.publish.topic = "c";
    without.publish.payload = "2";
    PublishScratch s;
    for (uint8_t level : {v5, v311}) {
        for (const Packet* p : {&with, &without, &with}) {
            std::string bytes;
            encode(*p, level, bytes);
            DecodeError err;
            ASSERT_TRUE(decode_publish(bytes, level, s, err)) << err.message;
            auto full = decode(bytes, level, err);
            ASSERT_TRUE(full);
            EXPECT_EQ(s.publish, full->publish) << "nothing of the previous one stays";
        }
    }
    std::string bad = hex({0x32, 0x03, 0x00, 0x01, 'a'});  // QoS 1 without a packet id
    DecodeError err;
    EXPECT_FALSE(decode_publish(bad, v5, s, err));
    EXPECT_EQ(err.reason, reason::malformed_packet);
}

TEST(MqttCodec, FrameFindsBoundariesAndLimits) {
    std::string pub;
    Packet p;
    p.type = PacketType::publish;
    p.publish.topic = "t";
    p.publish.payload = std::string(200, 'y');
    encode(p, v311, pub);
    EXPECT_EQ(frame(pub.substr(0, 1), 0).status, FrameInfo::Status::need_more);
    EXPECT_EQ(frame(pub.substr(0, 2), 0).status, FrameInfo::Status::need_more)
        << "the two-byte length is not complete yet";
    EXPECT_EQ(frame(pub.substr(0, 50), 0).status, FrameInfo::Status::need_more);
    EXPECT_EQ(frame(pub + "extra", 0).total_size, pub.size());
    FrameInfo big = frame(pub, 100);
    EXPECT_EQ(big.status, FrameInfo::Status::error);
    EXPECT_EQ(big.reason, reason::packet_too_large);
    FrameInfo five = frame(hex({0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}), 0);
    EXPECT_EQ(five.status, FrameInfo::Status::error);
    EXPECT_EQ(five.reason, reason::malformed_packet);
}

TEST(MqttCodec, MalformationsAndTheirReasonCodes) {
    // PUBLISH QoS 3
    EXPECT_EQ(error_of(hex({0x36, 0x03, 0x00, 0x01, 't'}), v311), reason::malformed_packet);
    // SUBSCRIBE with wrong fixed-header flags
    EXPECT_EQ(error_of(hex({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}), v311),
              reason::malformed_packet);
    // PUBACK with packet id 0
    EXPECT_EQ(error_of(hex({0x40, 0x02, 0x00, 0x00}), v311), reason::protocol_error);
    // invalid UTF-8 in a topic
    EXPECT_EQ(error_of(hex({0x30, 0x04, 0x00, 0x02, 0xc3, 0x28}), v311), reason::malformed_packet);
    // U+0000 in a topic
    EXPECT_EQ(error_of(hex({0x30, 0x03, 0x00, 0x01, 0x00}), v311), reason::malformed_packet);
    // a CONNACK-only property (maximum QoS) on PUBLISH
    EXPECT_EQ(error_of(hex({0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x24, 0x01}), v5),
              reason::protocol_error);
    // payload format indicator twice
    EXPECT_EQ(error_of(hex({0x30, 0x08, 0x00, 0x01, 't', 0x04, 0x01, 0x01, 0x01, 0x00}), v5),
              reason::protocol_error);
    // properties longer than the packet
    EXPECT_EQ(error_of(hex({0x30, 0x05, 0x00, 0x01, 't', 0x09, 0x01}), v5),
              reason::malformed_packet);
    // AUTH on 3.1.1
    EXPECT_EQ(error_of(hex({0xf0, 0x00}), v311), reason::malformed_packet);
    // SUBSCRIBE without filters
    EXPECT_EQ(error_of(hex({0x82, 0x03, 0x00, 0x01, 0x00}), v5), reason::protocol_error);
    // CONNECT with the reserved flag
    EXPECT_EQ(error_of(hex({0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x00,
                            0x00, 0x00}),
                       v311),
              reason::malformed_packet);
    // CONNECT for MQTT 3.1
    EXPECT_EQ(error_of(hex({0x10, 0x0e, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00,
                            0x00, 0x00, 0x00}),
                       v311),
              reason::unsupported_protocol_version);
    // receive maximum 0 on CONNECT
    EXPECT_EQ(error_of(hex({0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x00,
                            0x03, 0x21, 0x00, 0x00, 0x00, 0x00}),
                       v5),
              reason::protocol_error);
    // trailing bytes after a PINGREQ's (empty) body
    EXPECT_EQ(error_of(hex({0xc0, 0x01, 0x00}), v311), reason::malformed_packet);
}

TEST(MqttCodec, Utf8Validation) {
    EXPECT_TRUE(valid_utf8("plain"));
    EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8(std::string("a\0b", 3)));
    EXPECT_FALSE(valid_utf8("\xc0\xaf")) << "overlong";
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80")) << "surrogate";
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80")) << "beyond U+10FFFF";
    EXPECT_FALSE(valid_utf8("\xe2\x82")) << "truncated";
}

}  // namespace
