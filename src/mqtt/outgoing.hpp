// What a session sends a client: one message as this client takes it, and the queues they wait
// in (outgoing.cpp also holds packet ids, the in-flight window and the QoS 2 handshake).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "trestle/core/message.hpp"

namespace trestle::mqtt {

struct Outgoing {
    core::MessageRef message;  // MQTT form
    uint16_t packet_id = 0;
    uint8_t qos = 0;
    bool retain = false;
    bool released = false;  // QoS 2: PUBREL sent, waiting for PUBCOMP
    std::vector<uint32_t> subscription_ids;
};

// FIFO of messages: one pointer while empty (most sessions, most of the time, with ten
// thousands of them idle); the storage comes and goes with the messages.
class OutQueue {
  public:
    using iterator = Outgoing*;
    bool empty() const { return size() == 0; }
    size_t size() const { return q_ ? q_->v.size() - q_->head : 0; }
    Outgoing& front() { return q_->v[q_->head]; }
    iterator begin() { return q_ ? q_->v.data() + q_->head : nullptr; }
    iterator end() { return q_ ? q_->v.data() + q_->v.size() : nullptr; }
    const Outgoing* begin() const { return q_ ? q_->v.data() + q_->head : nullptr; }
    const Outgoing* end() const { return q_ ? q_->v.data() + q_->v.size() : nullptr; }
    void push_back(Outgoing o);
    void pop_front();
    iterator erase(iterator it);
    void trim() {  // frees the storage while empty (called periodically, not per message)
        if (q_ && empty()) q_.reset();
    }

  private:
    struct Storage {
        std::vector<Outgoing> v;
        size_t head = 0;
    };
    std::unique_ptr<Storage> q_;
};

}  // namespace trestle::mqtt
