// The `$management` entities, one provider per entity type and one file per provider, as
// qdrouterd has an agent_<entity>.c per entity: each answers QUERY from the read-only view of
// the router (app/view.hpp) and hands CREATE / UPDATE / DELETE to the daemon's operations
// (app/operations.hpp). register_entities() (entities.cpp) registers them all.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "app/operations.hpp"
#include "app/view.hpp"
#include "management/agent.hpp"
#include "util/json.hpp"

namespace trestle::app::entities {

using management::Provider;

void register_entities(management::Agent& agent, const View& view, Operations& ops);

Provider router(const View& view);                                            // router.cpp
Provider connection(const View& view, Operations& ops);                       // connection.cpp
Provider link(const View& view);                                              // link.cpp
Provider address(const View& view);                                           // address.cpp
Provider listener(const View& view, Operations& ops, std::string_view type);  // listener.cpp
Provider connector(const View& view, Operations& ops);                        // connector.cpp
Provider address_rule(const View& view, Operations& ops);                     // address_rule.cpp
Provider link_route(const View& view, Operations& ops);                       // link_route.cpp
Provider kafka(const View& view);                                             // kafka.cpp
Provider kafka_route(const View& view, Operations& ops);                      // kafka_route.cpp
Provider log();                                                               // log.cpp
Provider allocator(const View& view);                                         // allocator.cpp
Provider mqtt_session(const View& view, Operations& ops);                     // mqtt_session.cpp
Provider retained(const View& view);                                          // retained.cpp
Provider policy(const View& view);                                            // policy.cpp
Provider vhost(const View& view, Operations& ops);                            // policy.cpp
// A configured type that QUERY/READ report as configured (sslProfile, userStore).
Provider configured(const View& view, std::string_view type);  // security.cpp

// Shared by the providers.
// A configured entity as a row: its attributes, and identity "<type>/<name>".
json::Object entity_row(const management::Entity& e);
// A row's string attribute (empty if absent or not a string).
std::string text_of(const json::Object& row, std::string_view key);
// qdrouterd's address key: M<phase><address> for mobile addresses, L for in-process ones.
std::string address_key(const std::string& name);
// CREATE and DELETE (by the name in its row) of a configured entity type, at runtime.
void runtime_entity(Provider& p, Operations& ops, std::string_view type);

}  // namespace trestle::app::entities
