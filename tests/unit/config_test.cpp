// Config loading: qdrouterd section syntax and JSON form, validated against the schema, every
// error naming file and line.
#include <gtest/gtest.h>

#include "management/config.hpp"

using namespace trestle::management;

namespace {

std::vector<Entity> parse(const std::string& text) {
    return parse_config(text, "test.conf", false);
}

// Expects a ConfigError at `line` whose message contains `needle`.
void expect_error(const std::string& text, int line, const std::string& needle, bool json = false) {
    try {
        parse_config(text, "test.conf", json);
        FAIL() << "expected an error containing '" << needle << "'";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.file(), "test.conf");
        EXPECT_EQ(e.line(), line) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("test.conf:" + std::to_string(line) + ": ", 0), 0u)
            << e.what();
    }
}

TEST(Config, SectionsAttributesCommentsAndDefaults) {
    auto es = parse(R"(
# a comment
router {
    mode: standalone
    id: R1          # trailing comment
}
listener {
    host: 127.0.0.1
    port: amqp
    sasl-mechanisms: ANONYMOUS
    idleTimeoutSeconds: "8"
}
address {
    pattern: a.*.#   # '#' is data in a pattern
    distribution: multicast
}
)");
    ASSERT_EQ(es.size(), 3u);
    EXPECT_EQ(es[0].str("id"), "R1");
    EXPECT_EQ(es[1].integer("port"), 5672) << "service names become numbers";
    EXPECT_EQ(es[1].str("saslMechanisms"), "ANONYMOUS") << "hyphenated names are camel-cased";
    EXPECT_EQ(es[1].integer("idleTimeoutSeconds"), 8);
    EXPECT_EQ(es[1].integer("linkCapacity"), 250) << "defaults from the schema";
    EXPECT_EQ(es[1].integer("maxFrameSize"), 16384);
    EXPECT_EQ(es[2].type->short_name, "router.config.address");
    EXPECT_EQ(es[2].str("pattern"), "a.*.#");
    EXPECT_EQ(es[2].line_of("distribution"), 15);
}

TEST(Config, UnknownSectionNamesItsLine) {
    expect_error("router {\n}\nlistner {\n    port: 1\n}\n", 3, "unknown section 'listner'");
}

TEST(Config, UnknownAttributeNamesItsLine) {
    expect_error("listener {\n    host: x\n    prot: 5672\n}\n", 3, "unknown attribute 'prot'");
}

TEST(Config, BadValuesNameTheirLine) {
    expect_error("listener {\n    port: http-ish\n}\n", 2, "not a port number");
    expect_error("listener {\n    port: 70000\n}\n", 2, "not a port number");
    expect_error("address {\n    prefix: a\n    distribution: fastest\n}\n", 3,
                 "'fastest' is not one of");
    expect_error("listener {\n    authenticatePeer: maybe\n}\n", 2, "not a boolean");
    expect_error("listener {\n    linkCapacity: 0\n}\n", 2, "out of range");
    expect_error("listener {\n    maxFrameSize: lots\n}\n", 2, "not an integer");
}

TEST(Config, DuplicateNamesAndAttributes) {
    expect_error(
        "listener {\n    name: a\n    port: 1\n}\nlistener {\n    name: a\n    port: 2\n}\n", 6,
        "duplicate name 'a'");
    expect_error("listener {\n    port: 1\n    port: 2\n}\n", 3, "set twice");
    expect_error("router {\n}\nrouter {\n}\n", 3, "only one 'router'");
}

TEST(Config, RequiredAttributesAndStructure) {
    expect_error("linkRoute {\n    prefix: q\n    connection: b\n}\n", 1, "requires 'direction'");
    expect_error("listener {\n    port: 1\n", 1, "not closed");
    expect_error("}\n", 1, "without an open section");
    expect_error("port: 5\n", 1, "outside of a section");
    expect_error("listener {\n    just words\n}\n", 2, "expected 'attribute: value'");
    expect_error("listener {\nconnector {\n}\n}\n", 2, "inside section");
}

TEST(Config, UnsupportedQdrouterdAttributesAreErrorsNotSilence) {
    expect_error("listener {\n    multiTenant: yes\n}\n", 2, "not supported by Trestle");
    expect_error("address {\n    prefix: q\n    waypoint: yes\n}\n", 3, "not supported");
}

TEST(Config, JsonForm) {
    auto es = parse_config(R"([
  ["router", {"id": "J1"}],
  ["listener", {"host": "127.0.0.1", "port": 0, "link-capacity": 10}],
  ["linkRoute", {"prefix": "q", "direction": "in", "containerId": "broker"}]
])",
                           "test.json", true);
    ASSERT_EQ(es.size(), 3u);
    EXPECT_EQ(es[0].str("id"), "J1");
    EXPECT_EQ(es[1].integer("port"), 0);
    EXPECT_EQ(es[1].integer("linkCapacity"), 10);
    EXPECT_EQ(es[2].str("direction"), "in");
}

TEST(Config, JsonErrorsNameTheirLine) {
    expect_error("[\n  [\"listener\", {\"port\": \"x\"}]\n]", 2, "not a port number", true);
    expect_error("[\n  [\"listener\", {\"port\": 1,}]\n]", 2, "expected a string key", true);
    expect_error("{\"router\": {}}", 1, "expected a JSON array", true);
    expect_error("[\n  [\"nope\", {}]\n]", 2, "unknown section 'nope'", true);
}

TEST(Config, KafkaPropertiesAreAJsonObjectInEitherForm) {
    auto es = parse(
        "kafka {\n    bootstrapServers: k1:9092,k2:9092\n"
        "    properties: {\"security.protocol\": \"SASL_SSL\", \"linger.ms\": 20}\n}\n"
        "kafkaRoute {\n    pattern: devices/+/telemetry\n    topic: telemetry\n}\n");
    ASSERT_EQ(es.size(), 2u);
    const auto& props = es[0].attributes.at("properties").as_object();
    ASSERT_EQ(props.size(), 2u);
    EXPECT_EQ(props[0].first, "security.protocol");
    EXPECT_EQ(props[0].second.as_string(), "SASL_SSL");
    EXPECT_EQ(props[1].second.as_string(), "20") << "numbers become librdkafka strings";
    EXPECT_EQ(es[1].str("direction"), "both");
    EXPECT_EQ(es[1].str("key"), "address");

    auto js = parse_config(R"([["kafka", {"properties": {"acks": "all"}}]])", "test.json", true);
    EXPECT_EQ(js[0].attributes.at("properties").as_object()[0].second.as_string(), "all");

    expect_error("kafka {\n    properties: not-json\n}\n", 2, "JSON object");
    expect_error("kafka {\n    properties: {\"a\": [1]}\n}\n", 2, "'a' must be");
    expect_error("kafkaRoute {\n    prefix: x\n}\n", 1, "topic");
    expect_error("kafkaRoute {\n    prefix: x\n    topic: t\n    direction: sideways\n}\n", 4,
                 "not one of");
    expect_error("kafka {\n}\nkafka {\n}\n", 3, "kafka");
}

}  // namespace

// Operational types and attributes come from the router; a config file cannot set them.
TEST(Config, OperationalEntitiesAndAttributesAreNotConfiguration) {
    expect_error("connection {\n    host: x\n}\n", 1, "reported by the router, not configured");
    expect_error("router {\n    id: R\n    uptimeSeconds: 5\n}\n", 3,
                 "attribute 'uptimeSeconds' of router is reported by the router");
    expect_error("listener {\n    port: 0\n    identity: x\n}\n", 3, "reported by the router");
}

TEST(Config, QdrouterdHttpListenerAttributesPointToHttpListener) {
    expect_error("listener {\n    port: 8080\n    http: true\n}\n", 3,
                 "use an httpListener section");
    expect_error("listener {\n    port: 8080\n    websockets: true\n}\n", 3,
                 "mqttListener websocketPath");
    auto e = parse("httpListener {\n    port: 0\n    metricsMaxAddresses: 10\n}\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].integer("metricsMaxAddresses"), 10);
    EXPECT_EQ(e[0].integer("maxConnections"), 32);
    expect_error("httpListener {\n    port: 0\n    maxConnections: 0\n}\n", 3, "maxConnections");
    expect_error("httpListener {\n    port: 0\n    boundPort: 5\n}\n", 3, "reported by the router");
}
