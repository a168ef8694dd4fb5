// What management may change (app/operations.hpp): entities created and deleted at runtime,
// connections closed, MQTT sessions ended. Each change is logged.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "app/daemon.hpp"
#include "app/entities/entities.hpp"
#include "util/log.hpp"

namespace trestle::app {

namespace {

spdlog::logger& logger() {
    return logs::get(logs::Module::MANAGEMENT);
}

namespace status = management::status;
using management::ConfigError;
using management::Entity;
using Status = management::Status;
using entities::entity_row;

Status bad(const ConfigError& e) {
    std::string m = e.what();
    size_t cut = m.find(": ");
    return Status::error(status::bad_request, cut == std::string::npos ? m : m.substr(cut + 2));
}

}  // namespace

Status Daemon::create(std::string_view type, const Entity& e, json::Object& row) {
    try {
        if (type == "listener") {
            std::unique_ptr<ListenerConfig> lc = make_listener(e);
            if (std::string err = start_listener(*lc); !err.empty())
                return Status::error(status::bad_request, err);
            row = entity_row(lc->entity);
            row.emplace_back("operStatus", "up");
            row.emplace_back("boundPort", static_cast<int64_t>(lc->listener->port()));
            listener_configs_.push_back(std::move(lc));
        } else if (type == "mqttListener") {
            std::unique_ptr<MqttListenerConfig> mc = make_mqtt_listener(e);
            if (std::string err = start_mqtt_listener(*mc); !err.empty())
                return Status::error(status::bad_request, err);
            row = entity_row(mc->entity);
            row.emplace_back("operStatus", "up");
            row.emplace_back("boundPort", static_cast<int64_t>(mc->listener->port()));
            mqtt_configs_.push_back(std::move(mc));
        } else if (type == "connector") {
            std::unique_ptr<ConnectorConfig> cc = make_connector(e);
            start_connector(*cc);
            row = entity_row(cc->entity);
            connector_configs_.push_back(std::move(cc));
        } else if (type == "router.config.address") {
            add_address(e);
            row = entity_row(address_entities_.back());
            logger().info("management: address '{}' created", address_entities_.back().str("name"));
        } else if (type == "router.config.linkRoute") {
            add_link_route(e);
            row = entity_row(link_route_entities_.back());
        } else if (type == "kafkaRoute") {
            if (!kafka_)
                return Status::error(status::bad_request,
                                     "no kafka entity is configured: kafkaRoutes need one");
            kafka::RouteSettings r = kafka_route(e);
            if (std::string err = kafka_->add_route(r); !err.empty())
                return Status::error(status::bad_request, err);
            Entity stored = e;
            stored.attributes["name"] = json::Value(r.name);
            kafka_route_entities_.push_back(stored);
            row = entity_row(stored);
            logger().info("management: kafkaRoute '{}' created", r.name);
        } else if (type == "vhost") {
            if (router_->policy().vhost(e.str("hostname")))
                return Status::error(status::bad_request,
                                     "vhost '" + e.str("hostname") + "' exists: UPDATE it");
            add_vhost(e);
            row = entity_row(vhost_entities_.back());
            logger().info("management: vhost '{}' created", e.str("hostname"));
        } else {
            return Status::error(status::bad_request, "cannot create a " + std::string(type));
        }
    } catch (const ConfigError& ce) {
        return bad(ce);
    }
    return {};
}

Status Daemon::remove(std::string_view type, const std::string& name) {
    if (type == "listener") {
        for (auto it = listener_configs_.begin(); it != listener_configs_.end(); ++it)
            if ((*it)->name == name) {
                if ((*it)->listener) (*it)->listener->close();
                logger().info("listener '{}' deleted by management", (*it)->name);
                listener_configs_.erase(it);
                return {};
            }
        return Status::error(status::not_found, "no such listener");
    }
    if (type == "mqttListener") {
        for (auto it = mqtt_configs_.begin(); it != mqtt_configs_.end(); ++it)
            if ((*it)->settings.name == name) {
                if ((*it)->listener) (*it)->listener->close();
                (*it)->listener.reset();
                logger().info("mqttListener '{}' deleted by management", (*it)->settings.name);
                retired_mqtt_.push_back(std::move(*it));
                mqtt_configs_.erase(it);
                return {};
            }
        return Status::error(status::not_found, "no such mqttListener");
    }
    if (type == "connector") {
        for (auto it = connector_configs_.begin(); it != connector_configs_.end(); ++it)
            if ((*it)->settings.name == name) {
                for (const auto& lr : router_->link_routes())
                    if (lr.connection == (*it)->settings.name)
                        return Status::error(
                            status::bad_request,
                            "linkRoute '" + lr.name + "' uses this connector: delete it first");
                if ((*it)->connector) (*it)->connector->stop();
                connector_configs_.erase(it);
                return {};
            }
        return Status::error(status::not_found, "no such connector");
    }
    if (type == "router.config.address") {
        router_->remove_address_rule(name);
        std::erase_if(address_entities_, [&](const Entity& e) { return e.str("name") == name; });
        logger().info("management: address '{}' deleted", name);
        return {};
    }
    if (type == "router.config.linkRoute") {
        router_->remove_link_route(name);
        std::erase_if(link_route_entities_, [&](const Entity& e) { return e.str("name") == name; });
        return {};
    }
    if (type == "kafkaRoute") {
        if (kafka_) kafka_->remove_route(name);
        std::erase_if(kafka_route_entities_,
                      [&](const Entity& e) { return e.str("name") == name; });
        logger().info("management: kafkaRoute '{}' deleted", name);
        return {};
    }
    if (type == "vhost") {
        if (!router_->policy().remove_vhost(name))
            return Status::error(status::not_found, "no such vhost");
        std::erase_if(vhost_entities_, [&](const Entity& e) { return e.str("hostname") == name; });
        logger().info("management: vhost '{}' deleted", name);
        return {};
    }
    return Status::error(status::bad_request, "cannot delete a " + std::string(type));
}

Status Daemon::update(std::string_view type, const std::string& name, const json::Object& changes) {
    if (type != "vhost")
        return Status::error(status::bad_request, "cannot update a " + std::string(type));
    auto it = std::find_if(vhost_entities_.begin(), vhost_entities_.end(),
                           [&](const Entity& e) { return e.str("hostname") == name; });
    if (it == vhost_entities_.end()) return Status::error(status::not_found, "no such vhost");
    Entity e = *it;
    for (const auto& [k, v] : changes) e.attributes[k] = v;
    try {
        add_vhost(e);
    } catch (const ConfigError& ce) {
        return bad(ce);
    }
    logger().info("management: vhost '{}' updated (new connections get its rules)", name);
    return {};
}

Status Daemon::close_connection(const std::string& id) {
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
        boost::asio::post(loop_.io(), [this, port, cid, why] {
            if (router_->connections().count(cid)) port->close(why);
        });
    }
    logger().info("management: connection {} closed by an operator", id);
    return {};
}

Status Daemon::end_mqtt_session(const std::string& client_id) {
    if (!mqtt_->end_session(client_id))
        return Status::error(status::not_found, "no such MQTT session");
    return {};
}

}  // namespace trestle::app
