#include "management/schema.hpp"

#include <algorithm>
#include <charconv>

namespace trestle::management {

namespace {

constexpr const char* prefix = "org.apache.qpid.dispatch.";

AttributeSchema str(std::string name, std::string description, json::Value def = nullptr) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::string;
    a.default_value = std::move(def);
    a.description = std::move(description);
    return a;
}

AttributeSchema integer(std::string name, std::string description, int64_t def, int64_t min,
                        int64_t max) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::integer;
    a.default_value = json::Value(def);
    a.min = min;
    a.max = max;
    a.description = std::move(description);
    return a;
}

AttributeSchema boolean(std::string name, std::string description, bool def) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::boolean;
    a.default_value = json::Value(def);
    a.description = std::move(description);
    return a;
}

AttributeSchema enumeration(std::string name, std::string description,
                            std::vector<std::string> values, json::Value def = nullptr) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::enumeration;
    a.values = std::move(values);
    a.default_value = std::move(def);
    a.description = std::move(description);
    return a;
}

AttributeSchema required(AttributeSchema a) {
    a.required = true;
    return a;
}

AttributeSchema unsupported(std::string name) {
    AttributeSchema a;
    a.name = std::move(name);
    a.supported = false;
    a.description = "qdrouterd attribute not supported by Trestle";
    return a;
}

AttributeSchema port(std::string description, const char* def = "amqp");

// What every listener starts with: name, host and port.
void listener_address(std::vector<AttributeSchema>& v, std::string port_description, const char* def) {
    v.push_back(str("name", "Unique name (default: host:port)."));
    v.push_back(str("host", "Address to listen on; empty = all interfaces.", ""));
    v.push_back(port(std::move(port_description), def));
}

AttributeSchema port(std::string description, const char* def) {
    AttributeSchema a;
    a.name = "port";
    a.type = AttrType::port;
    a.default_value = json::Value(def);
    a.description = std::move(description);
    return a;
}

AttributeSchema map(std::string name, std::string description) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::map;
    a.description = std::move(description);
    return a;
}

// Its default depends on other attributes (the description says how).
AttributeSchema no_default(AttributeSchema a) {
    a.default_value = nullptr;
    return a;
}
AttributeSchema operational(AttributeSchema a) {
    a.operational = true;
    a.default_value = nullptr;
    return a;
}
AttributeSchema stat(std::string name, std::string description) {
    return operational(integer(std::move(name), std::move(description), 0, INT64_MIN, INT64_MAX));
}
AttributeSchema state(std::string name, std::string description) {
    return operational(str(std::move(name), std::move(description)));
}
AttributeSchema flag(std::string name, std::string description) {
    return operational(boolean(std::move(name), std::move(description), false));
}
AttributeSchema list(std::string name, std::string description) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::list;
    a.operational = true;
    a.description = std::move(description);
    return a;
}

// Attributes shared by AMQP listeners and connectors (qdrouterd's names and defaults).
void amqp_connection_attributes(std::vector<AttributeSchema>& v) {
    v.push_back(integer("maxFrameSize", "Largest AMQP frame, in bytes, this end accepts.", 16384,
                        512, UINT32_MAX));
    v.push_back(integer("maxSessions", "Largest number of sessions on one connection.", 32768, 1,
                        32768));
    v.push_back(integer("maxSessionFrames",
                        "Incoming session window, in frames (0 = no explicit limit).", 0, 0,
                        UINT32_MAX));
    v.push_back(integer("idleTimeoutSeconds",
                        "Close a connection after this long without a frame from the peer; "
                        "heartbeats are sent at half the peer's timeout. 0 disables.",
                        16, 0, 86400));
    v.push_back(integer("linkCapacity",
                        "Deliveries one link may hold in the router (credit window).", 250, 1,
                        1000000));
    v.push_back(str("saslMechanisms",
                    "Space-separated SASL mechanisms offered/used; only ANONYMOUS for now.",
                    "ANONYMOUS"));
    v.push_back(enumeration("stripAnnotations",
                            "Accepted for compatibility: Trestle adds no router annotations.",
                            {"in", "out", "both", "no"}, "both"));
    v.push_back(enumeration("socketAddressFamily", "Restrict to one address family.",
                            {"IPv4", "IPv6"}));
    v.push_back(str("openProperties", "Not supported yet."));
    v.back().supported = false;
    for (auto* n : {"sslProfile", "requireSsl", "requireEncryption", "saslUsername",
                    "saslPassword", "saslPlugin", "policyVhost", "multiTenant", "failoverUrls",
                    "messageLoggingComponents", "cost", "http", "websockets", "healthz",
                    "metrics", "httpRootDir"})
        v.push_back(unsupported(n));
    for (auto& a : v) {
        std::string_view n = a.name;
        if (n == "http" || n == "healthz" || n == "metrics" || n == "httpRootDir")
            a.instead = "use an httpListener section for /healthz, /readyz and /metrics";
        else if (n == "websockets")
            a.instead = "for MQTT over WebSocket, use mqttListener websocketPath";
    }
}

}  // namespace

const AttributeSchema* EntityTypeSchema::attribute(std::string_view name) const {
    for (const auto& a : attributes)
        if (a.name == name) return &a;
    return nullptr;
}

Schema::Schema() {
    {
        EntityTypeSchema t;
        t.short_name = "router";
        t.long_name = std::string(prefix) + "router";
        t.singleton = true;
        t.description = "The router itself: identity and global routing defaults.";
        t.attributes.push_back(str("id", "Router id: the AMQP container id, and part of "
                                         "dynamic addresses (_topo/0/<id>/...).",
                                   "Trestle"));
        t.attributes.push_back(enumeration("mode", "Only standalone routers exist in Trestle.",
                                           {"standalone", "interior", "edge"}, "standalone"));
        t.attributes.push_back(enumeration("defaultDistribution",
                                           "Distribution of addresses no address entity matches.",
                                           {"multicast", "closest", "balanced", "unavailable"},
                                           "balanced"));
        t.attributes.push_back(integer("mqttMaxQueuedMessages",
                                       "MQTT messages queued for sessions, all together; beyond "
                                       "it new ones are dropped and counted (QoS 0 first).",
                                       100000, 1, INT64_MAX));
        t.attributes.push_back(integer("workerThreads",
                                       "Accepted for compatibility; Trestle runs one event loop.",
                                       1, 1, 256));
        t.attributes.push_back(str("metadata", "Free text for operators."));
        t.attributes.push_back(state("area", "Always \"0\" (qdstat shows it)."));
        t.attributes.push_back(state("version", "Trestle's version."));
        t.attributes.push_back(stat("uptimeSeconds", "Seconds since the router started."));
        t.attributes.push_back(stat("addrCount", "Addresses the router knows."));
        t.attributes.push_back(stat("linkCount", "Links attached (AMQP links, MQTT flows, "
                                                 "Kafka bindings)."));
        t.attributes.push_back(stat("nodeCount", "Other routers: always 0 (standalone)."));
        t.attributes.push_back(stat("connectionCount", "Open connections (AMQP and MQTT)."));
        t.attributes.push_back(stat("linkRouteCount", "Configured link routes."));
        t.attributes.push_back(stat("autoLinkCount", "Always 0: Kafka routes take their place."));
        t.attributes.push_back(stat("memoryUsage", "Resident set size in bytes."));
        t.attributes.push_back(stat("presettledDeliveries", "Deliveries that arrived settled."));
        t.attributes.push_back(stat("droppedPresettledDeliveries",
                                    "Settled deliveries dropped (no consumer, slow consumer)."));
        t.attributes.push_back(stat("acceptedDeliveries", "Deliveries accepted by consumers."));
        t.attributes.push_back(stat("rejectedDeliveries", "Deliveries rejected by consumers."));
        t.attributes.push_back(stat("releasedDeliveries", "Deliveries released."));
        t.attributes.push_back(stat("modifiedDeliveries", "Deliveries modified."));
        t.attributes.push_back(stat("deliveriesDelayed1Sec",
                                    "Deliveries settled more than 1 s after arrival."));
        t.attributes.push_back(stat("deliveriesDelayed10Sec",
                                    "Deliveries settled more than 10 s after arrival."));
        t.attributes.push_back(stat("deliveriesStuck", "Deliveries unsettled for over 10 s now."));
        t.attributes.push_back(stat("deliveriesRedirectedToFallback", "Always 0 (no fallback)."));
        t.attributes.push_back(stat("linksBlocked", "Incoming links withheld credit (no "
                                                    "destination)."));
        t.attributes.push_back(stat("deliveriesIngress", "Messages from producers."));
        t.attributes.push_back(stat("deliveriesEgress", "Messages to consumers."));
        t.attributes.push_back(stat("deliveriesTransit", "Always 0 (no inter-router links)."));
        t.attributes.push_back(stat("deliveriesIngressRouteContainer",
                                    "Link-routed messages from route containers."));
        t.attributes.push_back(stat("deliveriesEgressRouteContainer",
                                    "Link-routed messages to route containers."));
        for (auto* n : {"helloIntervalSeconds", "helloMaxAgeSeconds", "raIntervalSeconds",
                        "raIntervalFluxSeconds", "remoteLsMaxAgeSeconds", "saslConfigDir",
                        "saslConfigName", "allowResumableLinkRoute", "debugDumpFile",
                        "timestampsInUTC", "timestampFormat"})
            t.attributes.push_back(unsupported(n));
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "listener";
        t.long_name = std::string(prefix) + "listener";
        t.description = "Accepts AMQP 1.0 connections.";
        listener_address(t.attributes, "Port number or service name (amqp, amqps); 0 = ephemeral "
                                       "(the chosen port is logged).", "amqp");
        t.attributes.push_back(enumeration("role", "normal, or route-container for brokers and "
                                                   "services that link routes reach.",
                                           {"normal", "route-container", "inter-router", "edge"},
                                           "normal"));
        t.attributes.push_back(boolean("authenticatePeer",
                                       "Require authenticated peers (needs SASL PLAIN/EXTERNAL, "
                                       "not available yet).",
                                       false));
        t.attributes.push_back(enumeration(
            "kafkaDialect",
            "strimzi: every link on this listener is direct Kafka topic access in the Strimzi "
            "AMQP bridge's conventions (senders to <topic>, receivers from "
            "<topic>/group.id/<group>, x-opt-bridge.* annotations, io.strimzi:* filters and "
            "errors); eventhubs: the same in Azure Event Hubs' conventions (senders to <hub> or "
            "<hub>/Partitions/<n>, receivers from <hub>/ConsumerGroups/<group>/Partitions/<n>, "
            "x-opt-offset/x-opt-enqueued-time selector filters and annotations); needs a kafka "
            "entity. none: routed as usual.",
            {"none", "strimzi", "eventhubs"}, "none"));
        t.attributes.push_back(no_default(integer(
            "maxMessageSize",
            "Largest message, in bytes, a client may send on this listener: advertised as its "
            "links' max-message-size; a larger one detaches its link with "
            "amqp:link:message-size-exceeded. Default 16777216 (16 MiB: a message is held "
            "whole in memory while it arrives), or 1048576 on a kafkaDialect eventhubs listener "
            "(Event Hubs' own limit; Azure SDKs size their batches by it). 0 = no limit.",
            0, 0, 2147483647)));
        amqp_connection_attributes(t.attributes);
        t.attributes.push_back(integer("initialHandshakeTimeoutSeconds",
                                       "Close connections that do not complete the AMQP/SASL "
                                       "header and open in time (0 = no limit).",
                                       0, 0, 86400));
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "mqttListener";
        t.long_name = "io.trestle.mqttListener";
        t.description = "Accepts MQTT 3.1.1 and 5.0 connections (and MQTT over WebSocket).";
        listener_address(t.attributes, "Port number or service name (mqtt = 1883, secure-mqtt = "
                                       "8883); 0 = ephemeral (the chosen port is logged).", "mqtt");
        t.attributes.push_back(str("protocolVersions",
                                   "Accepted protocol versions, comma-separated: 3.1.1, 5.",
                                   "3.1.1,5"));
        t.attributes.push_back(integer("maxPacketSize",
                                       "Largest packet accepted, in bytes (advertised to MQTT 5 "
                                       "clients); larger ones close the connection.",
                                       1048576, 64, 268435455));
        t.attributes.push_back(integer("maxConnections",
                                       "Connections this listener accepts at once (0 = no limit); "
                                       "beyond it CONNECT is refused (quota exceeded / server "
                                       "unavailable).",
                                       0, 0, INT32_MAX));
        t.attributes.push_back(integer("maxKeepAliveSeconds",
                                       "Upper bound for MQTT 5 keep alive (0 = the client's "
                                       "choice); announced as Server Keep Alive.",
                                       0, 0, 65535));
        t.attributes.push_back(integer("receiveMaximum",
                                       "Unacknowledged QoS 1/2 publishes a client may have "
                                       "(announced to MQTT 5 clients; more is a protocol error); "
                                       "also how many QoS 1/2 messages are sent unacknowledged "
                                       "to an MQTT 3.1.1 client.",
                                       1000, 1, 65535));
        t.attributes.push_back(integer("topicAliasMaximum",
                                       "Topic aliases an MQTT 5 client may define.", 100, 0, 65535));
        t.attributes.push_back(integer("maxSessionQueue",
                                       "Messages waiting to be sent per session (offline, or "
                                       "beyond the client's receive maximum); beyond it QoS 0 "
                                       "is dropped first, then new messages; counted and logged.",
                                       1000, 1, INT32_MAX));
        t.attributes.push_back(integer("maxSessionExpirySeconds",
                                       "Cap on session expiry; also how long MQTT 3.1.1 "
                                       "persistent sessions live offline.",
                                       4294967295LL, 0, 4294967295LL));
        t.attributes.push_back(integer("maxBufferedBytes",
                                       "Output a connection may have unsent; beyond it QoS 0 "
                                       "messages are dropped and QoS 1/2 wait in the session.",
                                       1048576, 1024, INT32_MAX));
        t.attributes.push_back(integer("connectTimeoutSeconds",
                                       "Close connections that send no CONNECT in time.", 10, 1,
                                       3600));
        t.attributes.push_back(str("websocketPath",
                                   "Also accept MQTT over WebSocket (subprotocol mqtt) at this "
                                   "HTTP path on the same port, e.g. /mqtt. Empty = off.",
                                   ""));
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "connector";
        t.long_name = std::string(prefix) + "connector";
        t.description = "Opens an AMQP connection to a peer (e.g. a broker for link routes) and "
                        "keeps reconnecting with backoff.";
        t.attributes.push_back(str("name", "Unique name; linkRoute 'connection' refers to it "
                                           "(default: host:port)."));
        t.attributes.push_back(required(str("host", "Host to connect to.")));
        t.attributes.push_back(port("Port number or service name."));
        t.attributes.push_back(enumeration("role", "normal, or route-container for link routes.",
                                           {"normal", "route-container", "inter-router", "edge"},
                                           "normal"));
        amqp_connection_attributes(t.attributes);
        t.attributes.push_back(boolean("verifyHostname", "TLS host name check (TLS not yet "
                                                         "available).",
                                       true));
        t.attributes.push_back(integer("maxReconnectDelaySeconds",
                                       "Upper bound of the reconnect backoff.", 10, 1, 3600));
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "router.config.address";
        t.long_name = std::string(prefix) + "router.config.address";
        t.description = "Distribution for addresses matching a prefix or pattern.";
        t.attributes.push_back(str("name", "Unique name (default: the prefix or pattern)."));
        t.attributes.push_back(str("prefix", "Matches the address and addresses below it "
                                             "(whole tokens, '.' or '/' separated)."));
        t.attributes.push_back(str("pattern", "Token pattern: '*' one token, '#' zero or more."));
        t.attributes.push_back(enumeration("distribution", "How messages reach consumers.",
                                           {"multicast", "closest", "balanced", "unavailable"},
                                           "balanced"));
        t.attributes.push_back(integer("priority", "Accepted for compatibility (-1 = none).", -1,
                                       -1, 9));
        for (auto* n : {"waypoint", "ingressPhase", "egressPhase", "enableFallback"})
            t.attributes.push_back(unsupported(n));
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "httpListener";
        t.long_name = "io.trestle.httpListener";
        t.description = "Serves /healthz (the process serves), /readyz (every listener up and "
                        "Kafka, if configured, answering and acknowledging; 503 with the "
                        "reasons otherwise) and /metrics (Prometheus) over HTTP/1.1.";
        listener_address(t.attributes, "Port number; 0 = ephemeral (the chosen port is logged).", "8672");
        t.attributes.push_back(integer("maxConnections",
                                       "HTTP connections open at once; beyond it new ones are "
                                       "closed.",
                                       32, 1, 10000));
        t.attributes.push_back(integer("idleTimeoutSeconds",
                                       "Close a connection that sends no complete request in "
                                       "this time.",
                                       30, 1, 3600));
        t.attributes.push_back(integer("metricsMaxAddresses",
                                       "Addresses with per-address series in /metrics (the "
                                       "busiest first); bounds the scrape of a router with "
                                       "many MQTT topics.",
                                       1000, 0, 1000000));
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "kafka";
        t.long_name = "io.trestle.kafka";
        t.singleton = true;
        t.description = "The Kafka cluster behind the router (kafkaRoutes bind addresses to its "
                        "topics).";
        t.attributes.push_back(str("name", "Name used in logs and management.", "kafka"));
        t.attributes.push_back(str("bootstrapServers",
                                   "Comma-separated host:port list, or 'embedded': librdkafka's "
                                   "mock cluster in-process on loopback (in memory, volatile; "
                                   "its address is logged).",
                                   "embedded"));
        t.attributes.push_back(integer("embeddedBrokers", "Brokers of the embedded cluster.", 1, 1,
                                       9));
        t.attributes.push_back(integer("embeddedPartitions",
                                       "Partitions of the topics created in the embedded cluster.",
                                       4, 1, 1000));
        t.attributes.push_back(map("properties",
                                   "librdkafka properties for every Kafka client of the router "
                                   "(security.protocol, sasl.*, ssl.*, ...), as a JSON object."));
        t.attributes.push_back(integer("maxInFlight",
                                       "Messages per kafkaRoute sent to Kafka and not yet "
                                       "acknowledged; producers get no credit beyond it.",
                                       10000, 1, 1000000));
        t.attributes.push_back(boolean("createTopics",
                                       "Create the routes' and state topics that do not exist.",
                                       true));
        t.attributes.push_back(str("retainedTopic", "Compacted topic of retained messages (empty: in memory only).",
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
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "kafkaRoute";
        t.long_name = "io.trestle.kafkaRoute";
        t.description = "Binds addresses to a Kafka topic: producers' messages go to the topic, "
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
        t.attributes.push_back(boolean("headers",
                                       "Map message properties to record headers and back.", true));
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
        types_.push_back(std::move(t));
    }
    {
        EntityTypeSchema t;
        t.short_name = "router.config.linkRoute";
        t.long_name = std::string(prefix) + "router.config.linkRoute";
        t.description = "Routes link attaches for matching addresses to a remote container.";
        t.attributes.push_back(str("name", "Unique name (default: prefix/pattern + direction)."));
        t.attributes.push_back(str("prefix", "Matches the address and addresses below it."));
        t.attributes.push_back(str("pattern", "Token pattern: '*' one token, '#' zero or more."));
        t.attributes.push_back(required(enumeration(
            "direction", "in = client senders, out = client receivers.", {"in", "out"})));
        t.attributes.push_back(str("connection", "Name of the connector to the container."));
        t.attributes.push_back(str("containerId", "Container id of the remote container."));
        t.attributes.push_back(str("addExternalPrefix", "Prefix added to the address sent on."));
        t.attributes.push_back(str("delExternalPrefix", "Prefix removed from the address sent "
                                                        "on."));
        t.attributes.push_back(enumeration("distribution", "Only linkBalanced.", {"linkBalanced"},
                                           "linkBalanced"));
        types_.push_back(std::move(t));
    }
    auto operational_type = [&](std::string short_name, std::string long_name,
                                std::string description) -> EntityTypeSchema& {
        EntityTypeSchema t;
        t.short_name = std::move(short_name);
        t.long_name = std::move(long_name);
        t.configurable = false;
        t.description = std::move(description);
        types_.push_back(std::move(t));
        return types_.back();
    };
    {
        auto& t = operational_type("connection", std::string(prefix) + "connection",
                                   "An open AMQP or MQTT connection. UPDATE adminStatus=deleted "
                                   "closes it.");
        t.updatable = true;
        t.attributes.push_back(state("name", "Connection name."));
        t.attributes.push_back(state("host", "The peer's address:port."));
        t.attributes.push_back(state("container", "AMQP container id, or MQTT client id."));
        t.attributes.push_back(state("role", "normal or route-container."));
        t.attributes.push_back(state("dir", "in (accepted) or out (opened by a connector)."));
        t.attributes.push_back(state("protocol", "amqp or mqtt (mqtt-ws over WebSocket)."));
        t.attributes.push_back(flag("isEncrypted", "TLS (not available yet)."));
        t.attributes.push_back(flag("isAuthenticated", "Authenticated by SASL or MQTT."));
        t.attributes.push_back(state("sasl", "SASL mechanism used."));
        t.attributes.push_back(state("user", "Authenticated user, if any."));
        t.attributes.push_back(state("sslProto", "TLS protocol (null: none)."));
        t.attributes.push_back(state("sslCipher", "TLS cipher (null: none)."));
        t.attributes.push_back(state("tenant", "Always null (no multi-tenancy)."));
        t.attributes.push_back(state("listener", "Name of the listener that accepted it."));
        t.attributes.push_back(stat("uptimeSeconds", "Seconds since it opened."));
        t.attributes.push_back(stat("lastDlvSeconds", "Seconds since its last delivery (null: none)."));
        t.attributes.push_back(stat("deliveriesIn", "Messages received from the peer."));
        t.attributes.push_back(stat("deliveriesOut", "Messages sent to the peer."));
        AttributeSchema admin = enumeration("adminStatus", "Set to deleted to close it.",
                                            {"enabled", "deleted"}, "enabled");
        admin.writable = true;
        admin.operational = true;
        t.attributes.push_back(admin);
        t.attributes.push_back(state("operStatus", "up or closing."));
    }
    {
        auto& t = operational_type("router.link", std::string(prefix) + "router.link",
                                   "A link: an AMQP link, an MQTT session's or publisher's flow, "
                                   "or a Kafka binding, as the routing core sees it.");
        t.attributes.push_back(state("name", "Link name."));
        t.attributes.push_back(state("linkName", "Link name."));
        t.attributes.push_back(state("linkType", "endpoint (or router-control/inter-router: never)."));
        t.attributes.push_back(state("linkDir", "in (messages into the router) or out."));
        t.attributes.push_back(state("owningAddr", "Address, qdrouterd-encoded (M0<address>)."));
        t.attributes.push_back(stat("capacity", "Deliveries the link may hold."));
        t.attributes.push_back(state("peer", "Link-routed: identity of the link on the other side."));
        t.attributes.push_back(stat("undeliveredCount", "Waiting for credit."));
        t.attributes.push_back(stat("unsettledCount", "Sent or held, awaiting settlement."));
        t.attributes.push_back(stat("deliveryCount", "Deliveries that crossed the link."));
        t.attributes.push_back(state("connectionId", "Identity of its connection."));
        t.attributes.push_back(state("adminStatus", "Always enabled."));
        t.attributes.push_back(state("operStatus", "up."));
        t.attributes.push_back(stat("presettledCount", "Deliveries that crossed it settled."));
        t.attributes.push_back(stat("droppedPresettledCount", "Settled deliveries dropped."));
        t.attributes.push_back(stat("acceptedCount", "Outcome counters."));
        t.attributes.push_back(stat("rejectedCount", "Outcome counters."));
        t.attributes.push_back(stat("releasedCount", "Outcome counters."));
        t.attributes.push_back(stat("modifiedCount", "Outcome counters."));
        t.attributes.push_back(stat("deliveriesDelayed1Sec", "Settled after more than 1 s."));
        t.attributes.push_back(stat("deliveriesDelayed10Sec", "Settled after more than 10 s."));
        t.attributes.push_back(stat("deliveriesStuck", "Unsettled for more than 10 s now."));
        t.attributes.push_back(stat("creditAvailable", "Credit the link has."));
        t.attributes.push_back(stat("zeroCreditSeconds", "Seconds it has had no credit."));
        t.attributes.push_back(stat("settleRate", "Not measured: 0."));
        t.attributes.push_back(stat("priority", "Always 4 (qdrouterd's default)."));
        t.attributes.push_back(list("subscriptions", "MQTT filters feeding it (subscribers)."));
    }
    {
        auto& t = operational_type("router.address", std::string(prefix) + "router.address",
                                   "An address the router knows, with its consumers and counters.");
        t.attributes.push_back(state("name", "Address, qdrouterd-encoded (M0<address>)."));
        t.attributes.push_back(state("key", "The same as name."));
        t.attributes.push_back(state("distribution", "closest, balanced, multicast, unavailable."));
        t.attributes.push_back(flag("inProcess", "Served inside the router ($management)."));
        t.attributes.push_back(stat("subscriberCount", "Local consumers (links and matching "
                                                       "MQTT subscriptions)."));
        t.attributes.push_back(stat("remoteCount", "Always 0 (standalone)."));
        t.attributes.push_back(stat("containerCount", "Link-route containers: 0."));
        t.attributes.push_back(stat("remoteHostRouters", "Always 0."));
        t.attributes.push_back(stat("deliveriesIngress", "Messages from local producers."));
        t.attributes.push_back(stat("deliveriesEgress", "Messages to local consumers."));
        t.attributes.push_back(stat("deliveriesTransit", "Always 0."));
        t.attributes.push_back(stat("deliveriesToContainer", "Link-routed to a container."));
        t.attributes.push_back(stat("deliveriesFromContainer", "Link-routed from a container."));
        t.attributes.push_back(stat("deliveriesRedirectedToFallback", "Always 0."));
        t.attributes.push_back(stat("priority", "-1: none."));
        t.attributes.push_back(flag("waypoint", "Bound to Kafka."));
    }
    {
        auto& t = operational_type("log", std::string(prefix) + "log",
                                   "Log levels per module; UPDATE enable changes one at runtime.");
        t.updatable = true;
        t.attributes.push_back(state("module", "DEFAULT, ROUTER, AMQP, MQTT, KAFKA, MANAGEMENT, "
                                               "HTTP."));
        AttributeSchema en = str("enable", "Lowest level logged, qdrouterd style: trace+, "
                                           "debug+, info+, notice+, warning+, error+, critical+, "
                                           "none (also plain spdlog level names).");
        en.writable = true;
        en.operational = true;
        t.attributes.push_back(en);
        t.attributes.push_back(flag("includeTimestamp", "Always true."));
        t.attributes.push_back(flag("includeSource", "Always false."));
        t.attributes.push_back(state("outputFile", "stderr."));
    }
    {
        auto& t = operational_type("allocator", std::string(prefix) + "allocator",
                                   "Memory held by the router's own pools and tables (qdstat -m).");
        t.attributes.push_back(state("typeName", "What is counted."));
        t.attributes.push_back(stat("typeSize", "Bytes per object."));
        t.attributes.push_back(stat("transferBatchSize", "Always 0 (no per-thread batches)."));
        t.attributes.push_back(stat("localFreeListMax", "Always 0."));
        t.attributes.push_back(stat("globalFreeListMax", "Always 0."));
        t.attributes.push_back(stat("totalAllocFromHeap", "Objects allocated (live + pooled)."));
        t.attributes.push_back(stat("totalFreeToHeap", "Objects returned: 0 (pools keep them)."));
        t.attributes.push_back(stat("heldByThreads", "Objects in use."));
        t.attributes.push_back(stat("batchesRebalancedToThreads", "Always 0."));
        t.attributes.push_back(stat("batchesRebalancedToGlobal", "Always 0."));
    }
    {
        auto& t = operational_type("mqttSession", "io.trestle.mqttSession",
                                   "An MQTT session, connected or kept for a persistent client. "
                                   "DELETE ends it (its connection is closed).");
        t.creatable = false;
        t.deletable = true;
        t.attributes.push_back(state("clientId", "MQTT client id."));
        t.attributes.push_back(flag("connected", "A connection is using it."));
        t.attributes.push_back(state("protocolVersion", "3.1.1 or 5."));
        t.attributes.push_back(state("host", "The connection's peer address (null: offline)."));
        t.attributes.push_back(stat("expiryIntervalSeconds", "Session expiry."));
        t.attributes.push_back(list("subscriptions", "Topic filters with their QoS."));
        t.attributes.push_back(stat("queued", "Messages waiting to be sent."));
        t.attributes.push_back(stat("inflight", "QoS 1/2 messages sent, not yet acknowledged."));
        t.attributes.push_back(stat("dropped", "Messages dropped for this session (queue full)."));
    }
    {
        auto& t = operational_type("retained", "io.trestle.retained",
                                   "Retained messages, one per topic (MQTT, and AMQP with "
                                   "x-opt-retain-message).");
        t.attributes.push_back(state("topic", "Address / topic."));
        t.attributes.push_back(stat("qos", "QoS it was published with."));
        t.attributes.push_back(stat("size", "Payload bytes (encoded message for AMQP ones)."));
        t.attributes.push_back(state("format", "mqtt or amqp: the form it is stored in."));
        t.attributes.push_back(stat("expiresInSeconds", "Seconds left (null: never)."));
    }
    // Trestle's operational additions to configured types.
    for (auto& t : types_) {
        if (t.short_name == "listener" || t.short_name == "mqttListener" ||
            t.short_name == "connector") {
            t.creatable = true;
            t.attributes.push_back(state("operStatus", "up, or down (with lastError)."));
            t.attributes.push_back(state("lastError", "Why it is down."));
        }
        if (t.short_name == "httpListener") {
            t.attributes.push_back(state("operStatus", "up, or down (with lastError)."));
            t.attributes.push_back(state("lastError", "Why it is down."));
        }
        if (t.short_name == "listener" || t.short_name == "mqttListener" ||
            t.short_name == "httpListener") {
            t.attributes.push_back(stat("boundPort", "The port it listens on (port 0: the one "
                                                     "chosen)."));
            t.attributes.push_back(stat("connectionCount", "Connections it accepted, still open."));
        }
        if (t.short_name == "router.config.address" || t.short_name == "router.config.linkRoute" ||
            t.short_name == "kafkaRoute")
            t.creatable = true;
        if (t.short_name == "router.config.linkRoute")
            t.attributes.push_back(state("operStatus", "active (container connected) or inactive."));
        if (t.short_name == "kafka") {
            t.attributes.push_back(state("bootstrap", "The broker list in use (the embedded "
                                                      "cluster's address: for kcat)."));
            t.attributes.push_back(state("operStatus", "up, or down while no broker answers or "
                                                       "acknowledges (same as /readyz)."));
            t.attributes.push_back(state("lastError", "Why it is down."));
            t.attributes.push_back(stat("retainedCount", "Retained messages held."));
        }
        if (t.short_name == "kafkaRoute") {
            t.attributes.push_back(stat("produced", "Records Kafka acknowledged."));
            t.attributes.push_back(stat("produceFailed", "Records Kafka refused (rejected back)."));
            t.attributes.push_back(stat("inFlight", "Records produced, not yet acknowledged."));
            t.attributes.push_back(stat("consumed", "Records routed to consumers."));
            t.attributes.push_back(stat("deadLettered", "Records sent to the dead-letter topic."));
            t.attributes.push_back(stat("redelivered", "Records sent again after a release."));
            t.attributes.push_back(list("partitions",
                                        "Consumer partitions: [partition, committed offset, "
                                        "position, high watermark, lag] each."));
            t.attributes.push_back(stat("lag", "Records not yet settled by consumers, all "
                                               "partitions (null: not known yet)."));
        }
    }
    // Every type: name, identity and type first (qdrouterd's entity base type).
    for (auto& t : types_) {
        std::vector<AttributeSchema> head;
        if (!t.attribute("name")) head.push_back(state("name", "Unique name."));
        head.push_back(state("identity", "Unique, fixed for the entity's life."));
        head.push_back(state("type", "The entity type's long name."));
        for (auto& a : t.attributes) head.push_back(std::move(a));
        t.attributes = std::move(head);
        // name first, as qdrouterd lists it
        auto it = std::find_if(t.attributes.begin(), t.attributes.end(),
                               [](const AttributeSchema& a) { return a.name == "name"; });
        std::rotate(t.attributes.begin(), it, it + 1);
    }
}

std::vector<std::string> EntityTypeSchema::operations() const {
    std::vector<std::string> ops;
    if (creatable) ops.push_back("CREATE");
    if (updatable) ops.push_back("UPDATE");
    if (creatable || deletable) ops.push_back("DELETE");
    ops.push_back("READ");
    return ops;
}

std::string_view to_string(AttrType t) {
    switch (t) {
        case AttrType::string: return "string";
        case AttrType::integer: return "integer";
        case AttrType::boolean: return "boolean";
        case AttrType::enumeration: return "enumeration";
        case AttrType::port: return "string";
        case AttrType::map: return "map";
        case AttrType::list: return "list";
    }
    return "string";
}

const Schema& Schema::instance() {
    static const Schema s;
    return s;
}

const EntityTypeSchema* Schema::find(std::string_view name) const {
    std::string n(name);
    if (n == "address" || n == "linkRoute" || n == "autoLink") n = "router.config." + n;
    if (n.rfind(prefix, 0) == 0) n = n.substr(std::string_view(prefix).size());
    if (n.rfind("io.trestle.", 0) == 0) n = n.substr(11);
    if (n == "link" || n == "node") n = "router." + n;
    for (const auto& t : types_)
        if (t.short_name == n) return &t;
    return nullptr;
}

std::string camel_case(std::string_view name) {
    std::string out;
    bool up = false;
    for (char c : name) {
        if (c == '-') {
            up = true;
            continue;
        }
        out += up ? static_cast<char>(toupper(static_cast<unsigned char>(c))) : c;
        up = false;
    }
    return out;
}

static std::optional<int64_t> to_int(std::string_view s) {
    int64_t v;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string coerce(const AttributeSchema& a, const json::Value& raw, json::Value& out) {
    out = json::Value();
    out.line = raw.line;
    switch (a.type) {
        case AttrType::string:
            if (raw.is_string()) {
                out = raw;
                return {};
            }
            if (raw.is_int()) {
                out = json::Value(std::to_string(raw.as_int()));
                out.line = raw.line;
                return {};
            }
            return "expected a string";
        case AttrType::integer: {
            int64_t v;
            if (raw.is_int()) {
                v = raw.as_int();
            } else if (raw.is_string()) {
                auto i = to_int(raw.as_string());
                if (!i) return "'" + raw.as_string() + "' is not an integer";
                v = *i;
            } else {
                return "expected an integer";
            }
            if (v < a.min || v > a.max)
                return std::to_string(v) + " is out of range [" + std::to_string(a.min) + ", " +
                       std::to_string(a.max) + "]";
            out = json::Value(v);
            out.line = raw.line;
            return {};
        }
        case AttrType::boolean: {
            if (raw.is_bool()) {
                out = raw;
                return {};
            }
            if (raw.is_string()) {
                const std::string& s = raw.as_string();
                if (s == "yes" || s == "true" || s == "True" || s == "1") {
                    out = json::Value(true);
                } else if (s == "no" || s == "false" || s == "False" || s == "0") {
                    out = json::Value(false);
                } else {
                    return "'" + s + "' is not a boolean (yes/no/true/false)";
                }
                out.line = raw.line;
                return {};
            }
            return "expected a boolean";
        }
        case AttrType::enumeration: {
            if (!raw.is_string()) return "expected one of its values as a string";
            for (const auto& v : a.values)
                if (v == raw.as_string()) {
                    out = raw;
                    return {};
                }
            std::string all;
            for (const auto& v : a.values) all += (all.empty() ? "" : ", ") + v;
            return "'" + raw.as_string() + "' is not one of: " + all;
        }
        case AttrType::port: {
            std::string s = raw.is_int() ? std::to_string(raw.as_int())
                                         : (raw.is_string() ? raw.as_string() : "");
            if (s == "amqp") s = "5672";
            if (s == "amqps") s = "5671";
            if (s == "mqtt") s = "1883";
            if (s == "secure-mqtt") s = "8883";
            auto i = to_int(s);
            if (!i || *i < 0 || *i > 65535)
                return "'" + s + "' is not a port number or a known service (amqp, amqps, mqtt)";
            out = json::Value(*i);
            out.line = raw.line;
            return {};
        }
        case AttrType::map: {
            json::Value v = raw;
            if (raw.is_string()) {
                json::ParseError perr;
                if (!json::parse(raw.as_string(), v, perr) || !v.is_object())
                    return "expected a JSON object of string values, e.g. {\"acks\": \"all\"}";
            }
            if (!v.is_object()) return "expected an object of string values";
            json::Object o;
            for (const auto& [k, val] : v.as_object()) {
                if (val.is_string())
                    o.emplace_back(k, val);
                else if (val.is_int())
                    o.emplace_back(k, json::Value(std::to_string(val.as_int())));
                else if (val.is_bool())
                    o.emplace_back(k, json::Value(std::string(val.as_bool() ? "true" : "false")));
                else
                    return "'" + k + "' must be a string, number or boolean";
            }
            out = json::Value(std::move(o));
            out.line = raw.line;
            return {};
        }
        case AttrType::list:
            if (!raw.is_array()) return "expected a list";
            out = raw;
            return {};
    }
    return "unknown attribute type";
}

}  // namespace trestle::management

namespace trestle::management {

namespace {

std::string cell_text(std::string s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
}

std::string default_text(const AttributeSchema& a) {
    const json::Value& v = a.default_value;
    if (v.is_null()) return "";
    if (v.is_string()) return v.as_string().empty() ? "\"\"" : "`" + v.as_string() + "`";
    return "`" + json::dump(v) + "`";
}

}  // namespace

std::string reference_markdown() {
    std::string out;
    const auto& types = Schema::instance().types();
    out += "Configuration sections (and management entity types that are also configuration). "
           "*runtime*: CREATE/DELETE through management take effect at once; *writable*: "
           "UPDATE changes it at runtime. What the router reports (state, counters) is read "
           "through management; a config file may not set it.\n";
    for (int pass = 0; pass < 2; ++pass) {
        out += pass == 0 ? "\n#### Configuration\n" : "\n#### Reported only (management)\n";
        for (const auto& t : types) {
            if (t.configurable != (pass == 0)) continue;
            out += "\n**`" + t.short_name + "`** (`" + t.long_name + "`";
            if (t.creatable) out += ", runtime";
            if (t.deletable) out += ", DELETE at runtime";
            if (t.singleton) out += ", at most one";
            out += "): " + t.description + "\n\n";
            out += "| attribute | type | default | description |\n|---|---|---|---|\n";
            std::vector<std::string> refused, reported;
            for (const auto& a : t.attributes) {
                if (a.name == "identity" || a.name == "type") continue;
                if (!a.supported) {
                    refused.push_back("`" + a.name + "`");
                    continue;
                }
                if (a.operational && pass == 0 && !a.writable) {
                    reported.push_back("`" + a.name + "`");
                    continue;
                }
                std::string type(to_string(a.type));
                if (a.type == AttrType::enumeration) {
                    type.clear();
                    for (const auto& v : a.values) type += (type.empty() ? "" : " | ") + v;
                }
                if (a.type == AttrType::integer && a.min != INT64_MIN && a.max != INT64_MAX)
                    type += " " + std::to_string(a.min) + "–" + std::to_string(a.max);
                std::string flags;
                if (a.required) flags += "*required*. ";
                if (a.writable) flags += "*writable*. ";
                out += "| `" + a.name + "` | " + cell_text(type) + " | " + cell_text(default_text(a)) +
                       " | " + flags + cell_text(a.description) + " |\n";
            }
            if (!reported.empty()) {
                out += "\nAlso reported through management: ";
                for (size_t i = 0; i < reported.size(); ++i) out += (i ? ", " : "") + reported[i];
                out += " (GET-SCHEMA describes each).\n";
            }
            if (!refused.empty()) {
                out += "\nKnown from qdrouterd, refused as not implemented: ";
                for (size_t i = 0; i < refused.size(); ++i) out += (i ? ", " : "") + refused[i];
                out += ".\n";
            }
        }
    }
    return out;
}

}  // namespace trestle::management
