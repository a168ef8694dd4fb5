#include "kafka/embedded.hpp"

#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>

namespace trestle::kafka {

EmbeddedCluster::EmbeddedCluster(int brokers) : brokers_(brokers) {
    std::string err;
    // No bootstrap servers: the handle only hosts the cluster (librdkafka warns, harmlessly).
    rd_kafka_conf_t* conf = make_conf({{"client.id", "trestle-embedded-kafka"}, {"log_level", "3"}},
                                      {}, err, ClientKind::metadata);
    if (!conf) throw std::runtime_error(err);
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error(std::string("embedded Kafka: ") + errstr);
    }
    owner_.reset(rk);
    cluster_ = rd_kafka_mock_cluster_new(rk, brokers);
    if (!cluster_) throw std::runtime_error("embedded Kafka: the mock cluster did not start");
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
}

EmbeddedCluster::~EmbeddedCluster() {
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

bool EmbeddedCluster::create_topic(const std::string& name, int partitions, std::string& err) {
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, brokers_ < 3 ? brokers_ : 3);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        err = "cannot create topic '" + name + "': " + rd_kafka_err2str(e);
        return false;
    }
    return true;
}

}  // namespace trestle::kafka
