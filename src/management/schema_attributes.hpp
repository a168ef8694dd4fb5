// Builders of attribute schemas, shared by the schema's entity files (schema_*.cpp), and one
// function per entity type that each file defines. Included by src/management/schema*.cpp only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "management/schema.hpp"

namespace trestle::management::schema {

inline constexpr const char* prefix = "org.apache.qpid.dispatch.";

AttributeSchema str(std::string name, std::string description, json::Value def = nullptr);
AttributeSchema integer(std::string name, std::string description, int64_t def, int64_t min,
                        int64_t max);
AttributeSchema boolean(std::string name, std::string description, bool def);
AttributeSchema enumeration(std::string name, std::string description,
                            std::vector<std::string> values, json::Value def = nullptr);
AttributeSchema required(AttributeSchema a);
// Known from qdrouterd but not implemented: using it is an error.
AttributeSchema unsupported(std::string name);
AttributeSchema port(std::string description, const char* def = "amqp");
// host and port of a listener.
void listener_address(std::vector<AttributeSchema>& v, std::string port_description,
                      const char* def);
AttributeSchema map(std::string name, std::string description);
// Its default depends on other attributes (the description says how).
AttributeSchema no_default(AttributeSchema a);
AttributeSchema operational(AttributeSchema a);
// A password in the env:/file:/pass: forms (security/secret.hpp); "***" in reads.
AttributeSchema secret(std::string name, std::string description);
AttributeSchema stat(std::string name, std::string description);
AttributeSchema state(std::string name, std::string description);
AttributeSchema flag(std::string name, std::string description);
AttributeSchema list(std::string name, std::string description);
// Attributes shared by AMQP listeners and connectors (qdrouterd's names and defaults).
void amqp_connection_attributes(std::vector<AttributeSchema>& v);

using Types = std::vector<EntityTypeSchema>;
void add_router(Types& types);         // schema_routing.cpp
void add_address(Types& types);        // schema_routing.cpp
void add_link_route(Types& types);     // schema_routing.cpp
void add_listener(Types& types);       // schema_listeners.cpp
void add_mqtt_listener(Types& types);  // schema_listeners.cpp
void add_connector(Types& types);      // schema_listeners.cpp
void add_http_listener(Types& types);  // schema_listeners.cpp
void add_ssl_profile(Types& types);    // schema_security.cpp
void add_user_store(Types& types);     // schema_security.cpp
void add_policy(Types& types);         // schema_security.cpp
void add_vhost(Types& types);          // schema_security.cpp
void add_kafka(Types& types);          // schema_kafka.cpp
void add_kafka_route(Types& types);    // schema_kafka.cpp
// connection, router.link, router.address, log, allocator, mqttSession, retained: reported by
// the router, never configured (schema_operational.cpp).
void add_operational(Types& types);

}  // namespace trestle::management::schema
