// State in Kafka compacted topics. Retained messages: every instance keeps the whole set in
// memory as a view of the topic (key = the topic/address, value and headers as any record,
// an empty value deletes), loaded before listeners accept clients and then tailed, so a
// retained message set at any instance reaches new subscribers at every instance and survives
// restarts. Writes go to the local view at once and to Kafka.
#pragma once

#include <memory>
#include <string>

#include "kafka/client.hpp"
#include "net/event_loop.hpp"
#include "trestle/core/stores.hpp"

namespace trestle::kafka {

class KafkaRetainedStore final : public core::RetainedStore {
public:
    // `producer` is the adapter's (it outlives this store's writes: detach() before it goes).
    KafkaRetainedStore(net::EventLoop& loop, rd_kafka_t* producer, Properties consumer_props,
                       std::string topic, std::function<uint64_t()> now_ms);
    ~KafkaRetainedStore() override;

    // Reads the topic up to its end (bounded by `timeout_ms`), then keeps tailing it. Returns
    // an error description (the store then starts empty and tails once Kafka answers).
    std::string load(int timeout_ms);
    // Stops writing to and reading from Kafka (shutdown); the in-memory view stays.
    void detach();
    // The adapter restarted its producer.
    void set_producer(rd_kafka_t* p) { producer_ = p; }

    void put(std::string_view topic, core::MessageRef m) override;
    void erase(std::string_view topic) override;
    void match(std::string_view filter,
               const std::function<void(std::string_view, const core::MessageRef&)>& fn) const override {
        view_.match(filter, fn);
    }
    size_t size() const override { return view_.size(); }

private:
    void apply(const rd_kafka_message_t* m);
    bool serve();

    net::EventLoop& loop_;
    rd_kafka_t* producer_;
    Properties consumer_props_;
    std::string topic_;
    std::function<uint64_t()> now_ms_;
    core::MemoryRetainedStore view_;
    Handle consumer_;
    rd_kafka_queue_t* queue_ = nullptr;
    std::unique_ptr<QueueWaker> waker_;
};

}  // namespace trestle::kafka
