// Catching a resumed session up from the logs: one assign-only consumer of this router's
// serves the requests one at a time (sessions resuming together wait their turn, bounded in
// memory by their session queues), each from its stored positions up to the live positions
// taken when it was asked for, so nothing is missed or sent twice between catch-up and live.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka/adapter.hpp"
#include "kafka/client.hpp"
#include "kafka/commit_tracker.hpp"
#include "kafka/direct_access.hpp"
#include "kafka/fetch_thread.hpp"
#include "kafka/probe.hpp"
#include "mapping/kafka.hpp"
#include "trestle/core/router.hpp"

namespace trestle::kafka {

class Adapter::Replayer {
  public:
    explicit Replayer(Adapter& a) : a_(a) {}
    ~Replayer() { close(); }

    uint64_t add(std::vector<core::LogPosition> from,
                 std::function<void(core::MessageRef, std::string_view)> record,
                 std::function<void()> done);

    void cancel(uint64_t id);

    void tick();

    void close();

  private:
    struct Range {
        int64_t from = 0, end = 0;
        const RouteSettings* route = nullptr;
    };
    using Parts = std::map<std::pair<std::string, int32_t>, Range>;
    struct Request {
        uint64_t id = 0;
        Parts parts;
        std::function<void(core::MessageRef, std::string_view)> record;
        std::function<void()> done;
        uint64_t deadline_ms = 0;
    };

    std::string open();

    void start_next();

    bool serve();

    // See RouteOut::nudge.
    void nudge();

    void handle(const rd_kafka_message_t* m);

    void done_with(const std::pair<std::string, int32_t>& key) {
        if (!active_) return;
        active_->parts.erase(key);
        if (active_->parts.empty()) finish(true);
    }

    void finish(bool call_done);

    Adapter& a_;
    std::shared_ptr<rd_kafka_t> consumer_;  // shared with a nudge under way
    rd_kafka_queue_t* queue_handle_ = nullptr;
    FetchBurst burst_;
    std::unique_ptr<QueueWaker> waker_;
    std::deque<Request> queue_;
    std::unique_ptr<Request> active_;
    uint64_t next_id_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace trestle::kafka
