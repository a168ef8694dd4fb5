#include "kafka/probe.hpp"

#include <spdlog/spdlog.h>

#include "net/event_loop.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::KAFKA);
}
}  // namespace

Probe::Probe(Properties props, std::vector<std::string> topics, uint32_t period_ms)
    : props_(std::move(props)), period_ms_(period_ms), topics_(std::move(topics)) {}

Probe::~Probe() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::string Probe::start() {
    std::string err;
    Properties defaults{{"client.id", "trestle-probe"},
                        {"reconnect.backoff.max.ms", "1000"},
                        {"socket.connection.setup.timeout.ms", "5000"}};
    rd_kafka_conf_t* conf = make_conf(defaults, props_, err);
    if (!conf) return err;
    // The probe's own failures are what it reports; its logs would repeat the clients'.
    char errbuf[128];
    rd_kafka_conf_set(conf, "log_level", "2", errbuf, sizeof errbuf);
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return std::string("Kafka probe: ") + errstr;
    }
    rk_.reset(rk);
    thread_ = std::thread([this] { run(); });
    return {};
}

void Probe::set_topics(std::vector<std::string> topics) {
    std::lock_guard<std::mutex> g(mu_);
    topics_ = std::move(topics);
}

bool Probe::stopping() const {
    std::lock_guard<std::mutex> g(mu_);
    return stop_;
}

Probe::Reading Probe::reading() const {
    std::lock_guard<std::mutex> g(mu_);
    return reading_;
}

void Probe::offset_for_time(std::string topic, int32_t partition, int64_t time_ms,
                            std::function<void(int64_t offset)> done) {
    {
        std::lock_guard<std::mutex> g(mu_);
        lookups_.push_back({std::move(topic), partition, time_ms, std::move(done)});
    }
    cv_.notify_all();
}

void Probe::lookup(Lookup& l) {
    PartitionList q(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(q.get(), l.topic.c_str(), l.partition)->offset = l.time_ms;
    bool ok = rd_kafka_offsets_for_times(rk_.get(), q.get(), 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              !q->elems[0].err;
    l.done(ok ? q->elems[0].offset : -1);
}

void Probe::run() {
    std::unique_lock<std::mutex> lock(mu_);
    auto next_check = std::chrono::steady_clock::now();
    while (!stop_) {
        while (!lookups_.empty() && !stop_) {
            Lookup l = std::move(lookups_.front());
            lookups_.pop_front();
            lock.unlock();
            lookup(l);
            lock.lock();
        }
        if (std::chrono::steady_clock::now() >= next_check) {
            lock.unlock();
            check();
            lock.lock();
            next_check = std::chrono::steady_clock::now() + std::chrono::milliseconds(period_ms_);
        }
        cv_.wait_until(lock, next_check, [this] { return stop_ || !lookups_.empty(); });
    }
}

void Probe::check() {
    std::vector<std::string> topics;
    {
        std::lock_guard<std::mutex> g(mu_);
        topics = topics_;
    }
    int timeout = static_cast<int>(std::max<uint32_t>(period_ms_, 1000));
    // No topic handle and all_topics=0: the brokers only, a cheap request any broker answers.
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, nullptr, &md, timeout);
    if (md) rd_kafka_metadata_destroy(md);
    std::map<std::pair<std::string, int32_t>, int64_t> high;
    if (!err) {
        for (const auto& t : topics) {
            if (stopping()) return;  // shutdown waits for this thread: no more round trips
            rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), t.c_str(), nullptr);
            if (!rkt) continue;
            const rd_kafka_metadata_t* tmd = nullptr;
            if (rd_kafka_metadata(rk_.get(), 0, rkt, &tmd, timeout) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                tmd) {
                for (int i = 0; i < tmd->topic_cnt; ++i)
                    for (int p = 0; p < tmd->topics[i].partition_cnt && !stopping(); ++p) {
                        int32_t part = tmd->topics[i].partitions[p].id;
                        int64_t lo = -1, hi = -1;
                        if (rd_kafka_query_watermark_offsets(rk_.get(), t.c_str(), part, &lo, &hi,
                                                             timeout) == RD_KAFKA_RESP_ERR_NO_ERROR)
                            high[{t, part}] = hi;
                    }
            }
            if (tmd) rd_kafka_metadata_destroy(tmd);
            rd_kafka_topic_destroy(rkt);
        }
    }
    uint64_t now = net::monotonic_ms();
    std::lock_guard<std::mutex> g(mu_);
    bool was = reading_.reachable || !reading_.checked;
    reading_.checked = true;
    reading_.reachable = !err;
    if (!err) {
        reading_.error.clear();
        reading_.down_since_ms = 0;
        // Keep what a failed watermark query did not refresh: a stale end beats none.
        for (auto& [k, v] : high) reading_.high[k] = v;
    } else {
        reading_.error = rd_kafka_err2str(err);
        if (!reading_.down_since_ms) reading_.down_since_ms = now;
    }
    // Logged once the reading holds the change (tests wait for these lines, then ask /readyz).
    if (!err && !was) logger().info("kafka: brokers answer again");
    if (err && was) logger().warn("kafka: no broker answers: {}", rd_kafka_err2str(err));
}

}  // namespace trestle::kafka
