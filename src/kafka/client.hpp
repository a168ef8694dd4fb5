// librdkafka on the router's event loop: configuration from properties, handles, and the
// wake-up that serves a librdkafka queue on the loop thread (so delivery reports, rebalances and
// fetched records are handled where the routing core lives, without locks).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/event_loop.hpp"

namespace trestle::kafka {

using Properties = std::map<std::string, std::string>;

struct HandleDeleter {
    void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct PartitionListDeleter {
    void operator()(rd_kafka_topic_partition_list_t* l) const {
        rd_kafka_topic_partition_list_destroy(l);
    }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// Which client a configuration is for: the `kafka` entity's properties are one set for all of
// a router's clients, and each gets only those librdkafka applies to its kind (a producer
// property set on a consumer draws a warning; one like enable.gapless.guarantee makes a
// producer that only reads metadata fail to start).
enum class ClientKind { producer, consumer, metadata };

// librdkafka's scope of a property, from its own table: 'P' producer, 'C' consumer, '*' both
// (also for a name it does not list: rd_kafka_conf_set judges it).
char property_scope(const std::string& name);

// A configuration with librdkafka's logs sent to spdlog, then `defaults` unless `props` sets
// them, then those of `props` that apply to `kind`. Returns null and an error naming the
// property on a bad one.
rd_kafka_conf_t* make_conf(const Properties& defaults, const Properties& props, std::string& err,
                           ClientKind kind);

// A consumer from `defaults` and `props` (as make_conf); `setup` may set callbacks and the
// opaque before it is created. Its events (records, rebalances) go to its consumer queue,
// returned in `queue` for a QueueWaker. Returns an error description, or empty.
std::string make_consumer(const Properties& defaults, const Properties& props, Handle& out,
                          rd_kafka_queue_t*& queue,
                          const std::function<void(rd_kafka_conf_t*)>& setup = {});

// Tells when a consumer's fetcher may need waking (Probe::nudge): each time half of its
// prefetch limit has been popped (librdkafka 2.0 stops fetching while its queue is full and
// fetches again only when its broker thread wakes; waking it once there is room overlaps the
// next fetch with the work on this one), and when the queue is found empty after at least
// that much.
class FetchBurst {
  public:
    // The consumer's queued.max.messages.kbytes, from its configuration.
    void configure(rd_kafka_conf_t* conf);
    // True when half the limit has been popped since the last wake-up: librdkafka's queue
    // has room for a fetch again, and asking for it now overlaps the fetch with the work.
    bool popped(const rd_kafka_message_t* m) {
        bytes_ += m->len + m->key_len;
        if (at_ == 0 || bytes_ < at_) return false;
        bytes_ = 0;
        return true;
    }
    // The queue was found empty: true if what was popped since the last wake-up calls for one.
    bool drained() {
        bool wake = at_ > 0 && bytes_ >= at_;
        bytes_ = 0;
        return wake;
    }
    // One wake-up in flight per consumer: the flag to hand to Probe::nudge (which clears it
    // when done), or null while one is under way.
    std::shared_ptr<std::atomic<bool>> claim() {
        if (*busy_) return nullptr;
        *busy_ = true;
        return busy_;
    }

  private:
    size_t bytes_ = 0;
    size_t at_ = 0;
    std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
};

// A consumed record's headers, as views into it.
std::vector<std::pair<std::string_view, std::string_view>> record_headers(
    const rd_kafka_message_t* m);

// The wall clock in ms (record timestamps, will due times).
int64_t epoch_ms();

// Logs a librdkafka error event at warning level, once per client and text per 30 s (an
// unreachable cluster reports the same error from every client, broker and retry).
void log_error(rd_kafka_t* rk, int err, const char* reason);

// Properties whose values never appear in logs or management output.
bool is_secret(std::string_view property);

// Calls `serve` on the loop thread whenever `queue` has events (librdkafka writes to a pipe
// when the queue stops being empty). `serve` handles a bounded batch and returns true if it
// should be called again soon (more was waiting).
class QueueWaker {
  public:
    QueueWaker(net::EventLoop& loop, rd_kafka_queue_t* queue, std::function<bool()> serve);
    ~QueueWaker();
    QueueWaker(const QueueWaker&) = delete;
    QueueWaker& operator=(const QueueWaker&) = delete;
    // Serve soon even without a wake-up (e.g. after credit came back).
    void poke();

  private:
    void wait();
    void run();
    net::EventLoop& loop_;
    rd_kafka_queue_t* queue_;
    std::function<bool()> serve_;
    int fds_[2] = {-1, -1};
    std::unique_ptr<boost::asio::posix::stream_descriptor> desc_;
    std::shared_ptr<bool> alive_;
    bool poked_ = false;
};

// The error text of a librdkafka error code.
inline std::string error_text(rd_kafka_resp_err_t err) {
    return rd_kafka_err2str(err);
}

}  // namespace trestle::kafka
