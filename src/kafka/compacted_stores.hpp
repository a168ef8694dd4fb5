// State in Kafka compacted topics. Every instance keeps the whole of a state topic in memory as
// a view (loaded before listeners accept clients, then tailed), writes go to the local view at
// once and to Kafka, and the view follows the topic, own writes included, so every instance
// ends with the same last value per key.
//
// - Retained messages (retainedTopic): key = the topic/address, value and headers as any
//   record, an empty value deletes.
// - MQTT sessions, wills and instance liveness (sessionsTopic), Zilla's key layout (docs/kafka.md,
//   "Sessions and wills in Kafka"): `<clientId>` the session (JSON: owner instance, generation,
//   subscriptions, expiry, positions in the message logs), `<clientId>#will` the will (the message
//   as a record plus trestle.will.* headers), `<routerId>#instance` a heartbeat (every
//   instanceTimeout / 4, at most 2 s). The header trestle.state names the kind. A will whose owner
//   stops heartbeating is claimed by the first live instance whose claim Kafka orders first, and
//   published there after its delay.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "kafka/client.hpp"
#include "net/event_loop.hpp"
#include "trestle/core/stores.hpp"

namespace trestle::kafka {

// One state topic read to its end, then tailed; records handed to `apply` on the loop.
class TopicView {
  public:
    TopicView(net::EventLoop& loop, rd_kafka_t* producer, Properties consumer_props,
              std::string topic, std::string what,
              std::function<void(const rd_kafka_message_t*)> apply);
    ~TopicView();
    // Reads the topic up to its end (bounded by `timeout_ms`), then keeps tailing it. Returns
    // an error description (the view then starts empty and tails once Kafka answers).
    std::string load(int timeout_ms);
    // Stops writing to and reading from Kafka (shutdown).
    void detach();
    void set_producer(rd_kafka_t* p) { producer_ = p; }
    bool writable() const { return producer_ != nullptr; }
    const std::string& topic() const { return topic_; }
    // Writes a record; a null `value` is a tombstone. Takes `headers` (may be null).
    void produce(std::string_view key, const std::string* value, rd_kafka_headers_t* headers);

  private:
    bool serve();

    net::EventLoop& loop_;
    rd_kafka_t* producer_;
    Properties consumer_props_;
    std::string topic_;
    std::string what_;
    std::function<void(const rd_kafka_message_t*)> apply_;
    Handle consumer_;
    rd_kafka_queue_t* queue_ = nullptr;
    std::unique_ptr<QueueWaker> waker_;
};

class KafkaRetainedStore final : public core::RetainedStore {
  public:
    // `producer` is the adapter's (it outlives this store's writes: detach() before it goes).
    KafkaRetainedStore(net::EventLoop& loop, rd_kafka_t* producer, Properties consumer_props,
                       std::string topic, std::function<uint64_t()> now_ms);

    std::string load(int timeout_ms);
    void detach() { topic_.detach(); }
    void set_producer(rd_kafka_t* p) { topic_.set_producer(p); }

    void put(std::string_view topic, core::MessageRef m) override;
    void erase(std::string_view topic) override;
    void match(
        std::string_view filter,
        const std::function<void(std::string_view, const core::MessageRef&)>& fn) const override {
        view_.match(filter, fn);
    }
    size_t size() const override { return view_.size(); }

  private:
    void apply(const rd_kafka_message_t* m);

    std::function<uint64_t()> now_ms_;
    core::MemoryRetainedStore view_;
    TopicView topic_;
};

// MQTT sessions and wills shared by every instance on one Kafka.
class KafkaSessionState final : public core::SessionStore {
  public:
    KafkaSessionState(net::EventLoop& loop, rd_kafka_t* producer, Properties consumer_props,
                      std::string topic, std::string router_id, uint32_t instance_timeout_ms,
                      std::function<uint64_t()> now_ms);
    ~KafkaSessionState() override;

    std::string load(int timeout_ms);
    // Orderly shutdown: this instance leaves (its heartbeat is deleted), then stops writing.
    void detach();
    void set_producer(rd_kafka_t* p) { topic_.set_producer(p); }
    // Heartbeat; claims the wills of instances that stopped heartbeating. Called often.
    void tick();

    // core::SessionStore
    void save(const core::SessionRecord& r) override;
    std::optional<core::SessionRecord> load(std::string_view client_id) const override;
    void erase(std::string_view client_id) override;
    size_t size() const override { return sessions_.size(); }

    // The wills, behind the core's port.
    core::WillStore& wills() { return will_port_; }

  private:
    class WillPort final : public core::WillStore {
      public:
        explicit WillPort(KafkaSessionState& s) : s_(s) {}
        void hold(const core::WillRecord& w) override;
        void arm(core::WillRecord w) override;
        bool cancel(std::string_view client_id) override;
        std::optional<core::WillRecord> take(std::string_view client_id) override;
        std::vector<core::WillRecord> take_due(uint64_t now_ms) override;
        size_t size() const override { return s_.wills_.size(); }

      private:
        KafkaSessionState& s_;
    };

    struct Session {
        core::SessionRecord record;  // owner always set
        uint64_t generation = 0;     // +1 whenever another instance takes the session
        int64_t disconnected_epoch = 0;
        bool previous_run = false;  // this instance's, from before it restarted
    };
    struct Will {
        std::string owner;
        std::string topic;
        core::MessageRef message;
        bool armed = false;
        int64_t due_epoch = 0;  // armed: when it is published
        uint32_t delay_s = 0;   // held: the will delay
    };
    struct Instance {
        uint64_t seen_ms = 0;    // core clock when its last heartbeat was read here
        int64_t last_epoch = 0;  // its clock in that heartbeat
    };

    void apply(const rd_kafka_message_t* m);
    void apply_session(const std::string& id, const rd_kafka_message_t* m, uint64_t generation,
                       const std::string& owner);
    void apply_will(const std::string& id, const rd_kafka_message_t* m,
                    const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                    const std::string& owner);
    void write_will(const std::string& id, const core::WillRecord& w, bool armed, int64_t due_epoch,
                    uint32_t delay_s, const std::string& claimed_from);
    void write_will_tombstone(const std::string& id);
    bool gone(const std::string& instance) const;
    void sweep();
    int64_t to_epoch(uint64_t core_ms) const;
    uint64_t to_core(int64_t epoch) const;

    std::string router_id_;
    uint32_t instance_timeout_ms_;
    uint64_t heartbeat_ms_;
    // Own heartbeats read back further apart than this: the topic stalled (Kafka outage).
    uint64_t gap_ms() const { return heartbeat_ms_ * 3 / 2; }
    std::function<uint64_t()> now_ms_;
    uint64_t started_ms_ = 0;
    uint64_t next_heartbeat_ms_ = 0;
    uint64_t next_sweep_ms_ = 0;
    uint64_t own_seen_ms_ = 0;       // when this instance last read its own heartbeat back
    uint64_t flowing_since_ms_ = 0;  // since when it has, without a gap
    bool loading_ = true;
    std::map<std::string, Session, std::less<>> sessions_;
    std::map<std::string, Will, std::less<>> wills_;  // the view, by client id
    std::map<std::string, Instance, std::less<>> instances_;
    core::MemoryWillStore local_;  // armed wills this instance publishes when due
    std::set<std::pair<std::string, std::string>> claimed_;  // (client id, gone owner) claims sent
    WillPort will_port_{*this};
    TopicView topic_;
};

}  // namespace trestle::kafka
