// The producer's work off the event loop: the loop packs each turn's records into one batch
// (key, value and headers copied once); a thread of its own hands them to librdkafka and
// serves the producer's delivery reports, which reach the loop as (opaque, error) pairs.
#pragma once

#include <librdkafka/rdkafka.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mapping/kafka.hpp"

namespace trestle::kafka {

// Per MQTT QoS 1 message, rd_kafka_produceva (record allocation and copy, rd_kafka_headers_t,
// the partitioner's lock) and delivery reports (the message freed into the arena of the thread
// that allocated it) took much of the loop (bench/RESULTS.md, "Profiles behind design
// choices"). librdkafka's handle is
// thread-safe, so both move to one thread on a second core: records are allocated and freed
// there. Records keep their order (one thread, one FIFO). The loop waits on the thread only in
// drain() (producer restart, shutdown).
class ProducerThread {
  public:
    // A record's outcome: librdkafka's delivery report, or its refusal to take the record.
    struct Report {
        void* opaque;
        rd_kafka_resp_err_t err;
    };

    // `notify` is called from the thread when reports wait: take_reports() them on the loop.
    // Set up `conf` (delivery report and error callbacks) before the producer is made.
    ProducerThread(rd_kafka_conf_t* conf, std::function<void()> notify);
    ~ProducerThread();
    ProducerThread(const ProducerThread&) = delete;
    ProducerThread& operator=(const ProducerThread&) = delete;

    // Starts serving `rk`, the producer made from the conf.
    void start(rd_kafka_t* rk);
    // Stops serving it (before rd_kafka_destroy: the thread's queue reference goes). Reports
    // served until then can still be taken.
    void stop();

    // Loop: queues a record for `rkt`'s topic, produced once submit() hands it over.
    // A record without a timestamp of its own gets the producer's clock. `last`: no record can
    // follow until some are acknowledged (the in-flight budget is used up), so librdkafka is told
    // to send at once rather than linger for records that cannot come.
    void add(rd_kafka_topic_t* rkt, const mapping::KafkaRecord& r, void* opaque, bool last);
    // Loop: hands what was added to the thread.
    void submit();
    // Loop: submits and waits until every record handed over reached librdkafka (before a
    // topic handle goes away).
    void drain();
    std::vector<Report> take_reports();
    // A fatal producer error was reported (the idempotent producer cannot go on).
    bool fatal() const;

  private:
    struct Entry {
        rd_kafka_topic_t* rkt;
        void* opaque;
        int64_t timestamp_ms;
        uint32_t key, key_len, value, value_len;  // offsets into Batch::bytes
        uint32_t headers, header_count;           // a range of Batch::headers
        bool has_key;
    };
    struct Header {
        uint32_t name, name_len, value, value_len;
    };
    struct Batch {
        std::vector<Entry> entries;
        std::vector<Header> headers;
        std::string bytes;
        bool flush = false;  // send now, do not linger: nothing more can come for now
        void clear() {
            flush = false;
            entries.clear();
            headers.clear();
            bytes.clear();
        }
    };

    static constexpr size_t kSlice = 1024;  // records per batch at most

    static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
    static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
    uint32_t put(std::string_view s);
    void run();
    void produce(const Batch& b);
    void produce_one(const Batch& b, const Entry& e);
    void publish();  // the thread's reports to the loop
    void wake();

    std::function<void()> notify_;
    rd_kafka_t* rk_ = nullptr;
    rd_kafka_queue_t* queue_ = nullptr;    // the producer's main queue (delivery reports, errors)
    int fds_[2] = {-1, -1};                // wakes the thread: librdkafka's IO event, submit()
    Batch current_;                        // the loop's, being filled
    std::vector<Report> local_;            // the thread's, not yet published
    std::vector<rd_kafka_message_t> run_;  // the thread's, records for rd_kafka_produce_batch
    std::thread::id thread_id_;

    mutable std::mutex mu_;
    std::condition_variable done_;  // drain() waits for the thread
    std::vector<Batch> inbox_;
    std::vector<Batch> spare_;  // produced batches, their buffers kept for reuse
    std::vector<Report> reports_;
    bool notified_ = false;
    bool busy_ = false;
    bool stop_ = false;
    bool fatal_ = false;
    std::thread thread_;
};

}  // namespace trestle::kafka
