#include "kafka/producer_thread.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "kafka/client.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

ProducerThread::ProducerThread(rd_kafka_conf_t* conf, std::function<void()> notify)
    : notify_(std::move(notify)) {
    if (::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &ProducerThread::on_delivery);
    rd_kafka_conf_set_error_cb(conf, &ProducerThread::on_error);
}

void ProducerThread::start(rd_kafka_t* rk) {
    rk_ = rk;
    queue_ = rd_kafka_queue_get_main(rk);
    static const char one = 1;
    rd_kafka_queue_io_event_enable(queue_, fds_[1], &one, 1);
    // Under the lock the thread takes first: it sees thread_id_ set.
    std::lock_guard<std::mutex> g(mu_);
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "trestle:produce");
        run();
    });
    thread_id_ = thread_.get_id();
}

void ProducerThread::stop() {
    if (thread_.joinable()) {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        wake();
        thread_.join();
    }
    if (queue_) {
        rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
        rd_kafka_queue_destroy(queue_);
        queue_ = nullptr;
    }
}

ProducerThread::~ProducerThread() {
    stop();
    ::close(fds_[0]);
    ::close(fds_[1]);
}

void ProducerThread::wake() {
    static const char one = 1;
    [[maybe_unused]] auto n = ::write(fds_[1], &one, 1);  // full pipe: a wake-up is pending
}

uint32_t ProducerThread::put(std::string_view s) {
    auto at = static_cast<uint32_t>(current_.bytes.size());
    current_.bytes.append(s);
    return at;
}

void ProducerThread::add(rd_kafka_topic_t* rkt, const mapping::KafkaRecord& r, void* opaque,
                         bool last) {
    Entry e;
    e.rkt = rkt;
    e.opaque = opaque;
    e.timestamp_ms = r.timestamp_ms;
    e.has_key = r.has_key;
    e.key_len = static_cast<uint32_t>(r.key.size());
    e.key = put(r.key);
    e.value_len = static_cast<uint32_t>(r.value.size());
    e.value = put(r.value);
    e.headers = static_cast<uint32_t>(current_.headers.size());
    e.header_count = static_cast<uint32_t>(r.headers.size());
    for (const auto& [name, value] : r.headers) {
        Header h;
        h.name_len = static_cast<uint32_t>(name.size());
        h.name = put(name);
        h.value_len = static_cast<uint32_t>(value.size());
        h.value = put(value);
        current_.headers.push_back(h);
    }
    current_.entries.push_back(e);
    if (last) current_.flush = true;
    // Handed over in slices: the thread starts sooner, and buffers stay small (reused).
    if (current_.entries.size() >= kSlice) submit();
}

void ProducerThread::submit() {
    if (current_.entries.empty()) return;
    bool idle;
    {
        std::lock_guard<std::mutex> g(mu_);
        idle = !busy_ && inbox_.empty();
        inbox_.push_back(std::move(current_));
        current_.clear();
        if (!spare_.empty()) {
            current_ = std::move(spare_.back());
            spare_.pop_back();
        }
    }
    // A busy thread looks at its inbox again before it sleeps: no wake-up call needed.
    if (idle) wake();
}

void ProducerThread::drain() {
    submit();
    std::unique_lock<std::mutex> g(mu_);
    done_.wait(g, [this] { return inbox_.empty() && !busy_; });
}

std::vector<ProducerThread::Report> ProducerThread::take_reports() {
    std::vector<Report> out;
    std::lock_guard<std::mutex> g(mu_);
    out.swap(reports_);
    notified_ = false;
    return out;
}

bool ProducerThread::fatal() const {
    std::lock_guard<std::mutex> g(mu_);
    return fatal_;
}

void ProducerThread::on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
    auto* t = static_cast<ProducerThread*>(opaque);
    if (!m->_private) {  // a dead letter or a state record: nobody waits for its outcome
        if (m->err)
            logs::get(logs::Module::KAFKA)
                .error("kafka {}: record to '{}' (dead letter or state) lost: {}",
                       rd_kafka_name(rk), rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        return;
    }
    if (std::this_thread::get_id() == t->thread_id_) {
        t->local_.push_back({m->_private, m->err});
        return;
    }
    // Served elsewhere (rd_kafka_flush at shutdown): published at once.
    std::lock_guard<std::mutex> g(t->mu_);
    t->reports_.push_back({m->_private, m->err});
}

void ProducerThread::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* t = static_cast<ProducerThread*>(opaque);
    if (err != RD_KAFKA_RESP_ERR__FATAL) {
        // Transient (brokers down, ...): librdkafka retries; producers are paced by credit.
        log_error(rk, err, reason);
        return;
    }
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    logs::get(logs::Module::KAFKA)
        .error(
            "kafka {}: fatal producer error {}: {}; failing what is in flight and restarting "
            "the producer",
            rd_kafka_name(rk), rd_kafka_err2name(orig), buf);
    bool notify;
    {
        std::lock_guard<std::mutex> g(t->mu_);
        t->fatal_ = true;
        notify = !t->notified_;
        t->notified_ = true;
    }
    if (notify) t->notify_();
}

void ProducerThread::publish() {
    if (local_.empty()) return;
    bool notify;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (reports_.empty()) {
            reports_.swap(local_);
        } else {
            reports_.insert(reports_.end(), local_.begin(), local_.end());
            local_.clear();
        }
        notify = !notified_;
        notified_ = true;
    }
    if (notify) notify_();
}

void ProducerThread::run() {
    std::vector<Batch> batches;
    for (;;) {
        {
            std::unique_lock<std::mutex> g(mu_);
            if (inbox_.empty()) {
                busy_ = false;
                done_.notify_all();
                if (stop_) return;
                g.unlock();
                pollfd p{fds_[0], POLLIN, 0};
                ::poll(&p, 1, -1);
                char buf[256];
                while (::read(fds_[0], buf, sizeof buf) > 0) {
                }
                g.lock();
            }
            busy_ = true;
            batches.swap(inbox_);
        }
        bool flush = false;
        for (auto& b : batches) {
            produce(b);
            flush |= b.flush;
        }
        // Flushing makes librdkafka's broker threads send without waiting out linger.ms; the
        // 1 ms bound is for them to wake up and see it (the call serves delivery reports).
        if (flush) rd_kafka_flush(rk_, 1);
        // Delivery reports (freeing the messages on the thread that allocated them).
        rd_kafka_poll(rk_, 0);
        publish();
        std::lock_guard<std::mutex> g(mu_);
        for (auto& b : batches) {
            b.clear();
            if (spare_.size() < 2) spare_.push_back(std::move(b));
        }
        batches.clear();
    }
}

void ProducerThread::produce(const Batch& b) {
    const char* bytes = b.bytes.data();
    // A record without headers or a timestamp of its own (the common one) goes in a run:
    // rd_kafka_produce_batch takes the topic's and the partitions' locks once per run, not per
    // record (bench/RESULTS.md, "Profiles behind design choices"); it supports neither headers
    // nor timestamps (the producer's clock stamps the records, as rd_kafka_produceva does with
    // 0).
    auto plain = [](const Entry& e) { return !e.header_count && !e.timestamp_ms; };
    for (size_t i = 0; i < b.entries.size();) {
        const Entry& e = b.entries[i];
        if (!plain(e)) {
            produce_one(b, e);
            ++i;
            continue;
        }
        run_.clear();
        size_t j = i;
        for (; j < b.entries.size() && plain(b.entries[j]) && b.entries[j].rkt == e.rkt; ++j) {
            const Entry& x = b.entries[j];
            rd_kafka_message_t m{};
            m.payload = const_cast<char*>(bytes + x.value);
            m.len = x.value_len;
            m.key = x.has_key ? const_cast<char*>(bytes + x.key) : nullptr;
            m.key_len = x.has_key ? x.key_len : 0;
            m._private = x.opaque;
            run_.push_back(m);
        }
        rd_kafka_produce_batch(e.rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, run_.data(),
                               static_cast<int>(run_.size()));
        // A record librdkafka refused has its error set (and gets no delivery report).
        for (const rd_kafka_message_t& m : run_)
            if (m.err) local_.push_back({m._private, m.err});
        i = j;
    }
}

void ProducerThread::produce_one(const Batch& b, const Entry& e) {
    const char* bytes = b.bytes.data();
    rd_kafka_headers_t* h = nullptr;
    if (e.header_count) {
        h = rd_kafka_headers_new(e.header_count);
        for (uint32_t i = e.headers; i < e.headers + e.header_count; ++i) {
            const Header& x = b.headers[i];
            rd_kafka_header_add(h, bytes + x.name, x.name_len, bytes + x.value, x.value_len);
        }
    }
    rd_kafka_vu_t vu[7];
    vu[0].vtype = RD_KAFKA_VTYPE_RKT;
    vu[0].u.rkt = e.rkt;
    vu[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[1].u.i = RD_KAFKA_MSG_F_COPY;
    vu[2].vtype = RD_KAFKA_VTYPE_KEY;
    vu[2].u.mem = {e.has_key ? const_cast<char*>(bytes + e.key) : nullptr,
                   e.has_key ? e.key_len : 0};
    vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[3].u.mem = {const_cast<char*>(bytes + e.value), e.value_len};
    vu[4].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vu[4].u.i64 = e.timestamp_ms;  // 0: the producer's clock
    vu[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[5].u.ptr = e.opaque;
    size_t n = 6;
    if (h) {
        vu[6].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[6].u.headers = h;
        n = 7;
    }
    if (rd_kafka_error_t* err = rd_kafka_produceva(rk_, vu, n)) {
        local_.push_back({e.opaque, rd_kafka_error_code(err)});
        rd_kafka_error_destroy(err);
        if (h) rd_kafka_headers_destroy(h);  // owned by librdkafka only on success
    }
}

}  // namespace trestle::kafka
