// Security: sslProfile (qdrouterd's attributes) and userStore (docs/security.md).
#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

void add_ssl_profile(Types& types) {
    EntityTypeSchema t;
    t.short_name = "sslProfile";
    t.long_name = std::string(prefix) + "sslProfile";
    t.description =
        "Certificates and TLS settings, named by listener, connector, mqttListener and "
        "httpListener sslProfile attributes. Files are reloaded when they change on disk "
        "(checked at most once a second, as connections arrive): new connections use the "
        "new certificate, existing ones go on.";
    t.attributes.push_back(required(str("name", "Unique name that listeners refer to.")));
    t.attributes.push_back(
        str("certFile", "PEM certificate (chain) presented to peers; needed to listen."));
    t.attributes.push_back(str("privateKeyFile", "PEM private key of certFile."));
    t.attributes.push_back(secret("password", "Passphrase of an encrypted privateKeyFile."));
    t.attributes.push_back(str("caCertFile",
                               "PEM CA certificates that peers' certificates must chain to: "
                               "client certificates on listeners; servers on connectors "
                               "(default there: the system's CAs)."));
    t.attributes.push_back(str("ciphers", "OpenSSL cipher list for TLS 1.2 (empty: OpenSSL's)."));
    t.attributes.push_back(str("protocols",
                               "Space-separated TLS versions allowed: TLSv1, TLSv1.1, TLSv1.2, "
                               "TLSv1.3 (Debian's OpenSSL refuses the first two anyway).",
                               "TLSv1.2 TLSv1.3"));
    t.attributes.push_back(str("uidFormat",
                               "Client certificate fields that form its user id (SASL EXTERNAL, "
                               "useIdentityAsUsername), joined with ';': c country, s state, "
                               "l locality, o organization, u unit, n common name, 1/2/5 "
                               "SHA-1/256/512 fingerprint. Empty: EXTERNAL uses the whole "
                               "subject, MQTT the common name."));
    t.attributes.push_back(unsupported("uidNameMappingFile"));
    types.push_back(std::move(t));
}

void add_user_store(Types& types) {
    EntityTypeSchema t;
    t.short_name = "userStore";
    t.long_name = "io.trestle.userStore";
    t.description =
        "Users and salted password hashes, one user:hash per line, written by "
        "trestle-passwd; mosquitto_passwd files are read as they are. Checks AMQP SASL "
        "PLAIN/SCRAM and MQTT CONNECT credentials; reloaded when the file changes.";
    t.attributes.push_back(required(str("name", "Unique name that listeners refer to.")));
    t.attributes.push_back(required(str("passwordFile", "Path of the password file.")));
    types.push_back(std::move(t));
}

}  // namespace trestle::management::schema

namespace trestle::management::schema {

void add_policy(Types& types) {
    EntityTypeSchema t;
    t.short_name = "policy";
    t.long_name = std::string(prefix) + "policy";
    t.singleton = true;
    t.description =
        "Connection limits and, with enableVhostPolicy, authorization by vhost "
        "(docs/security.md, \"Policy\"). Without a policy section nothing is checked.";
    t.attributes.push_back(integer("maxConnections",
                                   "Concurrent user connections (AMQP and MQTT) the router takes.",
                                   65535, 0, UINT32_MAX));
    t.attributes.push_back(integer("maxMessageSize",
                                   "Largest message in bytes, unless a vhost or group says "
                                   "otherwise (0: the listener's limit only).",
                                   0, 0, INT64_MAX));
    t.attributes.push_back(boolean("enableVhostPolicy",
                                   "Admit only users a vhost's group names, and apply the "
                                   "group's rules to every attach, subscription and publish.",
                                   false));
    t.attributes.push_back(
        str("defaultVhost",
            "Vhost for connections whose vhost has none (AMQP open hostname, or the listener's "
            "policyVhost; MQTT: the listener's policyVhost). Empty: no fallback.",
            "$default"));
    t.attributes.push_back(boolean("enableVhostNamePatterns", "Must stay false.", false));
    t.attributes.push_back(unsupported("policyDir"));
    t.attributes.back().instead = "write vhost sections in the config file";
    t.attributes.push_back(stat("connectionsProcessed", "Connections admitted."));
    t.attributes.push_back(stat("connectionsDenied", "Connections refused."));
    t.attributes.push_back(stat("connectionsCurrent", "User connections open."));
    t.attributes.push_back(stat("linksDenied", "Attaches refused."));
    t.attributes.push_back(stat("maxMessageSizeDenied", "Messages refused for their size."));
    t.attributes.push_back(stat("totalDenials", "All denials."));
    types.push_back(std::move(t));
}

void add_vhost(Types& types) {
    EntityTypeSchema t;
    t.short_name = "vhost";
    t.long_name = std::string(prefix) + "vhost";
    t.creatable = true;
    t.updatable = true;
    t.description =
        "The users of one virtual host (the AMQP open hostname, or a listener's "
        "policyVhost), in groups with the addresses each may use and their limits. "
        "Changes apply to new connections.";
    t.attributes.push_back(required(str("hostname", "The vhost's name ($default: the default).")));
    t.attributes.push_back(str("name", "Same as hostname."));
    t.attributes.push_back(
        integer("maxConnections", "Concurrent connections to this vhost.", 65535, 0, UINT32_MAX));
    t.attributes.push_back(
        integer("maxConnectionsPerUser", "Concurrent connections per user.", 65535, 0, UINT32_MAX));
    t.attributes.push_back(integer(
        "maxConnectionsPerHost", "Concurrent connections per remote host.", 65535, 0, UINT32_MAX));
    t.attributes.push_back(
        integer("maxMessageSize", "Largest message in bytes (0: the policy's).", 0, 0, INT64_MAX));
    t.attributes.push_back(
        boolean("allowUnknownUser", "Users in no group get the group named $default.", false));
    AttributeSchema g =
        map("groups",
            "JSON object: group name -> settings. users, remoteHosts (IPs, low-high ranges, *), "
            "sources / targets (addresses; a trailing * for a prefix; ${user} is the user) or "
            "sourcePattern / targetPattern (* one level, # any), maxConnectionsPerUser, "
            "maxConnectionsPerHost, maxMessageSize, maxSessions, maxSenders, maxReceivers, "
            "allowDynamicSource, allowAnonymousSender, allowUserIdProxy, allowManagementWrite.");
    g.nested = true;
    g.writable = true;
    t.attributes.push_back(std::move(g));
    for (auto& a : t.attributes)
        if (a.name != "hostname" && a.name != "name") a.writable = true;
    t.attributes.push_back(stat("connectionsApproved", "Connections admitted."));
    t.attributes.push_back(stat("connectionsDenied", "Connections refused."));
    t.attributes.push_back(stat("connectionsCurrent", "Connections open."));
    t.attributes.push_back(stat("sessionDenied", "Sessions refused (maxSessions)."));
    t.attributes.push_back(stat("senderDenied", "Producer links refused."));
    t.attributes.push_back(stat("receiverDenied", "Consumer links refused."));
    t.attributes.push_back(
        stat("messageDenied", "Messages to denied addresses (anonymous senders, MQTT, wills)."));
    t.attributes.push_back(stat("subscriptionDenied", "MQTT topic filters refused."));
    t.attributes.push_back(stat("maxMessageSizeDenied", "Messages refused for their size."));
    t.attributes.push_back(stat("managementDenied", "$management writes refused."));
    t.attributes.push_back(operational(map("perUserDenials", "Denials by user name.")));
    types.push_back(std::move(t));
}

}  // namespace trestle::management::schema
