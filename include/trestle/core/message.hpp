// A message as the core carries it: an immutable, reference-counted buffer in the form of the
// protocol it arrived in. The core never looks inside; adapters convert across protocols.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "trestle/core/message_pool.hpp"

namespace trestle::core {

// The encoding of a message's bytes. AMQP→AMQP forwarding hands these bytes on untouched; a
// message is converted only when it crosses protocols (src/mapping).
enum class MessageFormat : uint8_t { amqp = 0, mqtt = 1 };

class MessageRef;

// Reference counting is deliberately non-atomic: a message is owned by one event loop (the core
// is single-writer). Crossing loops must copy or hand over ownership explicitly; a message made
// on another thread (a route's fetch thread) is handed over and its block goes back to that
// thread's pool when freed.
class Message {
  public:
    // From the calling thread's MessagePool when it has one.
    static Message* create(size_t size, MessageFormat format = MessageFormat::amqp) {
        MessagePool* pool = MessagePool::local();
        uint8_t cls = 0;
        void* mem = pool ? pool->take(sizeof(Message) + size, cls) : nullptr;
        if (!mem) {
            pool = nullptr;
            mem = std::malloc(sizeof(Message) + size);
            if (!mem) throw std::bad_alloc();
        }
        Message* m = new (mem) Message(size, format);
        m->pool_ = pool;
        m->pool_class_ = cls;
        return m;
    }
    static Message* copy_of(std::string_view bytes, MessageFormat format = MessageFormat::amqp) {
        Message* m = create(bytes.size(), format);
        if (!bytes.empty()) std::memcpy(m->data(), bytes.data(), bytes.size());
        return m;
    }

    char* data() { return reinterpret_cast<char*>(this + 1); }
    const char* data() const { return reinterpret_cast<const char*>(this + 1); }
    size_t size() const { return size_; }
    std::string_view bytes() const { return {data(), size_}; }
    MessageFormat format() const { return format_; }

    void ref() { ++refs_; }
    uint32_t refs() const { return refs_; }  // holders now (diagnostics, tests)
    void unref() {
        if (--refs_ == 0) {
            MessagePool* pool = pool_;
            uint8_t cls = pool_class_;
            this->~Message();
            if (pool)
                pool->give_back(this, cls);
            else
                std::free(this);
        }
    }

    // What the core's own rules need, set by the adapter that created the message.
    bool retain = false;  // publish as a retained message (MQTT retain, x-opt-retain-message)
    bool empty_payload = false;  // a retained message with it deletes the topic's retained one
    uint8_t qos = 0;             // MQTT QoS (x-opt-mqtt-qos, durable) as published
    uint64_t expires_at_ms = 0;  // core clock time after which it is not delivered (0 = never)
    // Where in a durable log (a Kafka partition) the message was read, so a persistent session
    // can record how far it got and catch up elsewhere. origin_log 0: not from a log.
    uint32_t origin_log = 0;
    int32_t origin_partition = 0;
    int64_t origin_offset = -1;

    // The same message in the other protocol's form, made once when first needed (fan-out).
    Message* converted() const { return converted_; }
    void set_converted(Message* m) {
        if (converted_) converted_->unref();
        converted_ = m;
    }

    // Shrinks the visible size after a short read; never grows.
    void truncate(size_t n) {
        if (n < size_) size_ = n;
    }

  private:
    Message(size_t size, MessageFormat format) : size_(size), format_(format) {}
    ~Message() {
        if (converted_) converted_->unref();
    }
    uint32_t refs_ = 1;
    size_t size_;
    MessageFormat format_;
    uint8_t pool_class_ = 0;
    Message* converted_ = nullptr;
    MessagePool* pool_ = nullptr;  // where the block goes back to (nullptr: malloc'd)
};

// Owning handle to a Message.
class MessageRef {
  public:
    MessageRef() = default;
    // Adopts one reference (the one create() returned).
    static MessageRef adopt(Message* m) {
        MessageRef r;
        r.m_ = m;
        return r;
    }
    // Takes an additional reference to `m`.
    static MessageRef share(Message* m) {
        if (m) m->ref();
        return adopt(m);
    }
    MessageRef(const MessageRef& o) : m_(o.m_) {
        if (m_) m_->ref();
    }
    MessageRef(MessageRef&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    MessageRef& operator=(MessageRef o) noexcept {
        std::swap(m_, o.m_);
        return *this;
    }
    ~MessageRef() {
        if (m_) m_->unref();
    }
    Message* get() const { return m_; }
    Message* operator->() const { return m_; }
    Message& operator*() const { return *m_; }
    explicit operator bool() const { return m_ != nullptr; }
    void reset() { *this = MessageRef(); }

  private:
    Message* m_ = nullptr;
};

}  // namespace trestle::core
