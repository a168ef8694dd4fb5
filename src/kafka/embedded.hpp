// The embedded Kafka: librdkafka's mock cluster (a real Kafka-protocol listener on loopback,
// in memory, volatile) for a laptop, a demo, or a gateway that only wants the routing.
#pragma once

#include <string>

#include "kafka/client.hpp"

struct rd_kafka_mock_cluster_s;

namespace trestle::kafka {

class EmbeddedCluster {
  public:
    // Throws std::runtime_error when the cluster cannot start.
    explicit EmbeddedCluster(int brokers);
    ~EmbeddedCluster();
    EmbeddedCluster(const EmbeddedCluster&) = delete;
    EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

    const std::string& bootstrap_servers() const { return bootstraps_; }
    // Creates a topic (the mock has no CreateTopics API); an existing one is left as it is.
    bool create_topic(const std::string& name, int partitions, std::string& err);

  private:
    Handle owner_;  // the handle the mock cluster lives in
    rd_kafka_mock_cluster_s* cluster_ = nullptr;
    std::string bootstraps_;
    int brokers_;
};

}  // namespace trestle::kafka
