// A route consumer's records read off the event loop: its partitions' queues are forwarded to
// a queue this thread serves; it turns each record into a routable message (headers parsed,
// the record freed on this thread) and hands them to the loop in batches, in fetch order.
#pragma once

#include <librdkafka/rdkafka.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka/client.hpp"
#include "mapping/kafka.hpp"
#include "trestle/core/message.hpp"

namespace trestle::kafka {

// What became of a consumed record under its route's settings.
enum class RecordFate { ok, no_address, expired, unreadable };

// A record read on the fetch thread, for the loop.
struct Fetched {
    int32_t partition = 0;
    int64_t offset = 0;
    RecordFate fate = RecordFate::ok;
    core::MessageRef message;                      // fate ok
    std::string address;                           // fate ok
    std::unique_ptr<mapping::KafkaRecord> record;  // the record as read, for a dead letter
};

// Parsing a record (librdkafka allocates a header list even for none) and freeing it (into the
// broker thread's arena, under its lock) bound egress to the loop (bench/RESULTS.md, "Profiles
// behind design choices"). The loop keeps what needs its state: partition bookkeeping, credit,
// the core.
class FetchThread {
  public:
    // Runs on the thread, per record (not errors or partition ends), with the core clock and
    // the wall clock.
    using Read =
        std::function<void(const rd_kafka_message_t*, uint64_t now_ms, int64_t wall_ms, Fetched&)>;

    // Serves `queue` (this takes the reference). `notify` is called from the thread when
    // records wait: take() them on the loop. At most `max_held` records wait for the loop;
    // then the thread stops reading (librdkafka's own queue bound holds the rest).
    FetchThread(rd_kafka_queue_t* queue, const FetchBurst& burst, Read read,
                std::function<void()> notify, size_t max_held = 4096);
    ~FetchThread();
    FetchThread(const FetchThread&) = delete;
    FetchThread& operator=(const FetchThread&) = delete;

    // Loop: the records read since the last call, in fetch order; `wake` is set when the
    // consumer's fetcher should be nudged (see FetchBurst).
    std::vector<Fetched> take(bool& wake);

    // Loop, around a revocation: hold() returns once the thread is between batches and keeps
    // it there, dropping what waits for the partitions `revoked` names (a record read before
    // the revocation must not reach a later assignment of the same partition); release() lets
    // it go on. Records read after the unassignment are librdkafka's to discard.
    void hold(const std::function<bool(int32_t)>& revoked);
    void release();

    // The queue the consumer's partition queues are forwarded to.
    rd_kafka_queue_t* queue() const { return queue_; }

  private:
    void run();
    void wake();

    rd_kafka_queue_t* queue_;
    FetchBurst burst_;  // counting on the thread only
    Read read_;
    std::function<void()> notify_;
    const size_t max_held_;
    int fds_[2] = {-1, -1};  // librdkafka's queue-not-empty events, and stop / release

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Fetched> ready_;
    bool wake_fetcher_ = false;
    bool notified_ = false;  // a notify_ call is pending on the loop
    bool busy_ = false;      // inside a batch
    bool held_ = false;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace trestle::kafka
