#include "kafka/probe.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

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
    rd_kafka_conf_t* conf = make_conf(defaults, props_, err, ClientKind::metadata);
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

void Probe::enqueue(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> g(mu_);
        lookups_.push_back(std::move(job));
    }
    cv_.notify_all();
}

void Probe::offset_for_time(std::string topic, int32_t partition, int64_t time_ms,
                            std::function<void(int64_t offset)> done) {
    enqueue([this, topic = std::move(topic), partition, time_ms, done = std::move(done)] {
        PartitionList q(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(q.get(), topic.c_str(), partition)->offset = time_ms;
        bool ok =
            rd_kafka_offsets_for_times(rk_.get(), q.get(), 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            !q->elems[0].err;
        done(ok ? q->elems[0].offset : -1);
    });
}

void Probe::start_offsets(std::shared_ptr<rd_kafka_t> consumer, std::string topic,
                          std::vector<int32_t> partitions, int64_t time_ms,
                          std::function<void(StartOffsets)> done) {
    enqueue([consumer = std::move(consumer), topic = std::move(topic),
             partitions = std::move(partitions), time_ms, done = std::move(done)] {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        auto left_ms = [&deadline] {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
            return static_cast<int>(std::max<int64_t>(ms, 0));
        };
        StartOffsets r;
        PartitionList parts(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
        for (int32_t p : partitions)
            rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), p);
        r.committed_read = rd_kafka_committed(consumer.get(), parts.get(), left_ms()) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!r.committed_read) {
            for (int32_t p : partitions) r.offsets.emplace_back(p, RD_KAFKA_OFFSET_INVALID);
            done(std::move(r));
            return;
        }
        PartitionList q(rd_kafka_topic_partition_list_new(parts->cnt));
        for (int i = 0; i < parts->cnt; ++i)
            if (parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
                rd_kafka_topic_partition_list_add(q.get(), topic.c_str(), parts->elems[i].partition)
                    ->offset = time_ms;
        // The ends as of now, before the time lookup: a partition with nothing since the start
        // time begins exactly there (OFFSET_END would be resolved later, skipping what arrives
        // in between). One request for all partitions: the timestamp -1 asks for the end.
        PartitionList ends(rd_kafka_topic_partition_list_copy(q.get()));
        for (int i = 0; i < ends->cnt; ++i) ends->elems[i].offset = RD_KAFKA_OFFSET_END;
        bool ends_read = q->cnt > 0 && left_ms() > 0 &&
                         rd_kafka_offsets_for_times(consumer.get(), ends.get(), left_ms()) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR;
        r.by_time = q->cnt == 0 || (left_ms() > 0 && rd_kafka_offsets_for_times(
                                                         consumer.get(), q.get(), left_ms()) ==
                                                         RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int i = 0; i < q->cnt; ++i) {
            const auto& t = q->elems[i];
            const auto* end =
                rd_kafka_topic_partition_list_find(ends.get(), topic.c_str(), t.partition);
            auto* e = rd_kafka_topic_partition_list_find(parts.get(), topic.c_str(), t.partition);
            if (r.by_time && !t.err && t.offset >= 0)
                e->offset = t.offset;
            else if (ends_read && end && !end->err && end->offset >= 0)
                e->offset = end->offset;
            else
                e->offset = RD_KAFKA_OFFSET_END;
        }
        for (int i = 0; i < parts->cnt; ++i)
            r.offsets.emplace_back(parts->elems[i].partition, parts->elems[i].offset);
        done(std::move(r));
    });
}

void Probe::nudge(std::shared_ptr<rd_kafka_t> consumer,
                  std::vector<std::pair<std::string, int32_t>> partitions,
                  std::shared_ptr<std::atomic<bool>> busy) {
    enqueue([this, consumer = std::move(consumer), partitions = std::move(partitions),
             busy = std::move(busy)] {
        // One partition per leader is enough: the query wakes that broker's thread, which
        // then decides for all its partitions. A partition of unknown leader is asked alone.
        std::vector<std::pair<std::string, int32_t>> ask;
        {
            std::lock_guard<std::mutex> g(mu_);
            std::vector<int32_t> seen;
            for (const auto& tp : partitions) {
                auto it = leaders_.find(tp);
                if (it != leaders_.end()) {
                    if (std::find(seen.begin(), seen.end(), it->second) != seen.end()) continue;
                    seen.push_back(it->second);
                }
                ask.push_back(tp);
            }
        }
        for (const auto& [topic, p] : ask) {
            if (stopping()) break;
            int64_t lo = -1, hi = -1;
            if (rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), p, &lo, &hi,
                                                 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                std::lock_guard<std::mutex> g(mu_);
                reading_.high[{topic, p}] = hi;  // fresher than the last round trip
            }
        }
        *busy = false;
    });
}

namespace {
// One topic's metadata; the error (or not-found) in `info` when there is none.
const rd_kafka_metadata_topic_t* topic_metadata(rd_kafka_t* rk, const std::string& topic,
                                                const rd_kafka_metadata_t*& md,
                                                Probe::Failure& info) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    if (!rkt) {
        info.error = "invalid topic name";
        info.not_found = true;
        return nullptr;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    if (err || !md || md->topic_cnt != 1) {
        info.error = rd_kafka_err2str(err ? err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
        return nullptr;
    }
    const rd_kafka_metadata_topic_t* t = &md->topics[0];
    if (t->err) {
        info.error = rd_kafka_err2str(t->err);
        info.not_found = t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                         t->err == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
        return nullptr;
    }
    return t;
}
}  // namespace

void Probe::describe_topic(std::string topic, std::function<void(TopicInfo)> done) {
    enqueue([this, topic = std::move(topic), done = std::move(done)] {
        TopicInfo info;
        const rd_kafka_metadata_t* md = nullptr;
        if (const rd_kafka_metadata_topic_t* t = topic_metadata(rk_.get(), topic, md, info))
            for (int p = 0; p < t->partition_cnt; ++p)
                info.partitions.push_back(t->partitions[p].id);
        if (md) rd_kafka_metadata_destroy(md);
        std::sort(info.partitions.begin(), info.partitions.end());
        done(std::move(info));
    });
}

void Probe::describe_partition(std::string topic, int32_t partition,
                               std::function<void(PartitionInfo)> done) {
    enqueue([this, topic = std::move(topic), partition, done = std::move(done)] {
        PartitionInfo info;
        const rd_kafka_metadata_t* md = nullptr;
        bool exists = false;
        if (const rd_kafka_metadata_topic_t* t = topic_metadata(rk_.get(), topic, md, info))
            for (int p = 0; p < t->partition_cnt; ++p) exists |= t->partitions[p].id == partition;
        if (md) rd_kafka_metadata_destroy(md);
        if (info.error.empty() && !exists) {
            info.error = "no partition " + std::to_string(partition);
            info.not_found = true;
        }
        if (info.error.empty()) {
            if (rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                    rk_.get(), topic.c_str(), partition, &info.low, &info.high, 5000))
                info.error = rd_kafka_err2str(e);
            else if (info.high > info.low)
                info.last_time_ms = last_record_time(topic, partition, info.high - 1);
        }
        done(std::move(info));
    });
}

// Reads the record at `offset` for its timestamp (Kafka keeps no per-partition "last appended
// at"). Bounded: 0 when it does not arrive within 2 s (e.g. the offset is a control record).
int64_t Probe::last_record_time(const std::string& topic, int32_t partition, int64_t offset) {
    if (!reader_) {
        std::string err;
        // librdkafka wants a group even to assign; it never joins it nor commits.
        Properties defaults{{"client.id", "trestle-probe-reader"},
                            {"group.id", "trestle-probe-reader"},
                            {"enable.auto.commit", "false"},
                            {"enable.partition.eof", "true"},
                            {"socket.connection.setup.timeout.ms", "5000"}};
        Properties props = props_;
        props.erase("group.id");
        rd_kafka_conf_t* conf = make_conf(defaults, props, err, ClientKind::consumer);
        if (!conf) return 0;
        char errstr[512];
        rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
        if (!rk) {
            rd_kafka_conf_destroy(conf);
            logger().warn("Kafka probe: cannot create a reader: {}", errstr);
            return 0;
        }
        rd_kafka_poll_set_consumer(rk);
        reader_.reset(rk);
    }
    PartitionList l(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(l.get(), topic.c_str(), partition)->offset = offset;
    if (rd_kafka_assign(reader_.get(), l.get())) return 0;
    int64_t ts = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline && !stopping()) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(reader_.get(), 100);
        if (!m) continue;
        bool done = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->err == 0;
        if (!m->err && m->offset == offset) ts = rd_kafka_message_timestamp(m, nullptr);
        rd_kafka_message_destroy(m);
        if (done) break;
    }
    rd_kafka_assign(reader_.get(), nullptr);
    return ts > 0 ? ts : 0;
}

void Probe::run() {
    std::unique_lock<std::mutex> lock(mu_);
    auto next_check = std::chrono::steady_clock::now();
    while (!stop_) {
        while (!lookups_.empty() && !stop_) {
            std::function<void()> job = std::move(lookups_.front());
            lookups_.pop_front();
            lock.unlock();
            job();
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
    std::map<std::pair<std::string, int32_t>, int32_t> leaders;
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
                        leaders[{t, part}] = tmd->topics[i].partitions[p].leader;
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
        for (auto& [k, v] : leaders) leaders_[k] = v;
    } else {
        reading_.error = rd_kafka_err2str(err);
        if (!reading_.down_since_ms) reading_.down_since_ms = now;
    }
    // Logged once the reading holds the change (tests wait for these lines, then ask /readyz).
    if (!err && !was) logger().info("kafka: brokers answer again");
    if (err && was) logger().warn("kafka: no broker answers: {}", rd_kafka_err2str(err));
}

}  // namespace trestle::kafka
