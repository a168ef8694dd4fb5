// What the Kafka integration tests share: the mock cluster per test, a trestled bound to it,
// and small helpers. (Named namespace: the fixture is one type across the test files.)
#pragma once

#include <gtest/gtest.h>

#include <regex>

#include <proton/annotation_key.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <unistd.h>

#include "amqp_client.hpp"
#include "kafka_helpers.hpp"
#include "mqtt_helpers.hpp"
#include "router_process.hpp"

namespace trestle::test {

inline int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline std::string router_config(const std::string& id, const std::string& bootstrap,
                                 const std::string& extra = "",
                                 const std::string& kafka_extra = "") {
    return "router {\n    id: " + id +
           "\n}\n"
           "listener {\n    name: amqp\n    host: 127.0.0.1\n    port: 0\n}\n"
           "mqttListener {\n    name: mqtt\n    host: 127.0.0.1\n    port: 0\n}\n"
           "address {\n    prefix: jobs\n    distribution: balanced\n}\n" +
           kafka_section(bootstrap, kafka_extra) +
           "kafkaRoute {\n    name: telemetry\n    pattern: telemetry/#\n    topic: telemetry\n}\n"
           "kafkaRoute {\n    name: jobs\n    prefix: jobs\n    topic: jobs\n}\n" +
           extra;
}

// A trestled bound to the mock cluster, ready once its consumers own their partitions.
struct Instance {
    Instance(const std::string& id, const std::string& bootstrap, const std::string& extra = "",
             const std::string& kafka_extra = "", std::vector<std::string> args = {})
        : router(std::make_unique<RouterProcess>(router_config(id, bootstrap, extra, kafka_extra),
                                                 std::move(args))) {
        mqtt_port = router->port("mqtt");
        amqp_url = router->url("amqp");
    }
    // Waits until the route's consumer has been assigned its partitions.
    bool consuming(const std::string& route, Duration t = 20s) {
        return !router->process()
                    .wait_for_line(std::regex("kafkaRoute '" + route + "': assigned topic"), t)
                    .empty();
    }
    std::unique_ptr<RouterProcess> router;
    int mqtt_port = 0;
    std::string amqp_url;
};

class Kafka : public ::testing::Test {
  protected:
    void SetUp() override {
        kafka = std::make_unique<KafkaMock>();
        kafka->topic("telemetry", 4);
        kafka->topic("jobs", 2);
    }
    std::unique_ptr<KafkaMock> kafka;
};

// True once the publish was acknowledged with success; false on failure or timeout.
inline bool acked(const ::mqtt::delivery_token_ptr& t, Duration timeout) {
    try {
        return t->wait_for(timeout) && t->get_reason_code() == 0;
    } catch (const ::mqtt::exception&) {
        return false;
    }
}

// The reason code of a QoS 1 publish: the PUBACK's, or the one it failed with.
inline int publish_reason(Paho& c, const std::string& topic, const std::string& payload) {
    try {
        return c.publish(topic, payload, 1);
    } catch (const ::mqtt::exception& e) {
        return e.get_reason_code();
    }
}

inline std::string body_text(const proton::message& m) {
    if (m.body().type() == proton::BINARY)
        return std::string(proton::get<proton::binary>(m.body()));
    return proton::get<std::string>(m.body());
}

}  // namespace trestle::test
