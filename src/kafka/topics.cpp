// Topic creation: the routes' topics, dead-letter topics and the compacted state topics, in
// the embedded cluster or through the admin API of a real one (without holding up start-up).
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "kafka/adapter.hpp"
#include "kafka/embedded.hpp"
#include "kafka/records.hpp"

namespace trestle::kafka {

namespace asio = boost::asio;

std::string Adapter::create_topics() {
    std::vector<std::string> topics;
    for (const auto& r : settings_.routes) {
        topics.push_back(r.topic);
        if (!r.dead_letter_topic.empty()) topics.push_back(r.dead_letter_topic);
    }
    topics.push_back(settings_.dead_letter_topic);
    if (!settings_.retained_topic.empty()) topics.push_back(settings_.retained_topic);
    if (!settings_.sessions_topic.empty()) topics.push_back(settings_.sessions_topic);
    return create_topics(std::move(topics));
}

std::string Adapter::create_topics(std::vector<std::string> topics) {
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    if (embedded_) {
        for (const auto& t : topics) {
            std::string err;
            if (!embedded_->create_topic(t, settings_.embedded_partitions, err)) return err;
        }
        return {};
    }
    // A real cluster: ask for what is missing without holding up start-up (producers wait for
    // a topic's metadata anyway). Existing topics and refusals (no permission, a cluster that
    // auto-creates) are the operator's business: only logged.
    std::vector<rd_kafka_NewTopic_t*> nts;
    char errstr[512];
    for (const auto& t : topics)
        if (auto* nt = rd_kafka_NewTopic_new(t.c_str(), -1, -1, errstr, sizeof errstr)) {
            // State topics keep the last value per key.
            if (t == settings_.retained_topic || t == settings_.sessions_topic)
                rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
            nts.push_back(nt);
        }
    if (!admin_queue_) admin_queue_ = rd_kafka_queue_new(producer_.get());
    rd_kafka_AdminOptions_t* opts =
        rd_kafka_AdminOptions_new(producer_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, 30000, errstr, sizeof errstr);
    rd_kafka_CreateTopics(producer_.get(), nts.data(), nts.size(), opts, admin_queue_);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy_array(nts.data(), nts.size());
    if (admin_waker_) return {};
    admin_waker_ = std::make_unique<QueueWaker>(loop_, admin_queue_, [this] {
        while (rd_kafka_event_t* ev = rd_kafka_queue_poll(admin_queue_, 0)) {
            if (rd_kafka_event_error(ev)) {
                logger().warn("kafka '{}': CreateTopics: {}", settings_.name,
                              rd_kafka_event_error_string(ev));
            } else if (const auto* res = rd_kafka_event_CreateTopics_result(ev)) {
                size_t n = 0;
                const rd_kafka_topic_result_t** rs = rd_kafka_CreateTopics_result_topics(res, &n);
                for (size_t i = 0; i < n; ++i) {
                    auto e = rd_kafka_topic_result_error(rs[i]);
                    if (!e)
                        logger().info("kafka '{}': created topic '{}'", settings_.name,
                                      rd_kafka_topic_result_name(rs[i]));
                    else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        logger().warn("kafka '{}': cannot create topic '{}': {}", settings_.name,
                                      rd_kafka_topic_result_name(rs[i]),
                                      rd_kafka_topic_result_error_string(rs[i]));
                }
            }
            rd_kafka_event_destroy(ev);
        }
        return false;
    });
    return {};
}
}  // namespace trestle::kafka
