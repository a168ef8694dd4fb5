#include "kafka/direct_access.hpp"

#include "kafka/client.hpp"

namespace trestle::kafka {

core::ErrorCondition condition_for(rd_kafka_resp_err_t err) {
    std::string what = "Kafka: " + error_text(err);
    switch (err) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
            return {"amqp:unauthorized-access", what};
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
            return {"amqp:link:message-size-exceeded", what};
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
            return {core::condition::not_found, what};
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return {core::condition::resource_limit, what};
        default:
            // Timeouts, brokers down, a fatal producer: worth sending again.
            return {core::condition::internal_error, what};
    }
}

core::ErrorCondition DirectAccess::produce_failed(rd_kafka_resp_err_t err) const {
    return condition_for(err);
}

std::string_view DirectAccess::produce_condition() const {
    return core::condition::internal_error;
}

std::string_view DirectAccess::subscribe_condition() const {
    return core::condition::internal_error;
}

DirectAccess& strimzi_access();
DirectAccess& eventhubs_access();

std::vector<DirectAccess*> direct_dialects() {
    return {&strimzi_access(), &eventhubs_access()};
}

DirectAccess* direct_access_for(std::string_view address) {
    for (DirectAccess* d : direct_dialects())
        if (address.starts_with(d->prefix())) return d;
    return nullptr;
}

}  // namespace trestle::kafka
