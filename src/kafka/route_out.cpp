// Out of Kafka: RouteOut.
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

namespace trestle::kafka {

namespace asio = boost::asio;

std::string Adapter::RouteOut::start() {
    // Balanced/closest addresses share one group across instances; multicast ones give
    // every instance all partitions (a group of its own). Unconfigured: multicast, as MQTT.
    std::string sample =
        s_.prefix.empty() ? s_.pattern.substr(0, s_.pattern.find_first_of("*#")) : s_.prefix;
    dist_ = a_.router_.configured_distribution(sample).value_or(core::Distribution::multicast);
    bool multicast = dist_ == core::Distribution::multicast;
    group_ = !s_.group_id.empty() ? s_.group_id
             : multicast          ? "trestle." + s_.name + "." + a_.router_id_
                                  : "trestle." + s_.name;
    std::string start = !s_.start_position.empty() ? s_.start_position
                        : multicast                ? "latest"
                                                   : "earliest";
    from_start_time_ = start == "latest";
    log_id_ = a_.log_id(s_.topic);
    if (std::string err = open_consumer(start); !err.empty()) return err;
    start_fetch_thread();
    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), s_.topic.c_str(), RD_KAFKA_PARTITION_UA);
    if (rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_.get(), topics.get()))
        return "cannot subscribe to '" + s_.topic + "': " + rd_kafka_err2str(e);

    core::AttachRequest req;
    req.direction = core::Direction::incoming;
    req.name = "kafka/" + s_.name + "/out";
    req.target.has_address = false;
    req.from_waypoint = true;
    req.unconfigured_distribution = dist_;
    core::AttachResult r = a_.router_.attach(*a_.core_, req, *this, &link);
    if (r.kind == core::AttachResult::Kind::refused) return r.error.description;
    waker_ = std::make_unique<QueueWaker>(a_.loop_, queue_, [this] { return serve(); });
    logger().info("kafkaRoute '{}': consuming topic '{}' in group '{}' from {} ({})", s_.name,
                  s_.topic, group_, start, core::to_string(dist_));
    return {};
}

std::string Adapter::RouteOut::start_direct(core::Link* l, DirectAccess& dialect,
                                            const DirectConsume& c) {
    direct_ = &dialect;
    commit_ = c.commit;
    dist_ = core::Distribution::balanced;  // released records wait for the consumer
    group_ = c.group;
    if (std::string err = open_consumer("earliest"); !err.empty()) return err;
    if (c.partition && c.from_time_ms) {
        // The offset for a time is a blocking query: on the probe's thread, then assigned
        // here (the first record at or after the time; none: the end).
        int32_t p = *c.partition;
        Adapter& a = a_;
        a_.probe_->offset_for_time(
            s_.topic, p, *c.from_time_ms, [&a, self = this, p](int64_t offset) {
                asio::post(a.loop_.io(), [&a, self, p, offset] {
                    if (!a.has_direct(self) || !self->link) return;  // the client went meanwhile
                    if (std::string err =
                            self->assign(p, offset >= 0 ? offset : RD_KAFKA_OFFSET_END);
                        !err.empty())
                        logger().warn("direct receiver '{}': {}", self->s_.name, err);
                });
            });
    } else if (c.partition) {
        if (std::string err = assign(*c.partition, c.offset); !err.empty()) return err;
    } else {
        PartitionList topics(rd_kafka_topic_partition_list_new(1));
        rd_kafka_topic_partition_list_add(topics.get(), s_.topic.c_str(), RD_KAFKA_PARTITION_UA);
        if (rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_.get(), topics.get()))
            return "cannot subscribe to '" + s_.topic + "': " + rd_kafka_err2str(e);
    }
    link = l;
    waker_ = std::make_unique<QueueWaker>(a_.loop_, queue_, [this] { return serve(); });
    logger().info("direct receiver '{}': consuming topic '{}' in group '{}'{}", s_.name, s_.topic,
                  group_,
                  c.partition ? " partition " + std::to_string(*c.partition) : std::string());
    return {};
}

std::string Adapter::RouteOut::assign(int32_t partition, int64_t offset) {
    PartitionList one(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(one.get(), s_.topic.c_str(), partition)->offset = offset;
    tracker_.assign(partition, offset);
    if (rd_kafka_resp_err_t e = rd_kafka_assign(consumer_.get(), one.get()))
        return std::string("cannot assign the partition: ") + rd_kafka_err2str(e);
    return {};
}

std::string Adapter::RouteOut::open_consumer(const std::string& start) {
    Properties defaults{{"bootstrap.servers", a_.bootstrap_},
                        {"client.id", "trestle-" + a_.router_id_ + "-" + s_.name},
                        {"group.id", group_},
                        {"enable.auto.commit", "false"},
                        {"enable.auto.offset.store", "false"},
                        {"auto.offset.reset", start},
                        {"session.timeout.ms", "10000"},
                        {"heartbeat.interval.ms", "1000"},
                        {"fetch.wait.max.ms", "100"},
                        {"queued.max.messages.kbytes", "4096"},
                        {"reconnect.backoff.max.ms", "1000"}};
    Handle made;
    std::string err = make_consumer(
        defaults, a_.settings_.properties, made, queue_, [this](rd_kafka_conf_t* conf) {
            rd_kafka_conf_set_opaque(conf, this);
            rd_kafka_conf_set_rebalance_cb(conf, &RouteOut::on_rebalance);
            burst_.configure(conf);
        });
    consumer_ = std::move(made);
    return err;
}

void Adapter::RouteOut::nudge() {
    if (!consumer_ || !a_.probe_ || stopping_ || tracker_.parts().empty()) return;
    auto busy = burst_.claim();
    if (!busy) return;
    std::vector<std::pair<std::string, int32_t>> ids;
    for (const auto& [id, p] : tracker_.parts()) ids.emplace_back(s_.topic, id);
    a_.probe_->nudge(consumer_, std::move(ids), std::move(busy));
}

void Adapter::RouteOut::shutdown() {
    if (!consumer_) return;
    stopping_ = true;
    commit(false);
    waker_.reset();
    rd_kafka_consumer_close(consumer_.get());  // revokes: on_rebalance commits again
    *alive_ = false;
    fetch_.reset();  // what it read and the loop did not take is not committed
    if (link) {
        core::Link* l = link;
        link = nullptr;
        a_.router_.detach(l, nullptr);
    }
    release_all();
    if (queue_) rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    consumer_.reset();
}

bool Adapter::RouteOut::serve() {
    if (!consumer_ || stopping_) return false;
    int n = 0;
    for (; n < 256; ++n) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 0);
        if (!m) break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                logger().warn("kafkaRoute '{}': consumer: {}", s_.name, rd_kafka_message_errstr(m));
        } else {
            if (burst_.popped(m)) nudge();
            take(m);
        }
        rd_kafka_message_destroy(m);
    }
    if (n < 256 && burst_.drained()) nudge();
    send();
    return n == 256;
}

void Adapter::RouteOut::take(const rd_kafka_message_t* m) {
    Fetched f;
    f.partition = m->partition;
    f.offset = m->offset;
    if (!direct_)
        read_fetched(m, a_.router_.now_ms(), a_.wall_ms(), f);
    else
        f.message = direct_->message(s_.topic, m);
    take(std::move(f));
}

void Adapter::RouteOut::read_fetched(const rd_kafka_message_t* m, uint64_t now_ms, int64_t wall_ms,
                                     Fetched& f) const {
    std::string_view address;
    f.fate = read_record(m, s_, now_ms, wall_ms, address, f.message);
    if (f.fate == RecordFate::ok)
        f.address.assign(address);
    else if (f.fate != RecordFate::expired)
        f.record = std::make_unique<mapping::KafkaRecord>(record_of(m));
}

void Adapter::RouteOut::take(Fetched&& f) {
    if (!tracker_.fetched(f.partition, f.offset)) return;  // a partition no longer ours
    ++counters.consumed;
    switch (f.fate) {
        case RecordFate::no_address:
            send_dead_letter(*f.record,
                             "the record names no address (no key, no trestle.address header)");
            return;
        case RecordFate::expired:
            return;
        case RecordFate::unreadable:
            send_dead_letter(*f.record,
                             "content-type application/x-amqp-body but the value is not AMQP "
                             "body sections");
            return;
        case RecordFate::ok:
            break;
    }
    f.message->origin_log = log_id_;
    f.message->origin_partition = f.partition;
    f.message->origin_offset = f.offset;
    Track* t = tracker_.track(f.partition, f.offset);
    t->message = std::move(f.message);
    t->address = std::move(f.address);
    backlog_.push_back(t);
}

void Adapter::RouteOut::take_fetched() {
    if (!fetch_ || stopping_) return;
    bool wake = false;
    std::vector<Fetched> got = fetch_->take(wake);
    for (auto& f : got) take(std::move(f));
    if (wake) nudge();
    send();
}

void Adapter::RouteOut::start_fetch_thread() {
    fetch_ = std::make_unique<FetchThread>(
        rd_kafka_queue_new(consumer_.get()), burst_,
        [this](const rd_kafka_message_t* m, uint64_t now_ms, int64_t wall_ms, Fetched& f) {
            read_fetched(m, now_ms, wall_ms, f);
        },
        [&loop = a_.loop_, this, alive = alive_] {
            asio::post(loop.io(), [this, alive] {
                if (*alive) take_fetched();
            });
        },
        2048);
}

void Adapter::RouteOut::forward(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* parts) {
    for (int i = 0; i < parts->cnt; ++i) {
        rd_kafka_queue_t* q =
            rd_kafka_queue_get_partition(rk, parts->elems[i].topic, parts->elems[i].partition);
        if (!q) continue;  // not known yet: its records stay on the consumer queue
        rd_kafka_queue_forward(q, fetch_->queue());
        rd_kafka_queue_destroy(q);
    }
}

void Adapter::RouteOut::send() {
    if (!link || stopping_) return;
    while (credit_ > 0 && !backlog_.empty()) {
        Track* t = backlog_.front();
        backlog_.pop_front();
        t->in_core = true;
        --credit_;
        a_.router_.transfer(link, t->message, t->address, false, t);
    }
    bool stop = credit_ <= 0 || tracker_.outstanding() >= max_outstanding();
    if (stop != paused_) pause(stop);
}

void Adapter::RouteOut::live_positions(std::vector<core::LogPosition>& out) const {
    if (!consumer_ || stopping_ || dist_ != core::Distribution::multicast) return;
    for (const auto& [id, p] : tracker_.parts()) {
        int64_t at = p.next_offset >= 0 ? p.next_offset : p.start;
        for (const Track* t : backlog_)
            if (t->partition == id) {
                at = t->offset;  // the backlog is in fetch order: the first is the lowest
                break;
            }
        if (at >= 0) out.push_back({s_.topic, id, at});
    }
}

void Adapter::RouteOut::pause(bool on) {
    rd_kafka_topic_partition_list_t* l = nullptr;
    if (rd_kafka_assignment(consumer_.get(), &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return;
    PartitionList list(l);
    if (on)
        rd_kafka_pause_partitions(consumer_.get(), list.get());
    else
        rd_kafka_resume_partitions(consumer_.get(), list.get());
    paused_ = on;
    if (!on) nudge();
}

void Adapter::RouteOut::send_dead_letter(const mapping::KafkaRecord& r, const std::string& reason) {
    const std::string& topic =
        s_.dead_letter_topic.empty() ? a_.settings_.dead_letter_topic : s_.dead_letter_topic;
    logger().warn("kafkaRoute '{}': record dead-lettered to '{}': {}", s_.name, topic, reason);
    if (a_.produce_dead_letter(topic, r, reason)) ++counters.dead_lettered;
}

void Adapter::RouteOut::update(core::Delivery& d, const core::DeliveryState& state, bool settle) {
    if (!settle || !d.handle) return;
    auto* t = static_cast<Track*>(d.handle);
    d.handle = nullptr;
    t->in_core = false;
    if (tracker_.release_orphan(t)) return;
    switch (state.outcome) {
        case core::Outcome::rejected: {
            if (direct_) break;  // the client's own: rejected = consumed
            mapping::KafkaRecord r;
            mapping::KafkaRecordOptions o;
            std::string reason = "rejected by a consumer";
            if (state.error)
                reason += ": " + state.error->name +
                          (state.error->description.empty() ? "" : " " + state.error->description);
            if (mapping::record_from_message(*t->message, t->address, o, a_.router_.now_ms(),
                                             a_.wall_ms(), r))
                send_dead_letter(r, reason);
            break;
        }
        case core::Outcome::released:
        case core::Outcome::modified: {
            auto d_of = a_.router_.configured_distribution(t->address).value_or(dist_);
            if (d_of != core::Distribution::multicast && !stopping_) {
                // Anycast: it waits for a consumer (and holds back the committed offset).
                t->retry_at = a_.router_.now_ms() + 1000;
                retry_.push_back(t);
                ++counters.redelivered;
                return;
            }
            break;  // multicast: whoever wanted it had it
        }
        default:
            break;
    }
    finish(t);
}

void Adapter::RouteOut::commit(bool async) {
    if (!consumer_ || !commit_) return;
    auto commits = tracker_.to_commit();
    if (commits.empty()) return;
    PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(commits.size())));
    for (auto [id, upto] : commits)
        rd_kafka_topic_partition_list_add(l.get(), s_.topic.c_str(), id)->offset = upto;
    if (rd_kafka_resp_err_t e = rd_kafka_commit(consumer_.get(), l.get(), async ? 1 : 0))
        logger().warn("kafkaRoute '{}': commit failed: {}", s_.name, rd_kafka_err2str(e));
}

void Adapter::RouteOut::tick() {
    if (!consumer_ || stopping_) return;
    // With records on the fetch thread, the consumer queue may stay empty for long: polled
    // here too, so librdkafka sees this consumer alive (max.poll.interval.ms).
    if (fetch_) serve();
    uint64_t now = a_.router_.now_ms();
    bool any = false;
    // Due retries go first, oldest first, ahead of newer records.
    std::vector<Track*> due;
    for (auto it = retry_.begin(); it != retry_.end();) {
        if ((*it)->retry_at <= now) {
            due.push_back(*it);
            it = retry_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = due.rbegin(); it != due.rend(); ++it) backlog_.push_front(*it), any = true;
    if (any) send();
    if (now >= next_commit_) {
        commit(true);
        next_commit_ = now + 1000;
    }
}

void Adapter::RouteOut::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<RouteOut*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (self->from_start_time_)
            self->look_up_start(parts);
        else
            self->assign_now(rk, parts);
    } else {
        // Not yet assigned, and now not to be.
        for (int i = 0; i < parts->cnt; ++i) self->starting_.erase(parts->elems[i].partition);
        self->commit(false);
        if (self->fetch_)
            self->fetch_->hold([parts](int32_t id) {
                for (int i = 0; i < parts->cnt; ++i)
                    if (parts->elems[i].partition == id) return true;
                return false;
            });
        for (int i = 0; i < parts->cnt; ++i) self->drop_partition(parts->elems[i].partition);
        if (cooperative(rk))
            rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else
            rd_kafka_assign(rk, nullptr);
        if (self->fetch_) self->fetch_->release();
        logger().info("kafkaRoute '{}': revoked topic '{}' partitions [{}]", self->s_.name,
                      self->s_.topic, partition_text(parts));
    }
}

void Adapter::RouteOut::assign_now(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts) {
    // Where consumption starts, when known here (committed or start time): lag before the
    // first record is fetched.
    for (int i = 0; i < parts->cnt; ++i)
        tracker_.assign(parts->elems[i].partition, parts->elems[i].offset);
    if (fetch_) forward(rk, parts);
    if (!cooperative(rk)) {
        rd_kafka_assign(rk, parts);
        paused_ = false;  // all of it is new, none paused
    } else {
        rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        // Added to partitions already paused: paused with them, so that the resume that
        // comes with credit covers all (one resumed unpaused could be refetched from an old
        // position: librdkafka #4637).
        if (paused_) rd_kafka_pause_partitions(rk, parts);
    }
    logger().info("kafkaRoute '{}': assigned topic '{}' partitions [{}]", s_.name, s_.topic,
                  partition_text(parts));
    if (waker_) waker_->poke();
}

void Adapter::RouteOut::look_up_start(rd_kafka_topic_partition_list_t* parts) {
    uint64_t lookup = ++lookups_;
    std::vector<int32_t> ids;
    for (int i = 0; i < parts->cnt; ++i) {
        ids.push_back(parts->elems[i].partition);
        starting_[parts->elems[i].partition] = lookup;
    }
    auto done = [&loop = a_.loop_, this, alive = alive_, lookup](Probe::StartOffsets r) {
        asio::post(loop.io(), [this, alive, lookup, r = std::move(r)] {
            if (*alive) start_looked_up(lookup, r);
        });
    };
    a_.probe_->start_offsets(consumer_, s_.topic, std::move(ids), a_.started_ms_, done);
}

void Adapter::RouteOut::start_looked_up(uint64_t lookup, const Probe::StartOffsets& r) {
    if (stopping_ || !consumer_) return;
    if (r.committed_read && !r.by_time)
        logger().warn(
            "kafkaRoute '{}': no offsets for the start time within 5 s: partitions without "
            "a committed offset start at their end",
            s_.name);
    PartitionList parts(rd_kafka_topic_partition_list_new(static_cast<int>(r.offsets.size())));
    for (const auto& [id, offset] : r.offsets) {
        // Only what this lookup is still for: not revoked since, nor assigned again (a
        // later lookup has it).
        auto it = starting_.find(id);
        if (it == starting_.end() || it->second != lookup) continue;
        starting_.erase(it);
        rd_kafka_topic_partition_list_add(parts.get(), s_.topic.c_str(), id)->offset = offset;
    }
    if (parts->cnt > 0) assign_now(consumer_.get(), parts.get());
}

void Adapter::RouteOut::drop_partition(int32_t id) {
    auto mine = [id](Track* t) { return t->partition == id; };
    backlog_.erase(std::remove_if(backlog_.begin(), backlog_.end(), mine), backlog_.end());
    retry_.erase(std::remove_if(retry_.begin(), retry_.end(), mine), retry_.end());
    tracker_.revoke(id);
}

}  // namespace trestle::kafka
