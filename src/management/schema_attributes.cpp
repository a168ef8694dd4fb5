#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

AttributeSchema str(std::string name, std::string description, json::Value def) {
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
                            std::vector<std::string> values, json::Value def) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = AttrType::enumeration;
    a.values = std::move(values);
    a.default_value = std::move(def);
    a.description = std::move(description);
    return a;
}

AttributeSchema secret(std::string name, std::string description) {
    AttributeSchema a = str(std::move(name), std::move(description) +
                                                 " Forms: env:VARIABLE, file:PATH (its first "
                                                 "line), pass:TEXT or TEXT; shown as ***.");
    a.secret = true;
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

// What every listener starts with: name, host and port.
void listener_address(std::vector<AttributeSchema>& v, std::string port_description,
                      const char* def) {
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
    v.push_back(
        integer("maxSessions", "Largest number of sessions on one connection.", 32768, 1, 32768));
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
    v.push_back(no_default(
        str("saslMechanisms",
            "Space-separated SASL mechanisms, in order of preference: ANONYMOUS, PLAIN, "
            "SCRAM-SHA-256, SCRAM-SHA-512, EXTERNAL. A listener offers those the connection can "
            "use (PLAIN only over TLS unless allowInsecureAuthentication; EXTERNAL only with a "
            "client certificate; ANONYMOUS not with authenticatePeer). Default: ANONYMOUS, or "
            "with a userStore (listeners) or saslUsername (connectors) SCRAM-SHA-512 SCRAM-SHA-256 "
            "PLAIN (and ANONYMOUS on listeners without authenticatePeer).")));
    v.push_back(str("sslProfile", "TLS with the named sslProfile."));
    v.push_back(no_default(boolean("requireSsl",
                                   "With an sslProfile: refuse plaintext connections. Default "
                                   "yes (qdrouterd's is no: a listener with a profile also took "
                                   "plaintext); no = TLS and plaintext on the same port.",
                                   true)));
    v.push_back(no_default(boolean("requireEncryption", "The same as requireSsl.", true)));
    v.push_back(boolean("allowInsecureAuthentication",
                        "Allow SASL PLAIN, which sends the password, without TLS.", false));
    v.push_back(enumeration("stripAnnotations",
                            "Accepted for compatibility: Trestle adds no router annotations.",
                            {"in", "out", "both", "no"}, "both"));
    v.push_back(
        enumeration("socketAddressFamily", "Restrict to one address family.", {"IPv4", "IPv6"}));
    v.push_back(str("policyVhost",
                    "Listeners: the policy vhost of its connections, whatever hostname they "
                    "open with (default: the open hostname, else policy defaultVhost)."));
    v.push_back(str("openProperties", "Not supported yet."));
    v.back().supported = false;
    for (auto* n : {"saslPlugin", "multiTenant", "failoverUrls", "messageLoggingComponents", "cost",
                    "http", "websockets", "healthz", "metrics", "httpRootDir"})
        v.push_back(unsupported(n));
    for (auto& a : v) {
        std::string_view n = a.name;
        if (n == "http" || n == "healthz" || n == "metrics" || n == "httpRootDir")
            a.instead = "use an httpListener section for /healthz, /readyz and /metrics";
        else if (n == "websockets")
            a.instead = "for MQTT over WebSocket, use mqttListener websocketPath";
    }
}

}  // namespace trestle::management::schema
