// What `$management` shows and changes: one provider per entity type, built from the core's
// introspection, the adapters' counters and the configured entities.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <cstdio>
#include <fstream>

#include "app/process_stats.hpp"
#include "app/daemon.hpp"
#include "trestle/version.hpp"
#include "util/log.hpp"

namespace trestle::app {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() { return logs::get(logs::Module::MANAGEMENT); }
}  // namespace

namespace asio = boost::asio;
using management::ConfigError;
using management::Entity;
using management::Provider;
using management::Status;
namespace status = management::status;

namespace {

json::Object entity_row(const Entity& e) {
    json::Object row;
    for (const auto& [k, v] : e.attributes) row.emplace_back(k, v);
    std::string name = e.str("name");
    row.emplace_back("identity", e.type->short_name + "/" + name);
    return row;
}

std::string text_of(const json::Object& row, std::string_view key) {
    for (const auto& [k, v] : row)
        if (k == key && v.is_string()) return v.as_string();
    return {};
}

// qdrouterd's address key: M<phase><address> for mobile addresses, L for in-process ones.
std::string address_key(const std::string& name) {
    return (name == "$management" ? "L" : "M0") + name;
}

std::string level_name(spdlog::level::level_enum l) {
    switch (l) {
        case spdlog::level::trace: return "trace+";
        case spdlog::level::debug: return "debug+";
        case spdlog::level::info: return "info+";
        case spdlog::level::warn: return "warning+";
        case spdlog::level::err: return "error+";
        case spdlog::level::critical: return "critical+";
        default: return "none";
    }
}

std::optional<spdlog::level::level_enum> parse_level(std::string s) {
    if (!s.empty() && s.back() == '+') s.pop_back();
    if (s == "none" || s == "off") return spdlog::level::off;
    if (s == "notice") return spdlog::level::info;
    if (s == "warning") return spdlog::level::warn;
    if (s == "error") return spdlog::level::err;
    for (auto l : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                   spdlog::level::warn, spdlog::level::err, spdlog::level::critical})
        if (spdlog::level::to_string_view(l) == s) return l;
    return std::nullopt;
}

Status bad(const ConfigError& e) {
    std::string m = e.what();
    size_t cut = m.find(": ");
    return Status::error(status::bad_request, cut == std::string::npos ? m : m.substr(cut + 2));
}

}  // namespace

size_t Daemon::amqp_connection_count() const {
    size_t n = 0;
    for (const auto& [id, c] : router_->connections()) n += c->info().protocol == "amqp";
    return n;
}

size_t Daemon::blocked_links() const {
    size_t n = 0;
    for (const auto& [id, l] : router_->links()) n += l->blocked();
    return n;
}

size_t Daemon::connections_on(const ListenerConfig& lc) const {
    size_t n = 0;
    for (const auto& [p, c] : connections_) n += c->settings().name == lc.name;
    return n;
}

void Daemon::add_listener_state(json::Object& r, const net::TcpListener* l, const std::string& error,
                                size_t connections) {
    r.emplace_back("operStatus", l ? "up" : "down");
    r.emplace_back("lastError", error.empty() ? json::Value() : json::Value(error));
    r.emplace_back("boundPort", l ? json::Value(static_cast<int64_t>(l->port())) : json::Value());
    r.emplace_back("connectionCount", static_cast<int64_t>(connections));
}

void Daemon::register_management() {
    auto& agent = agent_;
    if (log_) agent.log_records = [log = log_](size_t limit) { return log->records(limit); };

    // --- router ---
    Provider router;
    router.query = [this] {
        json::Object row = entity_row(router_entities_.front());
        for (auto& [k, v] : row)
            if (k == "identity") v = json::Value("router/" + router_->settings().id);
        row.emplace_back("name", "router/" + router_->settings().id);
        const auto& c = router_->counters();
        size_t links = router_->links().size();
        size_t blocked = blocked_links();
        size_t conns = mqtt_->connection_count() + amqp_connection_count();
        json::Object ops{{"area", "0"},
                         {"version", trestle::version},
                         {"uptimeSeconds", static_cast<int64_t>((net::monotonic_ms() - started_ms_) / 1000)},
                         {"addrCount", static_cast<int64_t>(router_->addresses().size())},
                         {"linkCount", static_cast<int64_t>(links)},
                         {"nodeCount", 0},
                         {"connectionCount", static_cast<int64_t>(conns)},
                         {"linkRouteCount", static_cast<int64_t>(router_->link_routes().size())},
                         {"autoLinkCount", 0},
                         {"memoryUsage", resident_bytes()},
                         {"presettledDeliveries", c.presettled},
                         {"droppedPresettledDeliveries", c.dropped_presettled},
                         {"acceptedDeliveries", c.accepted},
                         {"rejectedDeliveries", c.rejected},
                         {"releasedDeliveries", c.released},
                         {"modifiedDeliveries", c.modified},
                         {"deliveriesDelayed1Sec", c.delayed_1sec},
                         {"deliveriesDelayed10Sec", c.delayed_10sec},
                         {"deliveriesStuck", static_cast<int64_t>(router_->stuck_deliveries())},
                         {"deliveriesRedirectedToFallback", 0},
                         {"linksBlocked", static_cast<int64_t>(blocked)},
                         {"deliveriesIngress", c.deliveries_ingress},
                         {"deliveriesEgress", c.deliveries_egress},
                         {"deliveriesTransit", 0},
                         {"deliveriesIngressRouteContainer", c.deliveries_ingress_route_container},
                         {"deliveriesEgressRouteContainer", c.deliveries_egress_route_container}};
        for (auto& kv : ops) row.push_back(std::move(kv));
        return std::vector<json::Object>{std::move(row)};
    };
    agent.set_provider("router", router);

    // --- connections: AMQP ones from the core, MQTT ones from the MQTT server (a client that
    // never published has no core connection) ---
    Provider conns;
    conns.query = [this] {
        std::vector<json::Object> rows;
        uint64_t now = router_->now_ms();
        for (const auto& [id, c] : router_->connections()) {
            const auto& i = c->info();
            if (i.protocol != "amqp") continue;
            json::Object r{{"identity", std::to_string(id)},
                           {"name", "connection/" + i.host},
                           {"host", i.host},
                           {"container", i.container_id},
                           {"role", i.role},
                           {"dir", i.inbound ? "in" : "out"},
                           {"protocol", "amqp"},
                           {"isEncrypted", i.encrypted},
                           {"isAuthenticated", i.authenticated},
                           {"sasl", i.sasl_mechanism.empty() ? json::Value() : json::Value(i.sasl_mechanism)},
                           {"user", i.user.empty() ? json::Value("anonymous") : json::Value(i.user)},
                           {"listener", i.listener.empty() ? json::Value() : json::Value(i.listener)},
                           {"uptimeSeconds", static_cast<int64_t>((now - c->opened_ms()) / 1000)},
                           {"lastDlvSeconds", c->last_delivery_ms
                                                  ? json::Value(static_cast<int64_t>((now - c->last_delivery_ms) / 1000))
                                                  : json::Value()},
                           {"deliveriesIn", c->deliveries_in},
                           {"deliveriesOut", c->deliveries_out},
                           {"adminStatus", "enabled"},
                           {"operStatus", "up"}};
            rows.push_back(std::move(r));
        }
        mqtt_->visit_connections([&](mqtt::Connection& m) {
            uint64_t core_id = m.core_connection_id();
            const core::Connection* cc = nullptr;
            if (core_id) {
                auto it = router_->connections().find(core_id);
                if (it != router_->connections().end()) cc = it->second.get();
            }
            std::string id = core_id ? std::to_string(core_id) : "mqtt-" + std::to_string(m.id());
            json::Object r{{"identity", id},
                           {"name", "connection/" + m.remote()},
                           {"host", m.remote()},
                           {"container", m.session() ? json::Value(m.session()->client_id()) : json::Value()},
                           {"role", "normal"},
                           {"dir", "in"},
                           {"protocol", m.websocket() ? "mqtt-ws" : "mqtt"},
                           {"isEncrypted", false},
                           {"isAuthenticated", false},
                           {"user", "anonymous"},
                           {"listener", m.settings().name},
                           {"uptimeSeconds", json::Value()},
                           {"deliveriesIn", cc ? json::Value(cc->deliveries_in) : json::Value(0)},
                           {"adminStatus", "enabled"},
                           {"operStatus", m.closed() ? "closing" : "up"}};
            if (cc) r.emplace_back("uptimeSeconds", static_cast<int64_t>((now - cc->opened_ms()) / 1000));
            rows.push_back(std::move(r));
        });
        return rows;
    };
    conns.update = [this](const json::Object& row, const json::Object& changes) -> Status {
        for (const auto& [k, v] : changes) {
            if (k != "adminStatus") continue;
            if (v.as_string() != "deleted") return {};
            std::string id = text_of(row, "identity");
            core::ErrorCondition why{core::condition::connection_forced, "closed by management"};
            if (id.rfind("mqtt-", 0) == 0) {
                uint32_t want = static_cast<uint32_t>(std::stoul(id.substr(5)));
                mqtt_->visit_connections([&](mqtt::Connection& m) {
                    if (m.id() == want) m.close(why);
                });
            } else {
                auto it = router_->connections().find(std::stoull(id));
                if (it == router_->connections().end())
                    return Status::error(status::not_found, "connection " + id + " is gone");
                // Closed after this request is answered: closing may re-enter the core.
                core::ConnectionPort* port = it->second->port();
                uint64_t cid = it->first;
                asio::post(loop_.io(), [this, port, cid, why] {
                    if (router_->connections().count(cid)) port->close(why);
                });
            }
            logger().info("management: connection {} closed by an operator", id);
        }
        return {};
    };
    agent.set_provider("connection", conns);

    // --- links ---
    Provider links;
    links.query = [this] {
        std::vector<json::Object> rows;
        uint64_t now = router_->now_ms();
        for (const auto& [id, l] : router_->links()) {
            const auto& c = l->counters();
            bool out = l->direction() == core::Direction::outgoing;
            json::Value owning;
            if (l->address()) owning = address_key(l->address()->name());
            json::Array subs;
            for (const auto& s : l->subscriptions()) subs.emplace_back(s);
            json::Object r{{"identity", std::to_string(id)},
                           {"name", l->name()},
                           {"linkName", l->name()},
                           {"linkType", "endpoint"},
                           {"linkDir", out ? "out" : "in"},
                           {"owningAddr", owning},
                           {"capacity", static_cast<int64_t>(l->capacity())},
                           {"peer", l->routed_peer() ? json::Value(std::to_string(l->routed_peer()->id())) : json::Value()},
                           {"undeliveredCount", static_cast<int64_t>(l->undelivered_count())},
                           {"unsettledCount", static_cast<int64_t>(l->unsettled_count())},
                           {"deliveryCount", c.delivery_count},
                           {"connectionId", l->connection() ? json::Value(std::to_string(l->connection()->id())) : json::Value()},
                           {"adminStatus", "enabled"},
                           {"operStatus", "up"},
                           {"presettledCount", c.presettled},
                           {"droppedPresettledCount", c.dropped_presettled},
                           {"acceptedCount", c.accepted},
                           {"rejectedCount", c.rejected},
                           {"releasedCount", c.released},
                           {"modifiedCount", c.modified},
                           {"deliveriesDelayed1Sec", 0},
                           {"deliveriesDelayed10Sec", 0},
                           {"deliveriesStuck", 0},
                           {"creditAvailable", static_cast<int64_t>(l->credit())},
                           {"zeroCreditSeconds", l->zero_credit_since_ms() && l->credit() <= 0
                                                     ? static_cast<int64_t>((now - l->zero_credit_since_ms()) / 1000)
                                                     : 0},
                           {"settleRate", 0},
                           {"priority", 4},
                           {"subscriptions", std::move(subs)}};
            rows.push_back(std::move(r));
        }
        return rows;
    };
    agent.set_provider("router.link", links);

    // --- addresses ---
    Provider addrs;
    addrs.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& [name, a] : router_->addresses()) {
            const auto& c = a->counters();
            std::string key = address_key(name);
            json::Object r{{"identity", key},
                           {"name", key},
                           {"key", key},
                           {"distribution", std::string(core::to_string(a->distribution()))},
                           {"inProcess", name == "$management"},
                           {"subscriberCount", static_cast<int64_t>(a->consumers().size() + a->filter_matches())},
                           {"remoteCount", 0},
                           {"containerCount", 0},
                           {"remoteHostRouters", 0},
                           {"deliveriesIngress", c.deliveries_ingress},
                           {"deliveriesEgress", c.deliveries_egress},
                           {"deliveriesTransit", 0},
                           {"deliveriesToContainer", c.deliveries_to_container},
                           {"deliveriesFromContainer", c.deliveries_from_container},
                           {"deliveriesRedirectedToFallback", 0},
                           {"priority", -1},
                           {"waypoint", a->waypoint() != nullptr}};
            rows.push_back(std::move(r));
        }
        return rows;
    };
    agent.set_provider("router.address", addrs);

    // --- AMQP listeners ---
    Provider listeners;
    listeners.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& lc : listener_configs_) {
            json::Object r = entity_row(lc->entity);
            add_listener_state(r, lc->listener.get(), lc->error, connections_on(*lc));
            rows.push_back(std::move(r));
        }
        return rows;
    };
    listeners.create = [this](const Entity& e, json::Object& row) -> Status {
        std::unique_ptr<ListenerConfig> lc;
        try {
            lc = make_listener(e);
        } catch (const ConfigError& ce) {
            return bad(ce);
        }
        if (std::string err = start_listener(*lc); !err.empty())
            return Status::error(status::bad_request, err);
        row = entity_row(lc->entity);
        row.emplace_back("operStatus", "up");
        row.emplace_back("boundPort", static_cast<int64_t>(lc->listener->port()));
        listener_configs_.push_back(std::move(lc));
        return {};
    };
    listeners.remove = [this](const json::Object& row) -> Status {
        for (auto it = listener_configs_.begin(); it != listener_configs_.end(); ++it)
            if ((*it)->name == text_of(row, "name")) {
                if ((*it)->listener) (*it)->listener->close();
                logger().info("listener '{}' deleted by management", (*it)->name);
                listener_configs_.erase(it);
                return {};
            }
        return Status::error(status::not_found, "no such listener");
    };
    agent.set_provider("listener", listeners);

    // --- MQTT listeners ---
    Provider mqtt_listeners;
    mqtt_listeners.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& mc : mqtt_configs_) {
            json::Object r = entity_row(mc->entity);
            add_listener_state(r, mc->listener.get(), mc->error, mqtt_->connections_on(mc->settings.name));
            rows.push_back(std::move(r));
        }
        return rows;
    };
    mqtt_listeners.create = [this](const Entity& e, json::Object& row) -> Status {
        std::unique_ptr<MqttListenerConfig> mc;
        try {
            mc = make_mqtt_listener(e);
        } catch (const ConfigError& ce) {
            return bad(ce);
        }
        if (std::string err = start_mqtt_listener(*mc); !err.empty())
            return Status::error(status::bad_request, err);
        row = entity_row(mc->entity);
        row.emplace_back("operStatus", "up");
        row.emplace_back("boundPort", static_cast<int64_t>(mc->listener->port()));
        mqtt_configs_.push_back(std::move(mc));
        return {};
    };
    mqtt_listeners.remove = [this](const json::Object& row) -> Status {
        for (auto it = mqtt_configs_.begin(); it != mqtt_configs_.end(); ++it)
            if ((*it)->settings.name == text_of(row, "name")) {
                if ((*it)->listener) (*it)->listener->close();
                (*it)->listener.reset();
                logger().info("mqttListener '{}' deleted by management", (*it)->settings.name);
                retired_mqtt_.push_back(std::move(*it));
                mqtt_configs_.erase(it);
                return {};
            }
        return Status::error(status::not_found, "no such mqttListener");
    };
    agent.set_provider("mqttListener", mqtt_listeners);

    // --- HTTP listeners (configured only: probes should not come and go at runtime) ---
    Provider http_listeners;
    http_listeners.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& hc : http_configs_) {
            json::Object r = entity_row(hc->entity);
            add_listener_state(r, hc->listener.get(), hc->error, hc->endpoint ? hc->endpoint->connections() : 0);
            rows.push_back(std::move(r));
        }
        return rows;
    };
    agent.set_provider("httpListener", http_listeners);

    // --- connectors ---
    Provider connectors;
    connectors.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& cc : connector_configs_) {
            json::Object r = entity_row(cc->entity);
            std::string st = cc->connector ? cc->connector->status() : "";
            r.emplace_back("operStatus", st == "SUCCESS" ? "up" : "down");
            r.emplace_back("lastError", cc->connector && !cc->connector->message().empty()
                                            ? json::Value(cc->connector->message())
                                            : json::Value());
            r.emplace_back("connectionStatus", st);
            rows.push_back(std::move(r));
        }
        return rows;
    };
    connectors.create = [this](const Entity& e, json::Object& row) -> Status {
        std::unique_ptr<ConnectorConfig> cc;
        try {
            cc = make_connector(e);
        } catch (const ConfigError& ce) {
            return bad(ce);
        }
        start_connector(*cc);
        row = entity_row(cc->entity);
        connector_configs_.push_back(std::move(cc));
        return {};
    };
    connectors.remove = [this](const json::Object& row) -> Status {
        for (auto it = connector_configs_.begin(); it != connector_configs_.end(); ++it)
            if ((*it)->settings.name == text_of(row, "name")) {
                for (const auto& lr : router_->link_routes())
                    if (lr.connection == (*it)->settings.name)
                        return Status::error(status::bad_request,
                                             "linkRoute '" + lr.name + "' uses this connector: "
                                             "delete it first");
                if ((*it)->connector) (*it)->connector->stop();
                connector_configs_.erase(it);
                return {};
            }
        return Status::error(status::not_found, "no such connector");
    };
    agent.set_provider("connector", connectors);

    // --- address rules ---
    Provider address_rules;
    address_rules.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& e : address_entities_) rows.push_back(entity_row(e));
        return rows;
    };
    address_rules.create = [this](const Entity& e, json::Object& row) -> Status {
        try {
            add_address(e);
        } catch (const ConfigError& ce) {
            return bad(ce);
        }
        row = entity_row(address_entities_.back());
        logger().info("management: address '{}' created", address_entities_.back().str("name"));
        return {};
    };
    address_rules.remove = [this](const json::Object& row) -> Status {
        std::string name = text_of(row, "name");
        router_->remove_address_rule(name);
        std::erase_if(address_entities_, [&](const Entity& e) { return e.str("name") == name; });
        logger().info("management: address '{}' deleted", name);
        return {};
    };
    agent.set_provider("router.config.address", address_rules);

    // --- link routes ---
    Provider link_routes;
    link_routes.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& e : link_route_entities_) {
            json::Object r = entity_row(e);
            bool active = false;
            for (const auto& [id, c] : router_->connections()) {
                const auto& i = c->info();
                if (i.role != "route-container") continue;
                active |= (e.has("connection") && i.connector == e.str("connection")) ||
                          (e.has("containerId") && i.container_id == e.str("containerId"));
            }
            r.emplace_back("operStatus", active ? "active" : "inactive");
            rows.push_back(std::move(r));
        }
        return rows;
    };
    link_routes.create = [this](const Entity& e, json::Object& row) -> Status {
        try {
            add_link_route(e);
        } catch (const ConfigError& ce) {
            return bad(ce);
        }
        row = entity_row(link_route_entities_.back());
        return {};
    };
    link_routes.remove = [this](const json::Object& row) -> Status {
        std::string name = text_of(row, "name");
        router_->remove_link_route(name);
        std::erase_if(link_route_entities_, [&](const Entity& e) { return e.str("name") == name; });
        return {};
    };
    agent.set_provider("router.config.linkRoute", link_routes);

    // --- Kafka ---
    Provider kafka_p;
    kafka_p.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& e : kafka_entities_) {
            if (e.type->short_name != "kafka") continue;
            json::Object r = entity_row(e);
            r.emplace_back("bootstrap", kafka_ ? json::Value(kafka_->bootstrap_servers()) : json::Value());
            kafka::Health h = kafka_ ? kafka_->health() : kafka::Health{};
            r.emplace_back("operStatus", h.up ? "up" : "down");
            r.emplace_back("lastError", h.up ? json::Value() : json::Value(h.reason));
            r.emplace_back("retainedCount", static_cast<int64_t>(router_->retained().size()));
            rows.push_back(std::move(r));
        }
        return rows;
    };
    agent.set_provider("kafka", kafka_p);
    Provider kafka_routes;
    kafka_routes.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& e : kafka_entities_) {
            if (e.type->short_name != "kafkaRoute") continue;
            json::Object r = entity_row(e);
            if (kafka_) {
                kafka::RouteCounters c = kafka_->counters(e.str("name"));
                r.emplace_back("produced", c.produced);
                r.emplace_back("produceFailed", c.produce_failed);
                r.emplace_back("inFlight", c.in_flight);
                r.emplace_back("consumed", c.consumed);
                r.emplace_back("deadLettered", c.dead_lettered);
                r.emplace_back("redelivered", c.redelivered);
                json::Array parts;
                int64_t total = 0;
                bool known = false;
                for (const auto& l : kafka_->lag(e.str("name"))) {
                    auto opt = [](int64_t v) { return v < 0 ? json::Value() : json::Value(v); };
                    parts.emplace_back(json::Array{static_cast<int64_t>(l.partition), opt(l.committed),
                                                   opt(l.position), opt(l.high), opt(l.lag)});
                    if (l.lag >= 0) {
                        total += l.lag;
                        known = true;
                    }
                }
                r.emplace_back("partitions", std::move(parts));
                r.emplace_back("lag", known ? json::Value(total) : json::Value());
            }
            rows.push_back(std::move(r));
        }
        return rows;
    };
    kafka_routes.create = [this](const Entity& e, json::Object& row) -> Status {
        if (!kafka_)
            return Status::error(status::bad_request, "no kafka entity is configured: kafkaRoutes need one");
        kafka::RouteSettings r;
        try {
            r = kafka_route(e);
        } catch (const ConfigError& ce) {
            return bad(ce);
        }
        if (std::string err = kafka_->add_route(r); !err.empty())
            return Status::error(status::bad_request, err);
        Entity stored = e;
        stored.attributes["name"] = json::Value(r.name);
        kafka_entities_.push_back(stored);
        row = entity_row(stored);
        logger().info("management: kafkaRoute '{}' created", r.name);
        return {};
    };
    kafka_routes.remove = [this](const json::Object& row) -> Status {
        std::string name = text_of(row, "name");
        if (kafka_) kafka_->remove_route(name);
        std::erase_if(kafka_entities_, [&](const Entity& e) {
            return e.type->short_name == "kafkaRoute" && e.str("name") == name;
        });
        logger().info("management: kafkaRoute '{}' deleted", name);
        return {};
    };
    agent.set_provider("kafkaRoute", kafka_routes);

    // --- logs: one row per module; DEFAULT's level applies to modules without their own ---
    Provider logs;
    logs.query = [] {
        std::vector<json::Object> rows;
        for (logs::Module m : logs::all_modules) {
            std::string n(logs::name(m));
            rows.push_back(json::Object{{"identity", "log/" + n},
                                        {"name", "log/" + n},
                                        {"module", n},
                                        {"enable", logs::has_own_level(m) ? json::Value(level_name(logs::level(m)))
                                                                          : json::Value()},
                                        {"includeTimestamp", true},
                                        {"includeSource", false},
                                        {"outputFile", "stderr"}});
        }
        return rows;
    };
    logs.update = [](const json::Object& row, const json::Object& changes) -> Status {
        auto module = logs::parse(text_of(row, "module"));
        if (!module) return Status::error(status::not_found, "no such log module");
        for (const auto& [k, v] : changes) {
            if (k != "enable") continue;
            auto l = parse_level(v.as_string());
            if (!l)
                return Status::error(status::bad_request,
                                     "enable '" + v.as_string() + "' is not a level (trace+, "
                                     "debug+, info+, warning+, error+, critical+, none)");
            logs::set_level(*module, *l);
            logger().info("management: log level of {} set to {}", logs::name(*module), level_name(*l));
        }
        return {};
    };
    agent.set_provider("log", logs);

    // --- memory (qdstat -m) ---
    Provider alloc;
    alloc.query = [this] {
        std::vector<json::Object> rows;
        auto row = [&](const char* what, size_t size, size_t count) {
            rows.push_back(json::Object{{"identity", std::string("allocator/") + what},
                                        {"name", std::string("allocator/") + what},
                                        {"typeName", what},
                                        {"typeSize", static_cast<int64_t>(size)},
                                        {"transferBatchSize", 0},
                                        {"localFreeListMax", 0},
                                        {"globalFreeListMax", 0},
                                        {"totalAllocFromHeap", static_cast<int64_t>(count)},
                                        {"totalFreeToHeap", 0},
                                        {"heldByThreads", static_cast<int64_t>(count)},
                                        {"batchesRebalancedToThreads", 0},
                                        {"batchesRebalancedToGlobal", 0}});
        };
        row("trestle::core::Delivery", sizeof(core::Delivery), router_->live_deliveries());
        row("trestle::core::Link", sizeof(core::Link), router_->links().size());
        row("trestle::core::Connection", sizeof(core::Connection), router_->connections().size());
        row("trestle::core::Address", sizeof(core::Address), router_->addresses().size());
        row("trestle::mqtt::Session", sizeof(mqtt::Session), mqtt_->sessions().size());
        return rows;
    };
    agent.set_provider("allocator", alloc);

    // --- MQTT sessions ---
    Provider sessions;
    sessions.query = [this] {
        std::vector<json::Object> rows;
        for (const auto& [id, s] : mqtt_->sessions()) {
            json::Array subs;
            for (const auto& [f, sub] : s->subscriptions())
                subs.emplace_back(json::Array{f, static_cast<int64_t>(sub.qos)});
            mqtt::Connection* c = s->connection();
            rows.push_back(json::Object{
                {"identity", "mqttSession/" + s->client_id()},
                {"name", "mqttSession/" + s->client_id()},
                {"clientId", s->client_id()},
                {"connected", c != nullptr},
                {"protocolVersion", s->level() == 5 ? "5" : "3.1.1"},
                {"host", c ? json::Value(c->remote()) : json::Value()},
                {"expiryIntervalSeconds", static_cast<int64_t>(s->expiry_interval())},
                {"subscriptions", std::move(subs)},
                {"queued", static_cast<int64_t>(s->queued())},
                {"inflight", static_cast<int64_t>(s->inflight())},
                {"dropped", s->dropped()}});
        }
        return rows;
    };
    sessions.remove = [this](const json::Object& row) -> Status {
        std::string id;
        for (const auto& [k, v] : row)
            if (k == "clientId" && v.is_string()) id = v.as_string();
        if (!mqtt_->end_session(id)) return Status::error(status::not_found, "no such MQTT session");
        return {};
    };
    agent.set_provider("mqttSession", sessions);

    // --- retained messages ---
    Provider retained;
    retained.query = [this] {
        std::vector<json::Object> rows;
        uint64_t now = router_->now_ms();
        auto add = [&](std::string_view topic, const core::MessageRef& m) {
            rows.push_back(json::Object{
                {"identity", "retained/" + std::string(topic)},
                {"name", std::string(topic)},
                {"topic", std::string(topic)},
                {"qos", static_cast<int64_t>(m->qos)},
                {"size", static_cast<int64_t>(m->size())},
                {"format", m->format() == core::MessageFormat::mqtt ? "mqtt" : "amqp"},
                {"expiresInSeconds", m->expires_at_ms ? json::Value(static_cast<int64_t>(
                                                            m->expires_at_ms > now ? (m->expires_at_ms - now) / 1000 : 0))
                                                      : json::Value()}});
        };
        router_->retained().match("#", add);
        return rows;
    };
    agent.set_provider("retained", retained);

    agent_endpoint_ = std::make_unique<management::AgentEndpoint>(
        *router_, agent_, [this](std::function<void()> fn) { asio::post(loop_.io(), std::move(fn)); });
    agent_endpoint_->start();
}

}  // namespace trestle::app
