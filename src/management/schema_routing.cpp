// The router entity and the routing rules: address (distribution, waypoints) and linkRoute.
#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

void add_router(Types& types) {
    EntityTypeSchema t;
    t.short_name = "router";
    t.long_name = std::string(prefix) + "router";
    t.singleton = true;
    t.description = "The router itself: identity and global routing defaults.";
    t.attributes.push_back(str("id",
                               "Router id: the AMQP container id, and part of "
                               "dynamic addresses (_topo/0/<id>/...).",
                               "Trestle"));
    t.attributes.push_back(enumeration("mode", "Only standalone routers exist in Trestle.",
                                       {"standalone", "interior", "edge"}, "standalone"));
    t.attributes.push_back(
        enumeration("defaultDistribution", "Distribution of addresses no address entity matches.",
                    {"multicast", "closest", "balanced", "unavailable"}, "balanced"));
    t.attributes.push_back(integer("mqttMaxQueuedMessages",
                                   "MQTT messages queued for sessions, all together; beyond "
                                   "it new ones are dropped and counted (QoS 0 first).",
                                   100000, 1, INT64_MAX));
    t.attributes.push_back(integer(
        "workerThreads", "Accepted for compatibility; Trestle runs one event loop.", 1, 1, 256));
    t.attributes.push_back(str("metadata", "Free text for operators."));
    t.attributes.push_back(state("area", "Always \"0\" (qdstat shows it)."));
    t.attributes.push_back(state("version", "Trestle's version."));
    t.attributes.push_back(stat("uptimeSeconds", "Seconds since the router started."));
    t.attributes.push_back(stat("addrCount", "Addresses the router knows."));
    t.attributes.push_back(stat("linkCount",
                                "Links attached (AMQP links, MQTT flows, "
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
    t.attributes.push_back(
        stat("deliveriesDelayed1Sec", "Deliveries settled more than 1 s after arrival."));
    t.attributes.push_back(
        stat("deliveriesDelayed10Sec", "Deliveries settled more than 10 s after arrival."));
    t.attributes.push_back(stat("deliveriesStuck", "Deliveries unsettled for over 10 s now."));
    t.attributes.push_back(stat("deliveriesRedirectedToFallback", "Always 0 (no fallback)."));
    t.attributes.push_back(stat("linksBlocked",
                                "Incoming links withheld credit (no "
                                "destination)."));
    t.attributes.push_back(stat("deliveriesIngress", "Messages from producers."));
    t.attributes.push_back(stat("deliveriesEgress", "Messages to consumers."));
    t.attributes.push_back(stat("deliveriesTransit", "Always 0 (no inter-router links)."));
    t.attributes.push_back(
        stat("deliveriesIngressRouteContainer", "Link-routed messages from route containers."));
    t.attributes.push_back(
        stat("deliveriesEgressRouteContainer", "Link-routed messages to route containers."));
    for (auto* n :
         {"helloIntervalSeconds", "helloMaxAgeSeconds", "raIntervalSeconds",
          "raIntervalFluxSeconds", "remoteLsMaxAgeSeconds", "saslConfigDir", "saslConfigName",
          "allowResumableLinkRoute", "debugDumpFile", "timestampsInUTC", "timestampFormat"})
        t.attributes.push_back(unsupported(n));
    types.push_back(std::move(t));
}

void add_address(Types& types) {
    EntityTypeSchema t;
    t.short_name = "router.config.address";
    t.long_name = std::string(prefix) + "router.config.address";
    t.description = "Distribution for addresses matching a prefix or pattern.";
    t.attributes.push_back(str("name", "Unique name (default: the prefix or pattern)."));
    t.attributes.push_back(str("prefix",
                               "Matches the address and addresses below it "
                               "(whole tokens, '.' or '/' separated)."));
    t.attributes.push_back(str("pattern", "Token pattern: '*' one token, '#' zero or more."));
    t.attributes.push_back(enumeration("distribution", "How messages reach consumers.",
                                       {"multicast", "closest", "balanced", "unavailable"},
                                       "balanced"));
    t.attributes.push_back(
        integer("priority", "Accepted for compatibility (-1 = none).", -1, -1, 9));
    for (auto* n : {"waypoint", "ingressPhase", "egressPhase", "enableFallback"})
        t.attributes.push_back(unsupported(n));
    types.push_back(std::move(t));
}

void add_link_route(Types& types) {
    EntityTypeSchema t;
    t.short_name = "router.config.linkRoute";
    t.long_name = std::string(prefix) + "router.config.linkRoute";
    t.description = "Routes link attaches for matching addresses to a remote container.";
    t.attributes.push_back(str("name", "Unique name (default: prefix/pattern + direction)."));
    t.attributes.push_back(str("prefix", "Matches the address and addresses below it."));
    t.attributes.push_back(str("pattern", "Token pattern: '*' one token, '#' zero or more."));
    t.attributes.push_back(required(
        enumeration("direction", "in = client senders, out = client receivers.", {"in", "out"})));
    t.attributes.push_back(str("connection", "Name of the connector to the container."));
    t.attributes.push_back(str("containerId", "Container id of the remote container."));
    t.attributes.push_back(str("addExternalPrefix", "Prefix added to the address sent on."));
    t.attributes.push_back(str("delExternalPrefix",
                               "Prefix removed from the address sent "
                               "on."));
    t.attributes.push_back(
        enumeration("distribution", "Only linkBalanced.", {"linkBalanced"}, "linkBalanced"));
    types.push_back(std::move(t));
}

}  // namespace trestle::management::schema
