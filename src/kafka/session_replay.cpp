// Session catch-up from the logs (the Replayer) and the adapter's core::MessageLogs.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "kafka/adapter.hpp"
#include "kafka/records.hpp"
#include "kafka/route_out.hpp"
#include "kafka/session_replay.hpp"

namespace trestle::kafka {

namespace asio = boost::asio;

uint64_t Adapter::Replayer::add(std::vector<core::LogPosition> from,
                                std::function<void(core::MessageRef, std::string_view)> record,
                                std::function<void()> done) {
    Request r;
    r.id = ++next_id_;
    r.record = std::move(record);
    r.done = std::move(done);
    std::vector<core::LogPosition> live = a_.live_positions();
    for (const auto& p : from) {
        const RouteSettings* route = a_.out_route(p.log);
        if (!route) continue;     // no longer bound here
        int64_t end = INT64_MAX;  // not known here: up to the end of the log
        for (const auto& l : live)
            if (l.log == p.log && l.partition == p.partition) end = l.offset;
        if (p.offset < end) r.parts[{p.log, p.partition}] = Range{p.offset, end, route};
    }
    uint64_t id = r.id;
    queue_.push_back(std::move(r));
    // Not from inside the caller (a session being set up): on the next turn.
    if (!active_)
        asio::post(a_.loop_.io(), [this, alive = alive_] {
            if (*alive && !active_) start_next();
        });
    return id;
}

void Adapter::Replayer::cancel(uint64_t id) {
    if (active_ && active_->id == id) {
        finish(false);
        return;
    }
    std::erase_if(queue_, [id](const Request& r) { return r.id == id; });
}

void Adapter::Replayer::tick() {
    if (active_ && a_.router_.now_ms() > active_->deadline_ms) {
        logger().warn(
            "session catch-up from the logs incomplete after 30 s ({} partition(s) "
            "not read to their end): the session continues live",
            active_->parts.size());
        finish(true);
    }
}

void Adapter::Replayer::close() {
    *alive_ = false;
    waker_.reset();
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
    if (queue_handle_) rd_kafka_queue_destroy(queue_handle_);
    queue_handle_ = nullptr;
    consumer_.reset();
}

std::string Adapter::Replayer::open() {
    Properties defaults{{"group.id", "trestle.replay." + a_.router_id_},
                        {"client.id", "trestle-" + a_.router_id_ + "-replay"},
                        {"enable.auto.commit", "false"},
                        {"enable.auto.offset.store", "false"},
                        {"enable.partition.eof", "true"},
                        {"auto.offset.reset", "earliest"},  // positions past retention
                        {"fetch.wait.max.ms", "100"},
                        // as the routes' (librdkafka's default is 64 MB per consumer)
                        {"queued.max.messages.kbytes", "4096"},
                        {"reconnect.backoff.max.ms", "1000"}};
    Handle made;
    std::string err = make_consumer(defaults, a_.client_properties(), made, queue_handle_,
                                    [this](rd_kafka_conf_t* conf) { burst_.configure(conf); });
    consumer_ = std::move(made);
    if (!err.empty()) return err;
    waker_ = std::make_unique<QueueWaker>(a_.loop_, queue_handle_, [this] { return serve(); });
    return {};
}

void Adapter::Replayer::start_next() {
    while (!active_ && !queue_.empty()) {
        active_ = std::make_unique<Request>(std::move(queue_.front()));
        queue_.pop_front();
        if (active_->parts.empty()) {
            finish(true);
            continue;
        }
        if (!consumer_)
            if (std::string err = open(); !err.empty()) {
                logger().error("session catch-up from the logs: {}", err);
                finish(true);
                continue;
            }
        active_->deadline_ms = a_.router_.now_ms() + 30000;
        PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(active_->parts.size())));
        for (const auto& [k, r] : active_->parts)
            rd_kafka_topic_partition_list_add(l.get(), k.first.c_str(), k.second)->offset = r.from;
        rd_kafka_assign(consumer_.get(), l.get());
        waker_->poke();
    }
}

bool Adapter::Replayer::serve() {
    if (!consumer_) return false;
    int n = 0;
    bool wake = false;
    for (; n < 256 && active_; ++n) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 0);
        if (!m) break;
        if (!m->err && burst_.popped(m)) wake = true;
        handle(m);
        rd_kafka_message_destroy(m);
    }
    if (n < 256 && burst_.drained()) wake = true;
    if (wake) nudge();
    return n == 256;
}

void Adapter::Replayer::nudge() {
    if (!active_ || !a_.probe_) return;
    if (auto busy = burst_.claim()) {
        std::vector<std::pair<std::string, int32_t>> parts;
        for (const auto& [k, r] : active_->parts) parts.push_back(k);
        a_.probe_->nudge(consumer_, std::move(parts), std::move(busy));
    }
}

void Adapter::Replayer::handle(const rd_kafka_message_t* m) {
    if (!m->rkt) return;
    std::pair<std::string, int32_t> key{rd_kafka_topic_name(m->rkt), m->partition};
    auto it = active_->parts.find(key);
    if (it == active_->parts.end()) return;  // from an earlier request's assignment
    Range& r = it->second;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->offset >= r.from) done_with(key);  // the log ends before the live position
        return;
    }
    if (m->err) {
        logger().warn("session catch-up from the logs: {}", rd_kafka_message_errstr(m));
        return;
    }
    if (m->offset < r.from) return;
    if (m->offset >= r.end) {
        done_with(key);
        return;
    }
    r.from = m->offset + 1;
    bool last = r.from >= r.end;
    std::string_view address;
    core::MessageRef msg;
    if (read_record(m, *r.route, a_.router_.now_ms(), a_.wall_ms(), address, msg) ==
        RecordFate::ok) {
        msg->origin_log = a_.log_id(r.route->topic);
        msg->origin_partition = m->partition;
        msg->origin_offset = m->offset;
        uint64_t id = active_->id;
        active_->record(std::move(msg), address);
        if (!active_ || active_->id != id) return;  // cancelled from inside
    }
    if (last) done_with(key);
}

void Adapter::Replayer::finish(bool call_done) {
    std::unique_ptr<Request> r = std::move(active_);
    if (consumer_) rd_kafka_assign(consumer_.get(), nullptr);
    if (!queue_.empty())
        asio::post(a_.loop_.io(), [this, alive = alive_] {
            if (*alive && !active_) start_next();
        });
    if (call_done && r && r->done) r->done();
}

uint32_t Adapter::log_id(const std::string& topic) {
    for (size_t i = 0; i < log_names_.size(); ++i)
        if (log_names_[i] == topic) return static_cast<uint32_t>(i + 1);
    log_names_.push_back(topic);
    return static_cast<uint32_t>(log_names_.size());
}

const RouteSettings* Adapter::out_route(const std::string& topic) const {
    for (const auto& o : outs_)
        if (o->s_.topic == topic && o->dist_ == core::Distribution::multicast) return &o->s_;
    return nullptr;
}

std::vector<core::LogPosition> Adapter::live_positions() const {
    std::vector<core::LogPosition> out;
    for (const auto& o : outs_) o->live_positions(out);
    return out;
}

const std::string& Adapter::log_name(uint32_t id) const {
    static const std::string none;
    return id >= 1 && id <= log_names_.size() ? log_names_[id - 1] : none;
}

uint64_t Adapter::replay(std::vector<core::LogPosition> from,
                         std::function<void(core::MessageRef, std::string_view)> record,
                         std::function<void()> done) {
    if (!replayer_) replayer_ = std::make_unique<Replayer>(*this);
    return replayer_->add(std::move(from), std::move(record), std::move(done));
}

void Adapter::cancel(uint64_t replay_id) {
    if (replayer_) replayer_->cancel(replay_id);
}
}  // namespace trestle::kafka
