// Is Kafka there? A thread of its own asks the cluster for metadata every period (a real
// round trip, not librdkafka's cached broker state) and reads the high watermarks of the
// consumed topics, so readiness and consumer lag stay true while partitions are paused or
// the loop is busy. The loop thread only reads the last reading. Other blocking queries
// (offsets by time) run on the same thread, so they never stall the loop either.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kafka/client.hpp"

namespace trestle::kafka {

class Probe {
  public:
    struct Reading {
        bool checked = false;        // at least one round trip finished
        bool reachable = false;      // the last one succeeded
        std::string error;           // why the last one failed
        uint64_t down_since_ms = 0;  // monotonic ms of the first failure in a row (0: up)
        std::map<std::pair<std::string, int32_t>, int64_t> high;  // (topic, partition) -> end
    };

    // `props`: the router's librdkafka properties with the broker list (security settings
    // apply to the probe too).
    Probe(Properties props, std::vector<std::string> topics, uint32_t period_ms);
    ~Probe();
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;

    std::string start();
    void set_topics(std::vector<std::string> topics);
    Reading reading() const;
    // Lookups, run on the probe's thread ahead of its next round trip; `done` runs on that
    // thread.
    // The first offset of the partition at or after `time_ms` (-1: none, or no answer).
    void offset_for_time(std::string topic, int32_t partition, int64_t time_ms,
                         std::function<void(int64_t offset)> done);
    // Where a consumer group's newly assigned partitions of `topic` start when "latest" means
    // the records since `time_ms` (the router's start, not the group join seconds later):
    // the committed offset, else the first offset at or after the time, else the partition's
    // end as of the lookup. One 5 s budget for all of it, through the group's `consumer`.
    struct StartOffsets {
        bool committed_read = false;  // false: every offset INVALID (librdkafka resets)
        bool by_time = false;         // the time lookup answered
        std::vector<std::pair<int32_t, int64_t>> offsets;  // (partition, offset) as asked
    };
    void start_offsets(std::shared_ptr<rd_kafka_t> consumer, std::string topic,
                       std::vector<int32_t> partitions, int64_t time_ms,
                       std::function<void(StartOffsets)> done);
    // What a description failed on: `error` empty = it succeeded.
    struct Failure {
        std::string error;
        bool not_found = false;  // no such topic or partition
    };
    // A topic's partitions (Event Hubs' hub properties).
    struct TopicInfo : Failure {
        std::vector<int32_t> partitions;
    };
    void describe_topic(std::string topic, std::function<void(TopicInfo)> done);
    // A partition's first and end offsets and the timestamp of its last record.
    struct PartitionInfo : Failure {
        int64_t low = -1, high = -1;
        int64_t last_time_ms = 0;  // 0: empty, or the last record could not be read
    };
    void describe_partition(std::string topic, int32_t partition,
                            std::function<void(PartitionInfo)> done);

    // Wakes the fetcher of `consumer` for `partitions` (topic, partition): one end-offset
    // query per partition leader, through the consumer itself. librdkafka 2.0 (Debian 12's) stops
    // fetching once its prefetch queue is full and looks again only when its broker thread
    // wakes: after a second, or when a request to that broker is queued (librdkafka #2879;
    // 2.2 added fetch.queue.backoff.ms). Without this a route delivered at most its prefetch
    // limit per second. `busy` is cleared when done (one nudge in flight per consumer).
    void nudge(std::shared_ptr<rd_kafka_t> consumer,
               std::vector<std::pair<std::string, int32_t>> partitions,
               std::shared_ptr<std::atomic<bool>> busy);

  private:
    void enqueue(std::function<void()> job);
    int64_t last_record_time(const std::string& topic, int32_t partition, int64_t offset);
    void run();
    void check();
    bool stopping() const;

    Properties props_;
    uint32_t period_ms_;
    Handle rk_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> topics_;
    std::deque<std::function<void()>> lookups_;
    Handle reader_;  // a consumer for describe_partition's last record, made when first needed
    Reading reading_;
    std::map<std::pair<std::string, int32_t>, int32_t> leaders_;  // from the last round trip
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace trestle::kafka
