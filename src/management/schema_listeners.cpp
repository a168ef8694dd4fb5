// Listeners and connectors: AMQP listener and connector, mqttListener, httpListener.
#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

void add_listener(Types& types) {
    EntityTypeSchema t;
    t.short_name = "listener";
    t.long_name = std::string(prefix) + "listener";
    t.description = "Accepts AMQP 1.0 connections.";
    listener_address(t.attributes,
                     "Port number or service name (amqp, amqps); 0 = ephemeral "
                     "(the chosen port is logged).",
                     "amqp");
    t.attributes.push_back(enumeration("role",
                                       "normal, or route-container for brokers and "
                                       "services that link routes reach.",
                                       {"normal", "route-container", "inter-router", "edge"},
                                       "normal"));
    t.attributes.push_back(boolean("authenticatePeer",
                                   "Require authenticated peers: no ANONYMOUS, and no clients "
                                   "without a SASL layer.",
                                   false));
    t.attributes.push_back(no_default(str("userStore",
                                          "The userStore for PLAIN and SCRAM (default: the only "
                                          "one configured).")));
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
    types.push_back(std::move(t));
}

void add_mqtt_listener(Types& types) {
    EntityTypeSchema t;
    t.short_name = "mqttListener";
    t.long_name = "io.trestle.mqttListener";
    t.description = "Accepts MQTT 3.1.1 and 5.0 connections (and MQTT over WebSocket).";
    listener_address(t.attributes,
                     "Port number or service name (mqtt = 1883, secure-mqtt = "
                     "8883); 0 = ephemeral (the chosen port is logged).",
                     "mqtt");
    t.attributes.push_back(str(
        "protocolVersions", "Accepted protocol versions, comma-separated: 3.1.1, 5.", "3.1.1,5"));
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
    t.attributes.push_back(
        integer("topicAliasMaximum", "Topic aliases an MQTT 5 client may define.", 100, 0, 65535));
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
                                   "Close connections that send no CONNECT in time.", 10, 1, 3600));
    t.attributes.push_back(str("sslProfile",
                               "MQTT over TLS (and WebSocket over TLS) with the named "
                               "sslProfile; every connection on the port is TLS."));
    t.attributes.push_back(no_default(str("userStore",
                                          "The userStore that checks CONNECT's user name and "
                                          "password (default: the only one configured).")));
    t.attributes.push_back(str("policyVhost",
                               "The policy vhost of its connections (default: policy "
                               "defaultVhost). MQTT has no hostname to choose one."));
    t.attributes.push_back(no_default(boolean("allowAnonymous",
                                              "Accept clients without credentials. Default: yes "
                                              "when no userStore is configured, else no.",
                                              true)));
    t.attributes.push_back(boolean("requireCertificate",
                                   "With an sslProfile that has a caCertFile: clients must "
                                   "present a certificate it signed (mosquitto's "
                                   "require_certificate).",
                                   false));
    t.attributes.push_back(boolean("useIdentityAsUsername",
                                   "With requireCertificate: the certificate's identity (the "
                                   "sslProfile's uidFormat, default its common name) is the "
                                   "user; CONNECT's user name and password are not needed "
                                   "(mosquitto's use_identity_as_username).",
                                   false));
    t.attributes.push_back(str("websocketPath",
                               "Also accept MQTT over WebSocket (subprotocol mqtt) at this "
                               "HTTP path on the same port, e.g. /mqtt. Empty = off.",
                               ""));
    types.push_back(std::move(t));
}

void add_connector(Types& types) {
    EntityTypeSchema t;
    t.short_name = "connector";
    t.long_name = std::string(prefix) + "connector";
    t.description =
        "Opens an AMQP connection to a peer (e.g. a broker for link routes) and "
        "keeps reconnecting with backoff.";
    t.attributes.push_back(str("name",
                               "Unique name; linkRoute 'connection' refers to it "
                               "(default: host:port)."));
    t.attributes.push_back(required(str("host", "Host to connect to.")));
    t.attributes.push_back(port("Port number or service name."));
    t.attributes.push_back(enumeration("role", "normal, or route-container for link routes.",
                                       {"normal", "route-container", "inter-router", "edge"},
                                       "normal"));
    amqp_connection_attributes(t.attributes);
    t.attributes.push_back(boolean("verifyHostname",
                                   "With an sslProfile: the peer's certificate must name the "
                                   "host connected to.",
                                   true));
    t.attributes.push_back(str("saslUsername", "User name for SASL PLAIN or SCRAM."));
    t.attributes.push_back(secret("saslPassword", "Password for SASL PLAIN or SCRAM."));
    t.attributes.push_back(
        integer("maxReconnectDelaySeconds", "Upper bound of the reconnect backoff.", 10, 1, 3600));
    types.push_back(std::move(t));
}

void add_http_listener(Types& types) {
    EntityTypeSchema t;
    t.short_name = "httpListener";
    t.long_name = "io.trestle.httpListener";
    t.description =
        "Serves /healthz (the process serves), /readyz (every listener up and "
        "Kafka, if configured, answering and acknowledging; 503 with the "
        "reasons otherwise) and /metrics (Prometheus) over HTTP/1.1.";
    listener_address(t.attributes, "Port number; 0 = ephemeral (the chosen port is logged).",
                     "8672");
    t.attributes.push_back(integer("maxConnections",
                                   "HTTP connections open at once; beyond it new ones are "
                                   "closed.",
                                   32, 1, 10000));
    t.attributes.push_back(integer("idleTimeoutSeconds",
                                   "Close a connection that sends no complete request in "
                                   "this time.",
                                   30, 1, 3600));
    t.attributes.push_back(str("sslProfile",
                               "HTTPS with the named sslProfile: every connection on the port "
                               "is TLS."));
    t.attributes.push_back(boolean("authenticatePeer",
                                   "/metrics (every path but /healthz, /livez and /readyz, "
                                   "which stay open for probes) needs HTTP basic auth from the "
                                   "userStore.",
                                   false));
    t.attributes.push_back(str("userStore",
                               "The userStore basic auth checks (default: the only one "
                               "configured)."));
    t.attributes.push_back(boolean("allowInsecureAuthentication",
                                   "Allow basic auth, which sends the password, without TLS.",
                                   false));
    t.attributes.push_back(integer("metricsMaxAddresses",
                                   "Addresses with per-address series in /metrics (the "
                                   "busiest first); bounds the scrape of a router with "
                                   "many MQTT topics.",
                                   1000, 0, 1000000));
    types.push_back(std::move(t));
}

}  // namespace trestle::management::schema
