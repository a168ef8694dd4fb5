#include "kafka/state.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <vector>

#include "mapping/kafka.hpp"
#include "trestle/core/topic_filter.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() { return logs::get(logs::Module::KAFKA); }
}  // namespace

namespace {

int64_t epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

KafkaRetainedStore::KafkaRetainedStore(net::EventLoop& loop, rd_kafka_t* producer,
                                       Properties consumer_props, std::string topic,
                                       std::function<uint64_t()> now_ms)
    : loop_(loop),
      producer_(producer),
      consumer_props_(std::move(consumer_props)),
      topic_(std::move(topic)),
      now_ms_(std::move(now_ms)) {}

KafkaRetainedStore::~KafkaRetainedStore() { detach(); }

std::string KafkaRetainedStore::load(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    // The partitions, through the producer (which may auto-create the topic).
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_, topic_.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    int partitions = 0;
    if (!err && md && md->topic_cnt == 1 && !md->topics[0].err) partitions = md->topics[0].partition_cnt;
    std::string why = err ? rd_kafka_err2str(err)
                      : md && md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                                                                      : "";
    if (md) rd_kafka_metadata_destroy(md);
    if (partitions == 0) return "retained messages topic '" + topic_ + "' unavailable: " + why;

    std::string e;
    // A group id only enables librdkafka's consumer queue: partitions are assigned, never
    // subscribed, and nothing is committed.
    Properties defaults{{"group.id", "trestle.state-view"},
                        {"enable.auto.commit", "false"},
                        {"enable.partition.eof", "false"},
                        {"client.id", "trestle-retained"},
                        {"fetch.wait.max.ms", "100"},
                        {"reconnect.backoff.max.ms", "1000"}};
    rd_kafka_conf_t* conf = make_conf(defaults, consumer_props_, e);
    if (!conf) return e;
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return errstr;
    }
    consumer_.reset(rk);
    rd_kafka_poll_set_consumer(rk);
    queue_ = rd_kafka_queue_get_consumer(rk);
    if (!queue_) return "no consumer queue";

    // Where each partition ends now: loading is done when every one is read up to there.
    std::map<int32_t, int64_t> end;
    PartitionList all(rd_kafka_topic_partition_list_new(partitions));
    for (int32_t p = 0; p < partitions; ++p) {
        rd_kafka_topic_partition_list_add(all.get(), topic_.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic_.c_str(), p, &lo, &hi, timeout_ms))
            return "retained messages topic '" + topic_ + "': no offsets for partition " + std::to_string(p);
        if (hi > lo) end[p] = hi;
    }
    rd_kafka_assign(rk, all.get());
    size_t n = 0;
    while (!end.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, static_cast<int>(std::min<int64_t>(left.count(), 100)));
        if (!m) continue;
        if (!m->err) {
            apply(m);
            ++n;
            auto it = end.find(m->partition);
            if (it != end.end() && m->offset + 1 >= it->second) end.erase(it);
        }
        rd_kafka_message_destroy(m);
    }
    waker_ = std::make_unique<QueueWaker>(loop_, queue_, [this] { return serve(); });
    if (!end.empty())
        return "retained messages topic '" + topic_ + "' not read to its end in time (" +
               std::to_string(n) + " records read); continuing in the background";
    logger().info("retained messages: {} loaded from topic '{}' ({} records)", view_.size(), topic_, n);
    return {};
}

void KafkaRetainedStore::detach() {
    waker_.reset();
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
    if (queue_) rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    consumer_.reset();
    producer_ = nullptr;
}

bool KafkaRetainedStore::serve() {
    if (!consumer_) return false;
    int n = 0;
    for (; n < 256; ++n) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 0);
        if (!m) break;
        if (!m->err) apply(m);
        rd_kafka_message_destroy(m);
    }
    return n == 256;
}

// The view follows the topic, own writes included (they come back in Kafka's order, so every
// instance ends with the same last value).
void KafkaRetainedStore::apply(const rd_kafka_message_t* m) {
    if (!m->key) return;
    std::string_view topic(static_cast<const char*>(m->key), m->key_len);
    if (!m->payload) {  // a tombstone
        view_.erase(topic);
        return;
    }
    std::vector<mapping::HeaderView> headers;
    rd_kafka_headers_t* hs = nullptr;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR && hs) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hs, i, &name, &val, &size) == 0; ++i)
            headers.emplace_back(name, std::string_view(static_cast<const char*>(val), val ? size : 0));
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    bool expired = false;
    core::MessageRef msg = mapping::message_from_record(
        topic, std::string_view(static_cast<const char*>(m->payload), m->len), headers,
        ts > 0 ? ts : 0, now_ms_(), epoch_ms(), expired);
    if (!msg) {
        view_.erase(topic);  // expired (or unreadable): nothing retained any more
        return;
    }
    msg->retain = true;
    view_.put(topic, std::move(msg));
}

void KafkaRetainedStore::put(std::string_view topic, core::MessageRef m) {
    view_.put(topic, m);
    if (!producer_) return;
    mapping::KafkaRecord r;
    if (!mapping::record_from_message(*m, topic, {}, now_ms_(), epoch_ms(), r)) return;
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers)
        rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    if (rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
            RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(nullptr), RD_KAFKA_V_END)) {
        rd_kafka_headers_destroy(h);
        logger().error("retained message for '{}' not written to Kafka: {}", topic, rd_kafka_err2str(err));
    }
}

void KafkaRetainedStore::erase(std::string_view topic) {
    view_.erase(topic);
    if (!producer_) return;
    if (rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(topic.data(), topic.size()), RD_KAFKA_V_VALUE(nullptr, 0),
            RD_KAFKA_V_OPAQUE(nullptr), RD_KAFKA_V_END))
        logger().error("retained message deletion for '{}' not written to Kafka: {}", topic,
                      rd_kafka_err2str(err));
}

}  // namespace trestle::kafka
