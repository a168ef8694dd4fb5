// The message <-> Kafka record mapping (src/mapping/kafka.*): what each form keeps, checked
// with messages Proton encodes and decodes.
#include <gtest/gtest.h>
#include <proton/codec.h>
#include <proton/message.h>

#include <cstring>
#include <map>
#include <string>

#include "amqp/codec.hpp"
#include "mapping/eventhubs.hpp"
#include "mapping/kafka.hpp"
#include "mapping/strimzi.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/message.hpp"

using namespace trestle;
using mapping::HeaderView;
using mapping::KafkaRecord;

namespace {

std::map<std::string, std::string> headers_of(const KafkaRecord& r) {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : r.headers) m.emplace(k, v);
    return m;
}

std::vector<HeaderView> views(const KafkaRecord& r) {
    std::vector<HeaderView> v;
    for (const auto& [k, val] : r.headers) v.emplace_back(k, val);
    return v;
}

core::MessageRef mqtt_message(const std::string& topic, const mqtt::Properties& p,
                              const std::string& payload, uint8_t qos, bool retain) {
    std::string props;
    mqtt::encode_property_bytes(p, props);
    core::MessageRef m = mqtt::make_message(topic, props, payload);
    m->qos = qos;
    m->retain = retain;
    return m;
}

std::string encode(pn_message_t* m) {
    std::string buf(65536, '\0');
    size_t size = buf.size();
    EXPECT_EQ(pn_message_encode(m, buf.data(), &size), 0);
    buf.resize(size);
    return buf;
}

TEST(KafkaMapping, MqttMessageBecomesKeyValueAndHeadersAndComesBack) {
    mqtt::Properties p;
    p.content_type = "application/json";
    p.response_topic = "replies/1";
    p.correlation_data = std::string("\x01\x02", 2);
    p.payload_format_indicator = 1;
    p.user_properties = {{"site", "north"}, {"unit", "C"}};
    core::MessageRef m = mqtt_message("devices/d1/telemetry", p, "{\"t\":21}", 1, true);
    m->expires_at_ms = 1000 + 60000;  // a minute left at core time 1000

    KafkaRecord r;
    ASSERT_TRUE(mapping::record_from_message(*m, "devices/d1/telemetry", {}, 1000, 5'000'000, r));
    EXPECT_TRUE(r.has_key);
    EXPECT_EQ(r.key, "devices/d1/telemetry");
    EXPECT_EQ(r.value, "{\"t\":21}");
    auto h = headers_of(r);
    EXPECT_EQ(h.count("trestle.qos"), 0u) << "QoS 1 is the default: no header";
    EXPECT_EQ(h["trestle.retain"], "true");
    EXPECT_EQ(h["trestle.format"], "utf-8");
    EXPECT_EQ(h["trestle.expires-at"], "5060000");
    EXPECT_EQ(h["content-type"], "application/json");
    EXPECT_EQ(h["reply-to"], "replies/1");
    EXPECT_EQ(h["correlation-id"], std::string("\x01\x02", 2));
    EXPECT_EQ(h["site"], "north");
    EXPECT_EQ(h["unit"], "C");

    // 30 s later on both clocks: 30 s of expiry left.
    bool expired = true;
    core::MessageRef back = mapping::message_from_record(
        mapping::record_address(r.key, views(r)), r.value, views(r), 0, 31000, 5'030'000, expired);
    ASSERT_TRUE(back);
    EXPECT_FALSE(expired);
    EXPECT_EQ(back->format(), core::MessageFormat::mqtt);
    EXPECT_EQ(back->qos, 1);
    EXPECT_TRUE(back->retain);
    EXPECT_EQ(back->expires_at_ms, 31000u + 30000u);
    mqtt::MessageView v;
    ASSERT_TRUE(mqtt::view_message(*back, v));
    EXPECT_EQ(v.topic, "devices/d1/telemetry");
    EXPECT_EQ(v.payload, "{\"t\":21}");
    mqtt::Properties bp;
    std::string err;
    ASSERT_TRUE(mqtt::decode_property_bytes(v.properties, bp, err)) << err;
    EXPECT_EQ(bp.content_type, p.content_type);
    EXPECT_EQ(bp.response_topic, p.response_topic);
    EXPECT_EQ(bp.correlation_data, p.correlation_data);
    EXPECT_EQ(bp.payload_format_indicator, p.payload_format_indicator);
    EXPECT_EQ(bp.user_properties, p.user_properties);
}

TEST(KafkaMapping, QosOtherThanOneTravelsInAHeader) {
    for (uint8_t qos : {0, 1, 2}) {
        core::MessageRef m = mqtt_message("a/b", {}, "x", qos, false);
        KafkaRecord r;
        ASSERT_TRUE(mapping::record_from_message(*m, "a/b", {}, 1000, 5'000'000, r));
        auto h = headers_of(r);
        if (qos == 1)
            EXPECT_TRUE(r.headers.empty())
                << "a QoS 1 message with no properties is a plain record";
        else
            EXPECT_EQ(h["trestle.qos"], std::string(1, char('0' + qos)));
        bool expired = true;
        core::MessageRef back =
            mapping::message_from_record("a/b", r.value, views(r), 0, 1, 1, expired);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->qos, qos);
    }
}

TEST(KafkaMapping, ExpiredRecordsAreNotDelivered) {
    std::vector<HeaderView> hs = {{"trestle.expires-at", "1000"}};
    bool expired = false;
    EXPECT_FALSE(mapping::message_from_record("a", "x", hs, 0, 5, 1001, expired));
    EXPECT_TRUE(expired);
}

TEST(KafkaMapping, APlainRecordIsAQos1PayloadForItsKey) {
    bool expired = true;
    core::MessageRef m = mapping::message_from_record(mapping::record_address("orders/eu", {}),
                                                      "raw bytes", {}, 0, 1, 1, expired);
    ASSERT_TRUE(m);
    EXPECT_FALSE(expired);
    EXPECT_EQ(m->qos, 1);
    EXPECT_FALSE(m->retain);
    mqtt::MessageView v;
    ASSERT_TRUE(mqtt::view_message(*m, v));
    EXPECT_EQ(v.topic, "orders/eu");
    EXPECT_EQ(v.payload, "raw bytes");
    EXPECT_TRUE(v.properties.empty());
}

TEST(KafkaMapping, WithoutKeyTheAddressTravelsInAHeaderAndHeadersCanBeOff) {
    core::MessageRef m = mqtt_message("a/b", {}, "p", 0, false);
    mapping::KafkaRecordOptions o;
    o.key_is_address = false;
    o.headers = false;
    KafkaRecord r;
    ASSERT_TRUE(mapping::record_from_message(*m, "a/b", o, 0, 0, r));
    EXPECT_FALSE(r.has_key);
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "trestle.address");
    EXPECT_EQ(mapping::record_address("", views(r)), "a/b");
}

TEST(KafkaMapping, AmqpOnlyPropertiesKeepTheAmqpForm) {
    pn_message_t* pm = pn_message();
    pn_message_set_address(pm, "orders");
    pn_message_set_subject(pm, "new-order");
    pn_message_set_durable(pm, true);
    pn_data_put_string(pn_message_id(pm), pn_bytes(6, "id-123"));
    pn_message_set_creation_time(pm, 1700000000000);
    pn_data_t* ap = pn_message_properties(pm);
    pn_data_put_map(ap);
    pn_data_enter(ap);
    pn_data_put_string(ap, pn_bytes(8, "priority"));
    pn_data_put_int(ap, 7);
    pn_data_exit(ap);
    pn_data_t* body = pn_message_body(pm);
    pn_data_put_map(body);  // a non-data body: travels as its AMQP encoding
    pn_data_enter(body);
    pn_data_put_string(body, pn_bytes(3, "qty"));
    pn_data_put_int(body, 3);
    pn_data_exit(body);
    std::string bytes = encode(pm);
    pn_message_free(pm);
    core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(bytes));
    m->qos = 1;

    KafkaRecord r;
    ASSERT_TRUE(mapping::record_from_message(*m, "orders", {}, 0, 0, r));
    auto h = headers_of(r);
    EXPECT_EQ(h["message-id"], "id-123");
    EXPECT_EQ(h["subject"], "new-order");
    EXPECT_EQ(h["priority"], "7");
    EXPECT_EQ(h["content-type"], "application/x-amqp-body");
    EXPECT_EQ(r.timestamp_ms, 1700000000000);

    bool expired = false;
    core::MessageRef back =
        mapping::message_from_record("orders", r.value, views(r), r.timestamp_ms, 0, 0, expired);
    ASSERT_TRUE(back);
    ASSERT_EQ(back->format(), core::MessageFormat::amqp);
    pn_message_t* dm = pn_message();
    ASSERT_EQ(pn_message_decode(dm, back->bytes().data(), back->size()), 0);
    EXPECT_STREQ(pn_message_get_subject(dm), "new-order");
    EXPECT_STREQ(pn_message_get_address(dm), "orders");
    EXPECT_EQ(pn_message_get_creation_time(dm), 1700000000000);
    EXPECT_TRUE(pn_message_is_durable(dm));
    pn_data_t* id = pn_message_id(dm);
    pn_data_rewind(id);
    ASSERT_TRUE(pn_data_next(id));
    EXPECT_EQ(std::string(pn_data_get_string(id).start, pn_data_get_string(id).size), "id-123");
    pn_data_t* b = pn_message_body(dm);
    pn_data_rewind(b);
    ASSERT_TRUE(pn_data_next(b));
    EXPECT_EQ(pn_data_type(b), PN_MAP) << "the map body came back as a map";
    pn_message_free(dm);
}

TEST(KafkaMapping, AnAmqpBodyContentTypeOverBytesThatAreNotAmqpIsRefused) {
    std::vector<HeaderView> hs{{"content-type", "application/x-amqp-body"}};
    bool expired = true;
    EXPECT_FALSE(mapping::message_from_record("orders", "not amqp", hs, 0, 0, 0, expired));
    EXPECT_FALSE(expired) << "refused as malformed, not as expired";
    // The same header over real body sections (an amqp-value "x") is accepted.
    std::string value("\x00\x53\x77\xa1\x01x", 6);
    core::MessageRef ok = mapping::message_from_record("orders", value, hs, 0, 0, 0, expired);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->format(), core::MessageFormat::amqp);
}

}  // namespace

// --- Event Hubs dialect (src/mapping/direct.*): batches and the $cbs/$management messages ---

std::string formatted(pn_data_t* d) {
    std::string buf(4096, '\0');
    size_t size = buf.size();
    pn_data_rewind(d);
    EXPECT_EQ(pn_data_format(d, buf.data(), &size), 0);
    buf.resize(size);
    return buf;
}

std::string event(const std::string& body, const std::string& key, const std::string& prop) {
    pn_message_t* m = pn_message();
    pn_data_t* ma = pn_message_annotations(m);
    pn_data_put_map(ma);
    pn_data_enter(ma);
    if (!key.empty()) {
        pn_data_put_symbol(ma, pn_bytes(19, "x-opt-partition-key"));
        pn_data_put_string(ma, pn_bytes(key.size(), key.data()));
    }
    pn_data_exit(ma);
    pn_data_t* ap = pn_message_properties(m);
    pn_data_put_map(ap);
    pn_data_enter(ap);
    pn_data_put_string(ap, pn_bytes(4, "kind"));
    pn_data_put_string(ap, pn_bytes(prop.size(), prop.data()));
    pn_data_put_string(ap, pn_bytes(1, "n"));
    pn_data_put_int(ap, 42);
    pn_data_exit(ap);
    pn_data_put_binary(pn_message_body(m), pn_bytes(body.size(), body.data()));
    std::string bytes = encode(m);
    pn_message_free(m);
    return bytes;
}

TEST(EventHubsMapping, ABatchIsOneRecordPerEventWithItsKeyAndProperties) {
    std::string e1 = event("one", "dev-1", "a"), e2 = event("two", "", "b");
    amqp::Writer w;  // the SDKs' envelope: sections of their own, then one data section per event
    w.descriptor(static_cast<uint8_t>(amqp::Section::header));
    w.out() += '\x45';  // an empty list
    w.descriptor(static_cast<uint8_t>(amqp::Section::data));
    w.binary(e1);
    w.descriptor(static_cast<uint8_t>(amqp::Section::data));
    w.binary(e2);
    core::MessageRef batch = core::MessageRef::adopt(core::Message::copy_of(w.out()));
    std::vector<std::string_view> events;
    ASSERT_TRUE(mapping::eventhubs::read_batch(*batch, events));
    ASSERT_EQ(events.size(), 2u);
    mapping::Produce p;
    KafkaRecord r;
    std::string err;
    ASSERT_TRUE(mapping::read_direct_produce(events[0], {}, "x-opt-partition-key", p, r, err, true))
        << err;
    EXPECT_EQ(r.value, "one");
    EXPECT_TRUE(r.has_key);
    EXPECT_EQ(r.key, "dev-1");
    EXPECT_EQ(headers_of(r), (std::map<std::string, std::string>{{"kind", "a"}, {"n", "42"}}));
    ASSERT_TRUE(
        mapping::read_direct_produce(events[1], {}, "x-opt-partition-key", p, r, err, true));
    EXPECT_EQ(r.value, "two");
    EXPECT_FALSE(r.has_key);
    EXPECT_EQ(headers_of(r).at("kind"), "b");
    // Without properties_as_headers (the Strimzi dialect) no headers.
    ASSERT_TRUE(mapping::read_direct_produce(events[1], {}, "x-opt-partition-key", p, r, err));
    EXPECT_TRUE(r.headers.empty());

    // Not batches: an event on its own, data that is not a message, an amqp-value body.
    core::MessageRef single = core::MessageRef::adopt(core::Message::copy_of(e1));
    EXPECT_FALSE(mapping::eventhubs::read_batch(*single, events));
    amqp::Writer raw;
    raw.descriptor(static_cast<uint8_t>(amqp::Section::data));
    raw.binary("plain bytes");
    core::MessageRef plain = core::MessageRef::adopt(core::Message::copy_of(raw.out()));
    EXPECT_FALSE(mapping::eventhubs::read_batch(*plain, events));
    amqp::Writer mixed;  // one event, then bytes that are not one: not a batch
    mixed.descriptor(static_cast<uint8_t>(amqp::Section::data));
    mixed.binary(e1);
    mixed.descriptor(static_cast<uint8_t>(amqp::Section::data));
    mixed.binary(std::string("\x00\x53\x75", 3));
    core::MessageRef half = core::MessageRef::adopt(core::Message::copy_of(mixed.out()));
    EXPECT_FALSE(mapping::eventhubs::read_batch(*half, events));
}

TEST(EventHubsMapping, NodeRequestsAndResponsesAsTheSdksReadThem) {
    pn_message_t* q = pn_message();
    pn_atom_t id;
    id.type = PN_STRING;
    id.u.as_bytes = pn_bytes(5, "req-9");
    pn_message_set_id(q, id);
    pn_message_set_reply_to(q, "cbs-replies");
    pn_data_t* ap = pn_message_properties(q);
    pn_data_put_map(ap);
    pn_data_enter(ap);
    for (auto [k, v] : {std::pair<const char*, const char*>{"operation", "READ"},
                        {"type", "com.microsoft:partition"},
                        {"name", "hub"},
                        {"partition", "2"}}) {
        pn_data_put_string(ap, pn_bytes(strlen(k), k));
        pn_data_put_string(ap, pn_bytes(strlen(v), v));
    }
    pn_data_exit(ap);
    core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(encode(q)));
    pn_message_free(q);
    mapping::eventhubs::NodeRequest req;
    std::string err;
    ASSERT_TRUE(mapping::eventhubs::read_node_request(*m, req, err)) << err;
    EXPECT_EQ(req.operation, "READ");
    EXPECT_EQ(req.type, "com.microsoft:partition");
    EXPECT_EQ(req.name, "hub");
    EXPECT_EQ(req.partition, "2");
    EXPECT_EQ(req.reply_to, "cbs-replies");

    // The answer, decoded by Proton: correlated by the request's message-id, status in
    // application properties, the properties as an amqp-value map.
    core::MessageRef resp = mapping::eventhubs::node_response(
        req.reply_to, req.message_id, 200, "OK", {},
        mapping::eventhubs::encode(mapping::eventhubs::HubProperties{"hub", {0, 1, 2}}));
    pn_message_t* a = pn_message();
    ASSERT_EQ(pn_message_decode(a, resp->data(), resp->size()), 0);
    pn_atom_t corr = pn_message_get_correlation_id(a);
    ASSERT_EQ(corr.type, PN_STRING);
    EXPECT_EQ(std::string(corr.u.as_bytes.start, corr.u.as_bytes.size), "req-9");
    EXPECT_STREQ(pn_message_get_address(a), "cbs-replies");
    EXPECT_EQ(formatted(pn_message_properties(a)),
              "{\"status-code\"=200, \"status-description\"=\"OK\"}");
    EXPECT_EQ(formatted(pn_message_body(a)),
              "{\"name\"=\"hub\", \"created_at\"=0, \"partition_count\"=3, "
              "\"partition_ids\"=@PN_STRING[\"0\", \"1\", \"2\"]}");
    pn_message_free(a);

    // A failure names its condition; a request without an operation is refused.
    core::MessageRef nf = mapping::eventhubs::node_response(
        "r", {}, 404, "no such hub", "com.microsoft:messaging-entity-not-found");
    pn_message_t* b = pn_message();
    ASSERT_EQ(pn_message_decode(b, nf->data(), nf->size()), 0);
    EXPECT_NE(formatted(pn_message_properties(b))
                  .find("\"error-condition\"=:\"com.microsoft:messaging-entity-not-found\""),
              std::string::npos);
    pn_message_free(b);
    amqp::Writer w;
    w.descriptor(static_cast<uint8_t>(amqp::Section::amqp_value));
    w.string("no properties");
    core::MessageRef bad = core::MessageRef::adopt(core::Message::copy_of(w.out()));
    EXPECT_FALSE(mapping::eventhubs::read_node_request(*bad, req, err));
    EXPECT_FALSE(err.empty());
}
