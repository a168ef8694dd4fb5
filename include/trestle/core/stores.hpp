// State that outlives connections — retained messages, MQTT sessions, wills — behind ports of
// the core, with in-memory implementations. (Kafka-backed ones plug in behind the same ports.)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trestle/core/message.hpp"

namespace trestle::core {

class RetainedStore {
public:
    virtual ~RetainedStore() = default;
    virtual void put(std::string_view topic, MessageRef m) = 0;
    virtual void erase(std::string_view topic) = 0;
    // Calls `fn` for each retained message whose topic the MQTT filter matches.
    virtual void match(std::string_view filter,
                       const std::function<void(std::string_view topic, const MessageRef&)>& fn) const = 0;
    virtual size_t size() const = 0;
};

class MemoryRetainedStore final : public RetainedStore {
public:
    void put(std::string_view topic, MessageRef m) override;
    void erase(std::string_view topic) override;
    void match(std::string_view filter,
               const std::function<void(std::string_view, const MessageRef&)>& fn) const override;
    size_t size() const override { return messages_.size(); }

private:
    std::map<std::string, MessageRef, std::less<>> messages_;
};

struct StoredSubscription {
    std::string filter;           // as subscribed, "$share/g/f" included
    uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    uint8_t retain_handling = 0;
    uint32_t subscription_id = 0;  // 0 = none
    bool operator==(const StoredSubscription&) const = default;
};

// What a persistent MQTT session keeps between connections.
struct SessionRecord {
    std::string client_id;
    uint8_t protocol_level = 4;
    uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF = never
    std::vector<StoredSubscription> subscriptions;
    uint64_t disconnected_at_ms = 0;  // 0 while connected
};

class SessionStore {
public:
    virtual ~SessionStore() = default;
    virtual void save(const SessionRecord& r) = 0;
    virtual std::optional<SessionRecord> load(std::string_view client_id) const = 0;
    virtual void erase(std::string_view client_id) = 0;
    virtual size_t size() const = 0;
};

class MemorySessionStore final : public SessionStore {
public:
    void save(const SessionRecord& r) override { sessions_[r.client_id] = r; }
    std::optional<SessionRecord> load(std::string_view id) const override;
    void erase(std::string_view id) override;
    size_t size() const override { return sessions_.size(); }

private:
    std::map<std::string, SessionRecord, std::less<>> sessions_;
};

struct WillRecord {
    std::string client_id;
    std::string topic;
    MessageRef message;
    uint64_t due_ms = 0;  // core clock
};

class WillStore {
public:
    virtual ~WillStore() = default;
    virtual void arm(WillRecord w) = 0;
    // A reconnect before the delay passed: the will is not published.
    virtual bool cancel(std::string_view client_id) = 0;
    // Removes and returns the armed will (to publish it now: the session ended first).
    virtual std::optional<WillRecord> take(std::string_view client_id) = 0;
    virtual std::vector<WillRecord> take_due(uint64_t now_ms) = 0;
    virtual size_t size() const = 0;
};

class MemoryWillStore final : public WillStore {
public:
    void arm(WillRecord w) override;
    bool cancel(std::string_view client_id) override;
    std::optional<WillRecord> take(std::string_view client_id) override;
    std::vector<WillRecord> take_due(uint64_t now_ms) override;
    size_t size() const override { return wills_.size(); }

private:
    std::map<std::string, WillRecord, std::less<>> wills_;
};

}  // namespace trestle::core
