#include "trestle/core/stores.hpp"

#include "trestle/core/topic_filter.hpp"

namespace trestle::core {

void MemoryRetainedStore::put(std::string_view topic, MessageRef m) {
    auto it = messages_.find(topic);
    if (it == messages_.end())
        messages_.emplace(std::string(topic), std::move(m));
    else
        it->second = std::move(m);
}

void MemoryRetainedStore::erase(std::string_view topic) {
    auto it = messages_.find(topic);
    if (it != messages_.end()) messages_.erase(it);
}

void MemoryRetainedStore::match(
    std::string_view filter,
    const std::function<void(std::string_view, const MessageRef&)>& fn) const {
    if (!has_wildcards(filter)) {
        auto it = messages_.find(filter);
        if (it != messages_.end()) fn(it->first, it->second);
        return;
    }
    // Narrow the scan to the filter's literal prefix (before the first wildcard level).
    size_t wild = filter.find_first_of("+#");
    std::string_view prefix = filter.substr(0, wild);
    for (auto it = messages_.lower_bound(prefix); it != messages_.end(); ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0) break;
        if (topic_matches(filter, it->first)) fn(it->first, it->second);
    }
}

std::optional<SessionRecord> MemorySessionStore::load(std::string_view id) const {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return std::nullopt;
    return it->second;
}

void MemorySessionStore::erase(std::string_view id) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) sessions_.erase(it);
}

void MemoryWillStore::arm(WillRecord w) {
    std::string id = w.client_id;
    wills_[id] = std::move(w);
}

bool MemoryWillStore::cancel(std::string_view id) {
    auto it = wills_.find(id);
    if (it == wills_.end()) return false;
    wills_.erase(it);
    return true;
}

std::optional<WillRecord> MemoryWillStore::take(std::string_view id) {
    auto it = wills_.find(id);
    if (it == wills_.end()) return std::nullopt;
    WillRecord w = std::move(it->second);
    wills_.erase(it);
    return w;
}

std::vector<WillRecord> MemoryWillStore::take_due(uint64_t now_ms) {
    std::vector<WillRecord> due;
    for (auto it = wills_.begin(); it != wills_.end();) {
        if (it->second.due_ms <= now_ms) {
            due.push_back(std::move(it->second));
            it = wills_.erase(it);
        } else {
            ++it;
        }
    }
    return due;
}

}  // namespace trestle::core
