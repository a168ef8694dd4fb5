// What management may change in a running router: CREATE and DELETE of configurable entities,
// closing a connection, ending an MQTT session. Implemented by the Daemon (operations.cpp), the
// one module that can build listeners, connectors and routes; the entity providers
// (app/entities/) call it and read everything else through app/view.hpp.
#pragma once

#include <string>
#include <string_view>

#include "management/agent.hpp"
#include "management/config.hpp"
#include "util/json.hpp"

namespace trestle::app {

class Operations {
  public:
    using Status = management::Status;
    // `type`: listener, mqttListener, connector, router.config.address, router.config.linkRoute
    // or kafkaRoute. On success `row` is the new entity's row.
    virtual Status create(std::string_view type, const management::Entity& e,
                          json::Object& row) = 0;
    virtual Status remove(std::string_view type, const std::string& name) = 0;
    // UPDATE of a configured entity's writable attributes (vhost).
    virtual Status update(std::string_view type, const std::string& name,
                          const json::Object& changes) = 0;
    // `identity` as the connection entity shows it.
    virtual Status close_connection(const std::string& identity) = 0;
    virtual Status end_mqtt_session(const std::string& client_id) = 0;

  protected:
    ~Operations() = default;
};

}  // namespace trestle::app
