// Operational entity types: what the router reports and management reads, never configured.
#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

void add_operational(Types& types) {
    auto operational_type = [&](std::string short_name, std::string long_name,
                                std::string description) -> EntityTypeSchema& {
        EntityTypeSchema t;
        t.short_name = std::move(short_name);
        t.long_name = std::move(long_name);
        t.configurable = false;
        t.description = std::move(description);
        types.push_back(std::move(t));
        return types.back();
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
        t.attributes.push_back(flag("isEncrypted", "TLS."));
        t.attributes.push_back(flag("isAuthenticated", "Authenticated by SASL or MQTT."));
        t.attributes.push_back(state("sasl", "SASL mechanism used."));
        t.attributes.push_back(state("user", "Authenticated user, if any."));
        t.attributes.push_back(state("sslProto", "TLS protocol (null: none)."));
        t.attributes.push_back(state("sslCipher", "TLS cipher (null: none)."));
        t.attributes.push_back(stat("sslSsf", "The TLS cipher's key bits (0: no TLS)."));
        t.attributes.push_back(state("tenant", "Always null (no multi-tenancy)."));
        t.attributes.push_back(state("listener", "Name of the listener that accepted it."));
        t.attributes.push_back(stat("uptimeSeconds", "Seconds since it opened."));
        t.attributes.push_back(
            stat("lastDlvSeconds", "Seconds since its last delivery (null: none)."));
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
        t.attributes.push_back(
            state("linkType", "endpoint (or router-control/inter-router: never)."));
        t.attributes.push_back(state("linkDir", "in (messages into the router) or out."));
        t.attributes.push_back(state("owningAddr", "Address, qdrouterd-encoded (M0<address>)."));
        t.attributes.push_back(stat("capacity", "Deliveries the link may hold."));
        t.attributes.push_back(
            state("peer", "Link-routed: identity of the link on the other side."));
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
        t.attributes.push_back(stat("subscriberCount",
                                    "Local consumers (links and matching "
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
        t.attributes.push_back(state("module",
                                     "DEFAULT, ROUTER, AMQP, MQTT, KAFKA, MANAGEMENT, "
                                     "HTTP."));
        AttributeSchema en = str("enable",
                                 "Lowest level logged, qdrouterd style: trace+, "
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
}

}  // namespace trestle::management::schema
