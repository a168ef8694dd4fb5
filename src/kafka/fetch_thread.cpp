#include "kafka/fetch_thread.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "net/event_loop.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

FetchThread::FetchThread(rd_kafka_queue_t* queue, const FetchBurst& burst, Read read,
                         std::function<void()> notify, size_t max_held)
    : queue_(queue),
      burst_(burst),
      read_(std::move(read)),
      notify_(std::move(notify)),
      max_held_(max_held) {
    if (::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    static const char one = 1;
    rd_kafka_queue_io_event_enable(queue_, fds_[1], &one, 1);
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "trestle:fetch");
        run();
    });
}

FetchThread::~FetchThread() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    wake();
    thread_.join();
    rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
    rd_kafka_queue_destroy(queue_);
    ::close(fds_[0]);
    ::close(fds_[1]);
}

void FetchThread::wake() {
    static const char one = 1;
    [[maybe_unused]] auto n = ::write(fds_[1], &one, 1);  // full pipe: a wake-up is pending
}

std::vector<Fetched> FetchThread::take(bool& wake) {
    std::vector<Fetched> out;
    {
        std::lock_guard<std::mutex> g(mu_);
        out.swap(ready_);
        wake = wake_fetcher_;
        wake_fetcher_ = false;
        notified_ = false;
    }
    cv_.notify_all();  // room again
    return out;
}

void FetchThread::hold(const std::function<bool(int32_t)>& revoked) {
    std::unique_lock<std::mutex> g(mu_);
    held_ = true;
    cv_.wait(g, [this] { return !busy_; });
    std::erase_if(ready_, [&](const Fetched& f) { return revoked(f.partition); });
}

void FetchThread::release() {
    {
        std::lock_guard<std::mutex> g(mu_);
        held_ = false;
    }
    cv_.notify_all();
}

void FetchThread::run() {
    constexpr size_t batch = 256;   // records per turn at most
    core::MessagePool::Scope pool;  // the loop frees the messages made here
    std::vector<Fetched> out;
    out.reserve(batch);
    for (;;) {
        {
            std::unique_lock<std::mutex> g(mu_);
            cv_.wait(g, [this] { return stop_ || (!held_ && ready_.size() < max_held_); });
            if (stop_) return;
            busy_ = true;
        }
        // Wake-ups drained before reading: librdkafka writes one when it adds to an empty
        // queue, so whatever arrives after the reads below wakes the poll further down.
        char buf[256];
        while (::read(fds_[0], buf, sizeof buf) > 0) {
        }
        uint64_t now_ms = net::monotonic_ms();
        int64_t wall_ms = epoch_ms();
        bool wake = false;
        // One by one: librdkafka 2.0's rd_kafka_consume_batch_queue skips offsets when a
        // partition is paused or resumed (fixed in 2.1.0, "intermittently skipping offsets");
        // a route pauses and resumes its partitions with its consumers' credit, and lost ~200
        // of 400 000 records in about one run in forty. rd_kafka_consume_queue takes the same
        // path as rd_kafka_consumer_poll.
        size_t n = 0;
        for (; n < batch; ++n) {
            rd_kafka_message_t* m = rd_kafka_consume_queue(queue_, 0);
            if (!m) break;
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    logs::get(logs::Module::KAFKA)
                        .warn("kafka consumer: {}", rd_kafka_message_errstr(m));
            } else {
                if (burst_.popped(m)) wake = true;
                Fetched& f = out.emplace_back();
                f.partition = m->partition;
                f.offset = m->offset;
                read_(m, now_ms, wall_ms, f);
            }
            rd_kafka_message_destroy(m);
        }
        bool more = n == batch;
        if (!more && burst_.drained()) wake = true;
        bool notify = false;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (ready_.empty()) {
                ready_.swap(out);
            } else {
                for (auto& f : out) ready_.push_back(std::move(f));
            }
            out.clear();
            wake_fetcher_ |= wake;
            if ((!ready_.empty() || wake_fetcher_) && !notified_) notify = notified_ = true;
            busy_ = false;
        }
        cv_.notify_all();  // a hold() may wait for the batch to end
        if (notify) notify_();
        if (!more) {
            // Bounded: a missed wake-up costs a second, not a stall.
            pollfd p{fds_[0], POLLIN, 0};
            ::poll(&p, 1, 1000);
        }
    }
}

}  // namespace trestle::kafka
