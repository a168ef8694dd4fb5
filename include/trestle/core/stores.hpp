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
    virtual void match(
        std::string_view filter,
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
    std::string filter;  // as subscribed, "$share/g/f" included
    uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    uint8_t retain_handling = 0;
    uint32_t subscription_id = 0;  // 0 = none
    bool operator==(const StoredSubscription&) const = default;
};

// A place in a durable log: the next record of one partition a reader has not had yet.
struct LogPosition {
    std::string log;  // the Kafka topic
    int32_t partition = 0;
    int64_t offset = 0;
    bool operator==(const LogPosition&) const = default;
};

// What a persistent MQTT session keeps between connections.
struct SessionRecord {
    std::string client_id;
    uint8_t protocol_level = 4;
    uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF = never
    std::vector<StoredSubscription> subscriptions;
    uint64_t disconnected_at_ms = 0;  // core clock; 0 while connected
    std::string owner;                // the router instance serving it ("" = this one)
    // How far the session got in each durable log it reads from: where it catches up from
    // when it resumes at an instance that does not hold its queue.
    std::vector<LogPosition> positions;
};

class SessionStore {
  public:
    virtual ~SessionStore() = default;
    virtual void save(const SessionRecord& r) = 0;
    virtual std::optional<SessionRecord> load(std::string_view client_id) const = 0;
    virtual void erase(std::string_view client_id) = 0;
    virtual size_t size() const = 0;
    // Set by the session manager: another instance now serves this client (it connected
    // there), so this instance lets its copy of the session go. Shared stores only.
    std::function<void(const std::string& client_id)> taken_elsewhere;
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
    // The client is connected with this will (due_ms: the will delay, in ms): a shared store
    // keeps it so that another instance publishes it if this one dies. cancel() drops it
    // (normal disconnect), take() too (the client reconnected).
    virtual void hold(const WillRecord&) {}
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

// Durable logs a returning session catches up from (the Kafka topics the router reads).
class MessageLogs {
  public:
    virtual ~MessageLogs() = default;
    // Where this router's live feed stands now: per partition, the first record not yet handed
    // to subscribers (what a session attached now receives live from there on).
    virtual std::vector<LogPosition> live_positions() const = 0;
    // The log named by Message::origin_log.
    virtual const std::string& log_name(uint32_t id) const = 0;
    // Reads each partition from `from` up to the live position, handing each record's message
    // and address to `record` (on the loop), then calls `done`. Returns an id for cancel().
    virtual uint64_t replay(std::vector<LogPosition> from,
                            std::function<void(MessageRef, std::string_view address)> record,
                            std::function<void()> done) = 0;
    virtual void cancel(uint64_t replay_id) = 0;
};

}  // namespace trestle::core
