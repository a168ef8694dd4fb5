#include "app/daemon.hpp"

#include "app/entities/entities.hpp"

#include "kafka/compacted_stores.hpp"
#include "net/epoll_transport.hpp"
#include "net/tls_transport.hpp"
#include "net/ws_transport.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <csignal>
#include <cstring>
#include <sstream>

#include "security/policy_config.hpp"
#include "security/secret.hpp"

namespace trestle::app {

namespace asio = boost::asio;
using management::ConfigError;
using management::Entity;

namespace {

// A prefix or pattern, exactly one of them.
void one_of_prefix_pattern(const Entity& e) {
    if (e.has("prefix") == e.has("pattern"))
        throw ConfigError(e.file, e.line,
                          e.type->short_name + " needs exactly one of 'prefix' or 'pattern'");
}

}  // namespace

void Daemon::add_security(const Entity& e) {
    std::string name = e.str("name");
    if (e.type->short_name == "sslProfile") {
        if (tls_profiles_.count(name))
            throw ConfigError(e.file, e.line, "sslProfile '" + name + "' is defined twice");
        security::TlsSettings ts;
        ts.name = name;
        ts.cert_file = e.str("certFile");
        ts.key_file = e.str("privateKeyFile", ts.cert_file);
        ts.ca_file = e.str("caCertFile");
        ts.ciphers = e.str("ciphers");
        ts.protocols = e.str("protocols", ts.protocols);
        ts.uid_format = e.str("uidFormat");
        for (char c : ts.uid_format)
            if (!strchr("csloun125", c))
                throw ConfigError(
                    e.file, e.line_of("uidFormat"),
                    std::string("uidFormat: unknown field '") + c + "' (c s l o u n 1 2 5)");
        try {
            if (e.has("password")) ts.password = security::resolve_secret(e.str("password"));
            tls_profiles_[name] = std::make_shared<security::TlsProfile>(std::move(ts));
        } catch (const std::exception& ex) {
            throw ConfigError(e.file, e.line, "sslProfile '" + name + "': " + ex.what());
        }
        ssl_profile_entities_.push_back(e);
    } else {
        if (user_stores_.count(name))
            throw ConfigError(e.file, e.line, "userStore '" + name + "' is defined twice");
        try {
            user_stores_[name] = std::make_shared<security::PasswordFile>(e.str("passwordFile"));
        } catch (const std::exception& ex) {
            throw ConfigError(e.file, e.line_of("passwordFile"), ex.what());
        }
        user_store_entities_.push_back(e);
    }
}

void Daemon::add_policy(const Entity& e) {
    if (e.boolean("enableVhostNamePatterns", false))
        throw ConfigError(e.file, e.line_of("enableVhostNamePatterns"),
                          "enableVhostNamePatterns is not supported by Trestle");
    core::PolicySettings ps;
    ps.max_connections = static_cast<uint32_t>(e.integer("maxConnections", ps.max_connections));
    ps.max_message_size = static_cast<uint64_t>(e.integer("maxMessageSize", 0));
    ps.enable_vhost_policy = e.boolean("enableVhostPolicy", false);
    ps.default_vhost = e.str("defaultVhost", ps.default_vhost);
    router_->policy().configure(ps);
    policy_entities_.push_back(e);
    policy_entities_.back().attributes["name"] = json::Value("policy");
}

void Daemon::add_vhost(const Entity& e) {
    core::VhostSettings v;
    v.hostname = e.str("hostname");
    if (e.has("name") && e.str("name") != v.hostname)
        throw ConfigError(e.file, e.line_of("name"), "a vhost's name is its hostname");
    v.max_connections = static_cast<uint32_t>(e.integer("maxConnections", v.max_connections));
    v.max_connections_per_user =
        static_cast<uint32_t>(e.integer("maxConnectionsPerUser", v.max_connections_per_user));
    v.max_connections_per_host =
        static_cast<uint32_t>(e.integer("maxConnectionsPerHost", v.max_connections_per_host));
    v.max_message_size = static_cast<uint64_t>(e.integer("maxMessageSize", 0));
    v.allow_unknown_user = e.boolean("allowUnknownUser", false);
    if (e.has("groups"))
        if (std::string err = security::parse_policy_groups(e.attributes.at("groups"), v.groups);
            !err.empty())
            throw ConfigError(e.file, e.line_of("groups"), "vhost '" + v.hostname + "' " + err);
    if (std::string err = router_->policy().set_vhost(std::move(v)); !err.empty())
        throw ConfigError(e.file, e.line, err);
    Entity stored = e;
    stored.attributes["name"] = json::Value(e.str("hostname"));
    std::erase_if(vhost_entities_,
                  [&](const Entity& o) { return o.str("hostname") == e.str("hostname"); });
    vhost_entities_.push_back(std::move(stored));
}

std::shared_ptr<security::TlsProfile> Daemon::tls_profile(const Entity& e) {
    if (!e.has("sslProfile")) return nullptr;
    auto it = tls_profiles_.find(e.str("sslProfile"));
    if (it == tls_profiles_.end())
        throw ConfigError(e.file, e.line_of("sslProfile"),
                          "sslProfile '" + e.str("sslProfile") + "' is not configured");
    return it->second;
}

std::shared_ptr<security::PasswordFile> Daemon::user_store(const Entity& e) {
    if (e.has("userStore")) {
        auto it = user_stores_.find(e.str("userStore"));
        if (it == user_stores_.end())
            throw ConfigError(e.file, e.line_of("userStore"),
                              "userStore '" + e.str("userStore") + "' is not configured");
        return it->second;
    }
    if (user_stores_.size() > 1)
        throw ConfigError(e.file, e.line,
                          "several userStores are configured: name one with userStore");
    return user_stores_.empty() ? nullptr : user_stores_.begin()->second;
}

// `listener`: the entity is a listener (else a connector, which has no maxMessageSize).
amqp::AmqpSettings Daemon::amqp_settings(const Entity& e, bool listener) {
    amqp::AmqpSettings s;
    s.container_id = router_->settings().id;
    s.role = e.str("role", "normal");
    if (s.role == "inter-router" || s.role == "edge")
        throw ConfigError(e.file, e.line_of("role"),
                          "role '" + s.role + "' is not supported: Trestle routers are standalone");
    s.max_frame_size = static_cast<uint32_t>(e.integer("maxFrameSize", 16384));
    s.max_sessions = static_cast<uint32_t>(e.integer("maxSessions", 32768));
    s.max_session_frames = static_cast<uint32_t>(e.integer("maxSessionFrames", 0));
    s.idle_timeout_ms = static_cast<uint32_t>(e.integer("idleTimeoutSeconds", 16) * 1000);
    s.link_capacity = static_cast<uint32_t>(e.integer("linkCapacity", 250));
    s.handshake_timeout_ms =
        static_cast<uint32_t>(e.integer("initialHandshakeTimeoutSeconds", 0) * 1000);
    if (std::string d = e.str("kafkaDialect", "none"); d != "none") s.kafka_dialect = d;
    s.policy_vhost = e.str("policyVhost");
    if (!listener && e.has("policyVhost"))
        throw ConfigError(e.file, e.line_of("policyVhost"),
                          "policyVhost applies to listeners (a connector's connection is not "
                          "checked by the policy)");
    // A message is held whole while it arrives, so a listener's default is a bound, not
    // "unlimited" (qdrouterd's 0 is safe there only because it streams). Connectors (to
    // brokers): no limit.
    uint64_t fallback = !listener ? 0 : s.kafka_dialect == "eventhubs" ? 1048576 : 16777216;
    s.max_message_size = static_cast<uint64_t>(e.integer("maxMessageSize", fallback));

    // TLS and SASL.
    s.tls = tls_profile(e);
    bool require = e.boolean("requireSsl", true) && e.boolean("requireEncryption", true);
    if (!s.tls && (e.boolean("requireSsl", false) || e.boolean("requireEncryption", false)))
        throw ConfigError(e.file,
                          e.line_of(e.has("requireSsl") ? "requireSsl" : "requireEncryption"),
                          "requireSsl/requireEncryption need an sslProfile");
    if (s.tls && listener && s.tls->settings().cert_file.empty())
        throw ConfigError(
            e.file, e.line_of("sslProfile"),
            "sslProfile '" + s.tls->settings().name + "' has no certFile: a listener needs one");
    s.require_tls = s.tls && require;
    s.verify_hostname = e.boolean("verifyHostname", true);
    auto& sasl = s.sasl;
    sasl.authenticate_peer = listener && e.boolean("authenticatePeer");
    sasl.allow_insecure = e.boolean("allowInsecureAuthentication", false);
    sasl.uid_format = s.tls ? s.tls->settings().uid_format : "";
    if (listener) {
        sasl.users = user_store(e);
    } else {
        sasl.username = e.str("saslUsername");
        try {
            if (e.has("saslPassword"))
                sasl.password = security::resolve_secret(e.str("saslPassword"));
        } catch (const std::exception& ex) {
            throw ConfigError(e.file, e.line_of("saslPassword"), ex.what());
        }
    }
    bool credentials = listener ? sasl.users != nullptr : !sasl.username.empty();
    std::string fallback_mechs =
        !credentials ? "ANONYMOUS"
        : listener   ? (sasl.authenticate_peer ? "SCRAM-SHA-512 SCRAM-SHA-256 PLAIN"
                                               : "SCRAM-SHA-512 SCRAM-SHA-256 PLAIN ANONYMOUS")
                     : "SCRAM-SHA-512 SCRAM-SHA-256 PLAIN";
    sasl.mechanisms = e.str("saslMechanisms", fallback_mechs);
    int line = e.line_of("saslMechanisms");
    bool usable = false;
    std::istringstream mechs(sasl.mechanisms);
    for (std::string m; mechs >> m;) {
        if (m != "ANONYMOUS" && m != "PLAIN" && m != "EXTERNAL" && !security::scram_hash(m))
            throw ConfigError(e.file, line,
                              "unknown SASL mechanism '" + m +
                                  "' (ANONYMOUS, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, EXTERNAL)");
        if ((m == "PLAIN" || security::scram_hash(m)) && !credentials)
            throw ConfigError(e.file, line,
                              m + (listener ? " needs a userStore" : " needs saslUsername"));
        if (m == "EXTERNAL" && !s.tls)
            throw ConfigError(e.file, line, "EXTERNAL needs an sslProfile");
        if (m == "EXTERNAL" && listener && s.tls->settings().ca_file.empty())
            throw ConfigError(e.file, line,
                              "EXTERNAL needs the sslProfile's caCertFile to check client "
                              "certificates");
        usable |= !(sasl.authenticate_peer && m == "ANONYMOUS");
    }
    if (!usable)
        throw ConfigError(e.file, line,
                          sasl.authenticate_peer
                              ? "authenticatePeer needs a mechanism besides ANONYMOUS"
                              : "saslMechanisms names no mechanism");
    return s;
}

std::unique_ptr<Daemon::ListenerConfig> Daemon::make_listener(const Entity& e) {
    auto lc = std::make_unique<ListenerConfig>();
    lc->host = e.str("host");
    lc->port = static_cast<uint16_t>(e.integer("port"));
    lc->name = e.str("name", lc->host + ":" + std::to_string(lc->port));
    lc->settings = amqp_settings(e, true);
    lc->settings.name = lc->name;
    lc->entity = e;
    lc->entity.attributes["name"] = json::Value(lc->name);
    return lc;
}

std::unique_ptr<Daemon::MqttListenerConfig> Daemon::make_mqtt_listener(const Entity& e) {
    auto mc = std::make_unique<MqttListenerConfig>();
    mc->host = e.str("host");
    mc->port = static_cast<uint16_t>(e.integer("port"));
    auto& st = mc->settings;
    st.name = e.str("name", mc->host + ":" + std::to_string(mc->port));
    std::string versions = e.str("protocolVersions", "3.1.1,5");
    st.allow_v311 = st.allow_v5 = false;
    size_t start = 0;
    while (start <= versions.size()) {
        size_t comma = versions.find(',', start);
        std::string v =
            versions.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        v.erase(0, v.find_first_not_of(' '));
        v.erase(v.find_last_not_of(' ') + 1);
        if (v == "3.1.1" || v == "4")
            st.allow_v311 = true;
        else if (v == "5" || v == "5.0")
            st.allow_v5 = true;
        else
            throw ConfigError(e.file, e.line_of("protocolVersions"),
                              "unknown MQTT protocol version '" + v + "' (3.1.1 or 5)");
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    st.max_packet_size = static_cast<uint32_t>(e.integer("maxPacketSize"));
    st.max_connections = static_cast<uint32_t>(e.integer("maxConnections"));
    st.max_keep_alive = static_cast<uint16_t>(e.integer("maxKeepAliveSeconds"));
    st.receive_maximum = static_cast<uint16_t>(e.integer("receiveMaximum"));
    st.topic_alias_maximum = static_cast<uint16_t>(e.integer("topicAliasMaximum"));
    st.max_session_queue = static_cast<uint32_t>(e.integer("maxSessionQueue"));
    st.max_session_expiry = static_cast<uint32_t>(e.integer("maxSessionExpirySeconds"));
    st.max_buffered_bytes = static_cast<size_t>(e.integer("maxBufferedBytes"));
    st.connect_timeout_ms = static_cast<uint32_t>(e.integer("connectTimeoutSeconds") * 1000);
    st.websocket_path = e.str("websocketPath");
    if (!st.websocket_path.empty() && st.websocket_path[0] != '/')
        throw ConfigError(e.file, e.line_of("websocketPath"), "websocketPath must start with '/'");
    st.tls = tls_profile(e);
    if (st.tls && st.tls->settings().cert_file.empty())
        throw ConfigError(
            e.file, e.line_of("sslProfile"),
            "sslProfile '" + st.tls->settings().name + "' has no certFile: a listener needs one");
    st.require_certificate = e.boolean("requireCertificate");
    st.use_identity_as_username = e.boolean("useIdentityAsUsername");
    if (st.require_certificate && (!st.tls || st.tls->settings().ca_file.empty()))
        throw ConfigError(e.file, e.line_of("requireCertificate"),
                          "requireCertificate needs an sslProfile with a caCertFile");
    if (st.use_identity_as_username && !st.require_certificate)
        throw ConfigError(e.file, e.line_of("useIdentityAsUsername"),
                          "useIdentityAsUsername needs requireCertificate: yes");
    st.users = user_store(e);
    st.allow_anonymous = e.boolean("allowAnonymous", st.users == nullptr);
    st.policy_vhost = e.str("policyVhost");
    mc->entity = e;
    mc->entity.attributes["name"] = json::Value(st.name);
    return mc;
}

std::unique_ptr<Daemon::ConnectorConfig> Daemon::make_connector(const Entity& e) {
    auto cc = std::make_unique<ConnectorConfig>();
    cc->host = e.str("host");
    cc->port = static_cast<uint16_t>(e.integer("port"));
    if (cc->port == 0) throw ConfigError(e.file, e.line_of("port"), "a connector needs a port");
    cc->max_delay_ms = static_cast<uint32_t>(e.integer("maxReconnectDelaySeconds", 10) * 1000);
    cc->settings = amqp_settings(e, false);
    cc->settings.peer_host = cc->host;
    cc->settings.name = e.str("name", cc->host + ":" + std::to_string(cc->port));
    cc->entity = e;
    cc->entity.attributes["name"] = json::Value(cc->settings.name);
    return cc;
}

std::unique_ptr<Daemon::HttpListenerConfig> Daemon::make_http_listener(const Entity& e) {
    auto hc = std::make_unique<HttpListenerConfig>();
    hc->host = e.str("host");
    hc->port = static_cast<uint16_t>(e.integer("port"));
    hc->settings.name = e.str("name", hc->host + ":" + std::to_string(hc->port));
    hc->settings.max_connections = static_cast<size_t>(e.integer("maxConnections"));
    hc->settings.idle_timeout_ms = static_cast<uint32_t>(e.integer("idleTimeoutSeconds") * 1000);
    hc->metrics_max_addresses = static_cast<size_t>(e.integer("metricsMaxAddresses"));
    hc->tls = tls_profile(e);
    if (hc->tls && hc->tls->settings().cert_file.empty())
        throw ConfigError(
            e.file, e.line_of("sslProfile"),
            "sslProfile '" + hc->tls->settings().name + "' has no certFile: a listener needs one");
    if (e.boolean("authenticatePeer", false)) {
        hc->users = user_store(e);
        if (!hc->users)
            throw ConfigError(e.file, e.line_of("authenticatePeer"),
                              "authenticatePeer needs a userStore");
        if (!hc->tls && !e.boolean("allowInsecureAuthentication", false))
            throw ConfigError(e.file, e.line_of("authenticatePeer"),
                              "basic auth sends the password: give the httpListener an "
                              "sslProfile, or set allowInsecureAuthentication: yes");
    } else if (e.has("userStore")) {
        throw ConfigError(e.file, e.line_of("userStore"),
                          "userStore is used with authenticatePeer: yes");
    }
    if (hc->tls) {
        auto tls = hc->tls;
        hc->settings.tls = [tls]() -> SSL_CTX* {
            tls->refresh();
            SSL_CTX* c = tls->server_ctx(false);
            if (c) SSL_CTX_up_ref(c);
            return c;
        };
    }
    hc->entity = e;
    hc->entity.attributes["name"] = json::Value(hc->settings.name);
    return hc;
}

kafka::RouteSettings Daemon::kafka_route(const Entity& e) {
    one_of_prefix_pattern(e);
    kafka::RouteSettings r;
    r.prefix = e.str("prefix");
    r.pattern = e.str("pattern");
    r.name = e.str("name", r.prefix.empty() ? r.pattern : r.prefix);
    r.topic = e.str("topic");
    std::string dir = e.str("direction", "both");
    r.in = dir != "out";
    r.out = dir != "in";
    r.key_is_address = e.str("key", "address") == "address";
    r.headers = e.boolean("headers", true);
    r.group_id = e.str("groupId");
    r.start_position = e.str("startPosition");
    r.dead_letter_topic = e.str("deadLetterTopic");
    r.address = e.str("address");
    return r;
}

void Daemon::add_address(const Entity& e) {
    one_of_prefix_pattern(e);
    core::AddressRule r;
    r.prefix = e.str("prefix");
    r.pattern = e.str("pattern");
    r.name = e.str("name", r.prefix.empty() ? r.pattern : r.prefix);
    r.distribution = *core::parse_distribution(e.str("distribution", "balanced"));
    r.priority = static_cast<int>(e.integer("priority", -1));
    std::string err = router_->add_address_rule(r);
    if (!err.empty()) throw ConfigError(e.file, e.line, "address: " + err);
    Entity stored = e;
    stored.attributes["name"] = json::Value(r.name);
    address_entities_.push_back(std::move(stored));
}

void Daemon::add_link_route(const Entity& e) {
    one_of_prefix_pattern(e);
    if (e.has("connection") == e.has("containerId"))
        throw ConfigError(e.file, e.line,
                          "linkRoute needs exactly one of 'connection' or 'containerId'");
    if (e.has("connection")) {
        bool found = false;
        for (const auto& c : connector_configs_) found |= c->settings.name == e.str("connection");
        if (!found)
            throw ConfigError(e.file, e.line_of("connection"),
                              "linkRoute refers to connector '" + e.str("connection") +
                                  "', which is not configured");
    }
    core::LinkRouteRule r;
    r.prefix = e.str("prefix");
    r.pattern = e.str("pattern");
    r.direction =
        e.str("direction") == "in" ? core::Direction::incoming : core::Direction::outgoing;
    r.name = e.str("name", (r.prefix.empty() ? r.pattern : r.prefix) + "-" + e.str("direction"));
    r.connection = e.str("connection");
    r.container_id = e.str("containerId");
    r.add_external_prefix = e.str("addExternalPrefix");
    r.del_external_prefix = e.str("delExternalPrefix");
    std::string err = router_->add_link_route(r);
    if (!err.empty()) throw ConfigError(e.file, e.line, "linkRoute: " + err);
    Entity stored = e;
    stored.attributes["name"] = json::Value(r.name);
    link_route_entities_.push_back(std::move(stored));
}

Daemon::Daemon(const std::vector<Entity>& config, std::shared_ptr<LogRing> log)
    : log_(std::move(log)),
      signals_(loop_.io()),
      ticker_(loop_.io()),
      shutdown_deadline_(loop_.io()) {
    core::RouterSettings rs;
    for (const auto& e : config) {
        if (e.type->short_name != "router") continue;
        rs.id = e.str("id", rs.id);
        if (e.str("mode") != "standalone")
            throw ConfigError(e.file, e.line_of("mode"),
                              "router mode '" + e.str("mode") +
                                  "' is not supported: Trestle routers are standalone");
        rs.default_distribution =
            *core::parse_distribution(e.str("defaultDistribution", "balanced"));
        router_entities_.push_back(e);
    }
    if (router_entities_.empty()) {
        management::RawSection raw;
        raw.type = "router";
        router_entities_.push_back(management::validate(raw, "<defaults>"));
    }
    router_ = std::make_unique<core::Router>(rs);

    // Profiles and stores first: listeners and connectors refer to them; connectors before
    // link routes, which refer to them by name.
    for (const auto& e : config)
        if (e.type->short_name == "sslProfile" || e.type->short_name == "userStore")
            add_security(e);
    for (const auto& e : config)
        if (e.type->short_name == "policy") add_policy(e);
    for (const auto& e : config) {
        if (e.type->short_name != "vhost") continue;
        for (const auto& o : vhost_entities_)
            if (o.str("hostname") == e.str("hostname"))
                throw ConfigError(e.file, e.line,
                                  "vhost '" + e.str("hostname") + "' is defined twice");
        add_vhost(e);
    }
    if (!vhost_entities_.empty() && !router_->policy().settings().enable_vhost_policy)
        spdlog::warn(
            "vhost sections are configured but policy enableVhostPolicy is not set: "
            "they are not applied");
    for (const auto& e : config)
        if (e.type->short_name == "connector") connector_configs_.push_back(make_connector(e));
    for (const auto& e : config) {
        const std::string& type = e.type->short_name;
        if (type == "listener") {
            listener_configs_.push_back(make_listener(e));
        } else if (type == "mqttListener") {
            mqtt_configs_.push_back(make_mqtt_listener(e));
        } else if (type == "httpListener") {
            http_configs_.push_back(make_http_listener(e));
        } else if (type == "router.config.address") {
            add_address(e);
        } else if (type == "router.config.linkRoute") {
            add_link_route(e);
        } else if (type == "kafka") {
            kafka::Settings ks;
            ks.name = e.str("name", "kafka");
            ks.bootstrap = e.str("bootstrapServers", "embedded");
            ks.embedded_brokers = static_cast<int>(e.integer("embeddedBrokers", 1));
            ks.embedded_partitions = static_cast<int>(e.integer("embeddedPartitions", 4));
            if (e.has("properties"))
                for (const auto& [k, v] : e.attributes.at("properties").as_object())
                    ks.properties[k] = v.as_string();
            for (const char* reserved : {"bootstrap.servers", "group.id", "enable.auto.commit",
                                         "dr_msg_cb", "enable.auto.offset.store"})
                if (ks.properties.count(reserved))
                    throw ConfigError(e.file, e.line_of("properties"),
                                      std::string("property '") + reserved +
                                          "' is set by Trestle (use bootstrapServers, groupId)");
            ks.max_in_flight = static_cast<uint32_t>(e.integer("maxInFlight", 10000));
            ks.create_topics = e.boolean("createTopics", true);
            ks.retained_topic = e.str("retainedTopic", ks.retained_topic);
            ks.sessions_topic = e.str("sessionsTopic", ks.sessions_topic);
            ks.instance_timeout_ms = static_cast<uint32_t>(e.integer("instanceTimeout", 10)) * 1000;
            ks.dead_letter_topic = e.str("deadLetterTopic", ks.dead_letter_topic);
            if (kafka_settings_) ks.routes = std::move(kafka_settings_->routes);
            kafka_settings_ = std::move(ks);
            kafka_entities_.push_back(e);
        } else if (type == "kafkaRoute") {
            kafka::RouteSettings r = kafka_route(e);
            if (!kafka_settings_) kafka_settings_.emplace();
            for (const auto& o : kafka_settings_->routes)
                if (o.name == r.name)
                    throw ConfigError(e.file, e.line,
                                      "kafkaRoute '" + r.name + "' is defined twice");
            kafka_settings_->routes.push_back(std::move(r));
            Entity stored = e;
            stored.attributes["name"] = json::Value(kafka_settings_->routes.back().name);
            kafka_route_entities_.push_back(std::move(stored));
        }
    }
    bool has_kafka = false;
    for (const auto& e : config) has_kafka |= e.type->short_name == "kafka";
    for (const auto& e : config)
        if (e.type->short_name == "listener" && e.str("kafkaDialect", "none") != "none" &&
            !has_kafka)
            throw ConfigError(e.file, e.line_of("kafkaDialect"),
                              "kafkaDialect needs a kafka entity (bootstrapServers: embedded for "
                              "the in-process one)");
    if (kafka_settings_ && !has_kafka) {
        for (const auto& e : config)
            if (e.type->short_name == "kafkaRoute")
                throw ConfigError(e.file, e.line,
                                  "kafkaRoute needs a kafka entity (bootstrapServers: embedded "
                                  "for the in-process one)");
    }
    loop_.on_turn([this] { router_->set_now_ms(loop_.turn_us() / 1000); });
    router_->set_now_ms(net::monotonic_ms());
    mqtt_ = std::make_unique<mqtt::SessionManager>(*router_, loop_, session_store_);
    for (const auto& e : config)
        if (e.type->short_name == "router")
            mqtt_->max_total_queued =
                static_cast<uint64_t>(e.integer("mqttMaxQueuedMessages", 100000));
}

Daemon::~Daemon() {
    mqtt_.reset();  // its sessions use the Kafka adapter's stores and logs
}

std::string Daemon::start_listener(ListenerConfig& lc) {
    auto listener = std::make_shared<net::TcpListener>(
        loop_, [this, &lc](asio::ip::tcp::socket s) { accept(lc, std::move(s)); });
    std::string err = listener->listen(lc.host, lc.port);
    if (!err.empty()) {
        lc.error = err;
        return "listener '" + lc.name + "': " + err;
    }
    listener->start();
    spdlog::info("listener '{}' (amqp) listening on {}", lc.name, listener->local_address());
    lc.listener = std::move(listener);
    lc.error.clear();
    return {};
}

std::string Daemon::start_mqtt_listener(MqttListenerConfig& mc) {
    auto listener = std::make_shared<net::TcpListener>(loop_, [this, &mc](asio::ip::tcp::socket s) {
        if (stopping_) return;
        if (auto& tls = mc.settings.tls) {
            tls->refresh();
            auto t = net::tls_server_transport(net::epoll_transport(mqtt_->poller(), std::move(s)),
                                               tls->server_ctx(mc.settings.require_certificate));
            if (!mc.settings.websocket_path.empty()) {
                // wss:// and mqtts:// on one port: the first plaintext byte decides.
                net::WsSettings ws;
                ws.path = mc.settings.websocket_path;
                ws.subprotocols = {"mqtt", "mqttv3.1"};
                if (mc.settings.max_packet_size)
                    ws.max_message = size_t(mc.settings.max_packet_size) + 65536;
                t = net::ws_or_plain_server_transport(std::move(t), std::move(ws));
            }
            mqtt_->accept(mc.settings, std::move(t));
            return;
        }
        if (mc.settings.websocket_path.empty()) {
            mqtt_->accept(mc.settings, net::epoll_transport(mqtt_->poller(), std::move(s)));
            return;
        }
        mqtt::accept_mqtt_or_websocket(mqtt_->poller(), std::move(s), mc.settings,
                                       [this, &mc](std::unique_ptr<mqtt::Transport> t) {
                                           if (!stopping_) mqtt_->accept(mc.settings, std::move(t));
                                       });
    });
    std::string err = listener->listen(mc.host, mc.port);
    if (!err.empty()) {
        mc.error = err;
        return "mqttListener '" + mc.settings.name + "': " + err;
    }
    listener->start();
    spdlog::info("listener '{}' (mqtt) listening on {}{}{}", mc.settings.name,
                 listener->local_address(), mc.settings.tls ? " (TLS)" : "",
                 mc.settings.websocket_path.empty()
                     ? ""
                     : " (WebSocket at " + mc.settings.websocket_path + ")");
    mc.listener = std::move(listener);
    mc.error.clear();
    return {};
}

std::string Daemon::start_http_listener(HttpListenerConfig& hc) {
    hc.endpoint = std::make_unique<http::Endpoint>(
        hc.settings, [this, &hc](const http::Request& r) { return http_request(r, hc); });
    auto listener = std::make_shared<net::TcpListener>(loop_, [this, &hc](asio::ip::tcp::socket s) {
        if (!stopping_) hc.endpoint->accept(std::move(s));
    });
    std::string err = listener->listen(hc.host, hc.port);
    if (!err.empty()) {
        hc.error = err;
        return "httpListener '" + hc.settings.name + "': " + err;
    }
    listener->start();
    spdlog::info("listener '{}' (http) listening on {} (/healthz /readyz /metrics)",
                 hc.settings.name, listener->local_address());
    hc.listener = std::move(listener);
    hc.error.clear();
    return {};
}

void Daemon::start_connector(ConnectorConfig& cc) {
    cc.connector = std::make_shared<amqp::AmqpConnector>(loop_, *router_, cc.settings, cc.host,
                                                         cc.port, cc.max_delay_ms);
    cc.connector->start();
    spdlog::info("connector '{}' ({}) connecting to {}:{}", cc.settings.name, cc.settings.role,
                 cc.host, cc.port);
}

std::string Daemon::start() {
    started_ms_ = net::monotonic_ms();
    // Kafka first: its bindings (and, later, state) are in place before clients arrive.
    if (kafka_settings_) {
        kafka_ = std::make_unique<kafka::Adapter>(*router_, loop_, *kafka_settings_,
                                                  router_->settings().id);
        if (std::string err = kafka_->start(); !err.empty())
            return "kafka '" + kafka_settings_->name + "': " + err;
        if (auto* state = kafka_->session_state()) {
            mqtt_->use_state(*state, kafka_.get(), kafka_settings_->instance_timeout_ms);
            router_->wills().use_store(&state->wills());
        }
    }
    register_management();
    for (auto& lc : listener_configs_)
        if (std::string err = start_listener(*lc); !err.empty()) return err;
    for (auto& mc : mqtt_configs_)
        if (std::string err = start_mqtt_listener(*mc); !err.empty()) return err;
    for (auto& hc : http_configs_)
        if (std::string err = start_http_listener(*hc); !err.empty()) return err;
    for (auto& cc : connector_configs_) start_connector(*cc);
    started_ = true;
    return {};
}

void Daemon::accept(const ListenerConfig& lc, asio::ip::tcp::socket s) {
    if (stopping_) return;
    auto conn = std::make_shared<amqp::AmqpConnection>(loop_, *router_, std::move(s), lc.settings,
                                                       amqp::AmqpConnection::Side::server);
    connections_.emplace(conn.get(), conn);
    conn->start([this](amqp::AmqpConnection& c) {
        // Defer the release: we are inside the connection's own handler.
        auto it = connections_.find(&c);
        if (it == connections_.end()) return;
        auto keep = it->second;
        connections_.erase(it);
        asio::post(loop_.io(), [keep] {});
        if (stopping_ && connections_.empty()) finish_shutdown();
    });
}

void Daemon::housekeeping() {
    loop_.begin_turn();  // the core's clock and the loop's turn stamp (what it produces)
    ticker_.expires_after(std::chrono::seconds(1));
    ticker_.async_wait([this](boost::system::error_code ec) {
        if (!ec) housekeeping();
    });
}

int Daemon::run() {
    std::signal(SIGPIPE, SIG_IGN);
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::info("received signal {}, shutting down", sig);
        stop();
    });
    housekeeping();
    loop_.run();
    spdlog::info("router stopped");
    return 0;
}

// Graceful: stop accepting, close every connection (links detached first), then exit once
// they are gone or after a short deadline.
void Daemon::stop() {
    if (stopping_) return;
    stopping_ = true;
    for (auto& l : listener_configs_)
        if (l->listener) l->listener->close();
    for (auto& m : mqtt_configs_)
        if (m->listener) m->listener->close();
    for (auto& c : connector_configs_)
        if (c->connector) c->connector->stop();
    for (auto& h : http_configs_) {
        if (h->listener) h->listener->close();
        if (h->endpoint) h->endpoint->close_all();
    }
    if (agent_endpoint_) agent_endpoint_->stop();
    // Kafka's delivery reports first, so producers get their outcomes before their
    // connections close.
    if (kafka_) kafka_->shutdown();
    mqtt_->shutdown();
    auto conns = connections_;
    for (auto& [p, c] : conns) c->shutdown();
    if (connections_.empty()) return finish_shutdown();
    shutdown_deadline_.expires_after(std::chrono::seconds(3));
    shutdown_deadline_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        spdlog::warn("{} connection(s) did not close in time; exiting anyway", connections_.size());
        finish_shutdown();
    });
}

void Daemon::finish_shutdown() {
    ticker_.cancel();
    shutdown_deadline_.cancel();
    signals_.cancel();
    loop_.stop();
}

void Daemon::register_management() {
    if (log_) agent_.log_records = [log = log_](size_t limit) { return log->records(limit); };
    entities::register_entities(agent_, *this, *this);
    agent_endpoint_ = std::make_unique<management::AgentEndpoint>(
        *router_, agent_,
        [this](std::function<void()> fn) { asio::post(loop_.io(), std::move(fn)); });
    agent_endpoint_->start();
}

}  // namespace trestle::app
