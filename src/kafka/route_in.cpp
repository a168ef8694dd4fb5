// Into Kafka: RouteIn, and the adapter's produce path (slots, delivery reports, credit).
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
#include "kafka/route_in.hpp"

namespace trestle::kafka {

namespace asio = boost::asio;

std::string Adapter::RouteIn::attach() {
    core::AttachRequest req;
    req.direction = core::Direction::outgoing;
    req.name = "kafka/" + s_.name + "/in";
    req.waypoint = s_.bound_pattern();
    core::AttachResult r = a_.router_.attach(*a_.core_, req, *this, &link);
    if (r.kind == core::AttachResult::Kind::refused) return r.error.description;
    return {};
}

void Adapter::RouteIn::deliver(core::Delivery& d) {
    if (granted > 0) --granted;
    std::string_view address = d.address ? std::string_view(d.address->name()) : std::string_view();
    uint32_t slot = a_.take_slot(this, d.presettled ? nullptr : &d);
    if (!d.presettled) d.handle = reinterpret_cast<void*>(static_cast<uintptr_t>(slot));
    ++counters.in_flight;
    if (direct) {
        produce_direct(d, slot);
        return;
    }
    // The wall clock only for a message with an expiry (one clock read less per message).
    if (!mapping::record_from_message(*d.message, address, options_, a_.router_.now_ms(),
                                      d.message->expires_at_ms ? a_.wall_ms() : 0, record_)) {
        a_.failed_.emplace_back(slot, "amqp:decode-error");
    } else if (a_.fatal_) {
        a_.failed_.emplace_back(slot, "Kafka: the producer is being restarted");
    } else if (rd_kafka_topic_t* rkt = topic()) {
        a_.produce_off_loop(rkt, record_, slot, granted == 0);
        if (!d.presettled) a_.router_.release_message(d);  // the record has it all
        return;
    } else if (rd_kafka_resp_err_t err =
                   produce(a_.producer_.get(), nullptr, s_.topic, record_,
                           reinterpret_cast<void*>(static_cast<uintptr_t>(slot)))) {
        // No handle (a topic name librdkafka refuses): by name, for its error.
        a_.failed_.emplace_back(slot, std::to_string(static_cast<int>(err)));
    } else {
        return;
    }
    post_failures();
}

void Adapter::RouteIn::post_failures() {
    if (!a_.failures_posted_) {
        a_.failures_posted_ = true;
        asio::post(a_.loop_.io(), [&a = a_] { a.settle_failures(); });
    }
}

void Adapter::RouteIn::produce_direct(core::Delivery& d, uint32_t slot) {
    DirectProduce p;
    std::string err;
    if (!direct->read_produce(*d.message, p, batch_, err)) {
        a_.failed_.emplace_back(slot, "amqp:decode-error|" + err);
        post_failures();
        return;
    }
    if (p.topic.empty() && s_.topic.empty()) {
        a_.failed_.emplace_back(slot,
                                "amqp:invalid-field|no topic: neither the link's target nor "
                                "the message's 'to' names one");
        post_failures();
        return;
    }
    int32_t part = (p.partition ? p.partition : partition).value_or(RD_KAFKA_PARTITION_UA);
    uint32_t produced = 0;
    rd_kafka_resp_err_t cut = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < p.count && !cut; ++i) {
        if (a_.fatal_)
            cut = RD_KAFKA_RESP_ERR__FATAL;
        else if (rd_kafka_resp_err_t e =
                     produce(a_.producer_.get(), p.topic.empty() ? topic() : nullptr,
                             p.topic.empty() ? s_.topic : p.topic, batch_[i],
                             reinterpret_cast<void*>(static_cast<uintptr_t>(slot)), part))
            cut = e;
        else
            ++produced;
    }
    if (produced == 0) {
        a_.failed_.emplace_back(slot, std::string(direct->produce_condition()) + "|Kafka: " +
                                          (cut == RD_KAFKA_RESP_ERR__FATAL
                                               ? std::string("the producer is being restarted")
                                               : error_text(cut)));
        post_failures();
        return;
    }
    // Those produced report back; the batch fails with them (the client sends it again).
    Slot& s = a_.slots_[slot - 1];
    s.records = produced;
    s.err = cut;
    if (cut)
        logger().debug("{} sender '{}': batch cut short after {} of {} records: {}",
                       direct->title(), s_.name, produced, p.count, error_text(cut));
}

void Adapter::RouteIn::update(core::Delivery& d, const core::DeliveryState&, bool settle) {
    // The producer settled first (e.g. it went away): forget the delivery, keep the record.
    if (!settle || !d.handle) return;
    a_.slots_[reinterpret_cast<uintptr_t>(d.handle) - 1].delivery = nullptr;
    d.handle = nullptr;
}

rd_kafka_topic_t* Adapter::RouteIn::topic() {
    if (topic_gen_ != a_.topics_gen_) {
        topic_ = s_.topic.empty() ? nullptr : a_.topic_handle(s_.topic);
        topic_gen_ = a_.topics_gen_;
    }
    return topic_;
}

rd_kafka_topic_t* Adapter::topic_handle(const std::string& name) {
    for (auto& [n, t] : topics_)
        if (n == name) return t;
    rd_kafka_topic_t* t = rd_kafka_topic_new(producer_.get(), name.c_str(), nullptr);
    if (t) topics_.emplace_back(name, t);  // null (invalid name): produce by name reports it
    return t;
}

void Adapter::drop_topic_handles() {
    for (auto& [n, t] : topics_) rd_kafka_topic_destroy(t);
    topics_.clear();
    ++topics_gen_;
}

int64_t Adapter::wall_ms() const {
    uint64_t now = router_.now_ms();
    return now ? static_cast<int64_t>(now) + wall_offset_ms_ : epoch_ms();
}

void Adapter::refresh_wall_offset() {
    wall_offset_ms_ = epoch_ms() - static_cast<int64_t>(net::monotonic_ms());
}

uint32_t Adapter::take_slot(RouteIn* route, core::Delivery* d) {
    uint32_t i;
    if (free_slot_) {
        i = free_slot_;
        free_slot_ = slots_[i - 1].next_free;
    } else {
        slots_.emplace_back();
        i = static_cast<uint32_t>(slots_.size());
    }
    Slot& s = slots_[i - 1];
    s.route = route;
    s.delivery = d;
    s.used = true;
    s.produced_us = loop_.turn_us();
    if (slots_used_++ == 0) last_progress_ms_ = net::monotonic_ms();
    return i;
}

void Adapter::free_slot(uint32_t i) {
    Slot& s = slots_[i - 1];
    s = Slot{};
    s.next_free = free_slot_;
    free_slot_ = i;
    --slots_used_;
}

void Adapter::forget_route(RouteIn* route) {
    for (auto& s : slots_)
        if (s.route == route) s.delivery = nullptr;
}

void Adapter::delivery_report(void* opaque, rd_kafka_resp_err_t err_) {
    auto slot = reinterpret_cast<uintptr_t>(opaque);
    if (slot == 0 || slot > slots_.size()) return;  // reported after the routes went
    Slot& s = slots_[slot - 1];
    RouteIn* r = s.route;
    // Turn stamps, not rd_kafka_message_latency(): that reads the clock per record. Both ends
    // are when a loop turn began, so a latency is off by at most a turn's length.
    if (uint64_t now = loop_.turn_us(); !err_ && s.produced_us && now >= s.produced_us)
        latency_.add(static_cast<double>(now - s.produced_us) / 1e6);
    if (r) {
        if (err_) {
            ++r->counters.produce_failed;
            logger().debug("kafka route '{}': produce failed: {}", r->s_.name,
                           rd_kafka_err2str(err_));
        } else {
            ++r->counters.produced;
        }
    }
    if (err_ && !s.err) s.err = err_;
    if (--s.records > 0) return;  // the rest of a batch is still on its way
    core::Delivery* d = s.delivery;
    rd_kafka_resp_err_t err = s.err;
    free_slot(static_cast<uint32_t>(slot));
    if (!r) return;
    --r->counters.in_flight;
    if (!d || !r->link) return;
    d->handle = nullptr;
    core::ErrorCondition c;
    if (err) c = r->direct ? r->direct->produce_failed(err) : condition_for(err);
    router_.disposition(d, err ? core::DeliveryState::rejected(c) : core::DeliveryState::accepted(),
                        true);
}

void Adapter::produce_off_loop(rd_kafka_topic_t* rkt, const mapping::KafkaRecord& r, uint32_t slot,
                               bool last) {
    producer_thread_->add(rkt, r, reinterpret_cast<void*>(static_cast<uintptr_t>(slot)), last);
    if (!submit_produced_->flush_scheduled()) loop_.schedule_flush(submit_produced_);
}

// The producer thread's delivery reports (and refusals), a batch per call.
void Adapter::serve_reports() {
    if (!producer_thread_) return;
    loop_.begin_turn();
    if (!fatal_ && producer_thread_->fatal()) fatal_ = true;  // failed back, then restarted
    auto reports = producer_thread_->take_reports();
    for (const auto& r : reports) delivery_report(r.opaque, r.err);
    if (!reports.empty()) last_progress_ms_ = net::monotonic_ms();  // for the stall check
    refill_credit();
}

void Adapter::settle_failures() {
    failures_posted_ = false;
    auto failed = std::move(failed_);
    failed_.clear();
    for (auto& [slot, why] : failed) {
        Slot& s = slots_[slot - 1];
        RouteIn* r = s.route;
        core::Delivery* d = s.delivery;
        free_slot(slot);
        if (!r) continue;
        --r->counters.in_flight;
        ++r->counters.produce_failed;
        if (!d || !r->link) continue;
        d->handle = nullptr;
        core::ErrorCondition c;
        if (auto bar = why.find('|'); bar != std::string::npos) {
            c = {why.substr(0, bar), why.substr(bar + 1)};
        } else if (why == "amqp:decode-error") {
            c = {"amqp:decode-error", "the message cannot be mapped to a Kafka record"};
        } else if (!why.empty() && std::isdigit(static_cast<unsigned char>(why[0]))) {
            c = condition_for(static_cast<rd_kafka_resp_err_t>(std::stoi(why)));
        } else {
            c = {core::condition::internal_error, why};
        }
        router_.disposition(d, core::DeliveryState::rejected(c), true);
    }
    refill_credit();
}

// Credit for each route's producers is what is left of its in-flight budget. Topped up in
// batches so a steady stream does not cost a core call per delivery report.
void Adapter::refill_credit() {
    if (stopping_) return;
    for (auto& r : ins_) {
        if (!r->link) continue;
        int64_t want = static_cast<int64_t>(settings_.max_in_flight) -
                       static_cast<int64_t>(r->counters.in_flight);
        if (want <= r->granted) continue;
        if (r->granted > 0 && want - r->granted < static_cast<int64_t>(settings_.max_in_flight / 8))
            continue;
        r->granted = static_cast<int32_t>(want);
        router_.credit(r->link, r->granted, false);
    }
}

bool Adapter::produce_dead_letter(const std::string& topic, const mapping::KafkaRecord& record,
                                  const std::string& reason) {
    mapping::KafkaRecord r = record;
    r.headers.emplace_back(mapping::kafka_header::dead_letter_reason, reason);
    rd_kafka_resp_err_t err = produce(producer_.get(), nullptr, topic, r, nullptr);
    if (err) {
        logger().error("kafka '{}': cannot dead-letter a record to '{}': {}", settings_.name, topic,
                       rd_kafka_err2str(err));
        return false;
    }
    return true;
}
}  // namespace trestle::kafka
