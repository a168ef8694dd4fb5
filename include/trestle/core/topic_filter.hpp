// MQTT topic names and filters: validation, shared-subscription syntax, matching ('+' one level,
// '#' the rest, '$'-topics hidden from root wildcards) and an index from filters to subscribers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace trestle::core {

bool valid_topic_name(std::string_view t);
bool valid_topic_filter(std::string_view f);
// True if `s` has wildcard levels in MQTT syntax (and is therefore a filter, not a name).
bool has_wildcards(std::string_view s);

struct SharedFilter {
    std::string group;  // empty: not shared
    std::string filter;
};
// Splits "$share/<group>/<filter>". Returns false for a malformed "$share/..." string.
bool parse_shared(std::string_view s, SharedFilter& out);
// The part of a valid (possibly shared) subscription filter that topics are matched against,
// without copying: per message, where parse_shared's two strings would cost.
std::string_view filter_of(std::string_view s);

bool topic_matches(std::string_view filter, std::string_view topic);

// Filter -> entries, matched against topic names. T is stored by value in a list per filter.
template <class T>
class TopicFilterIndex {
  public:
    void add(std::string_view filter, T value) {
        node_for(filter)->entries.push_back(std::move(value));
        ++size_;
    }

    // Removes the first entry equal to `value` under `filter`.
    bool remove(std::string_view filter, const T& value) {
        Node* n = find(filter);
        if (!n) return false;
        for (auto it = n->entries.begin(); it != n->entries.end(); ++it)
            if (*it == value) {
                n->entries.erase(it);
                --size_;
                return true;
            }
        return false;
    }

    template <class Fn>
    void match(std::string_view topic, Fn&& fn) const {
        if (size_ == 0) return;
        levels_scratch_.clear();
        split(topic, levels_scratch_);
        bool dollar = !topic.empty() && topic[0] == '$';
        match(&root_, levels_scratch_, 0, dollar, fn);
    }

    bool any_match(std::string_view topic) const {
        bool found = false;
        match(topic, [&](const T&) { found = true; });
        return found;
    }

    size_t size() const { return size_; }

  private:
    struct Node {
        std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
        std::unique_ptr<Node> plus, hash;
        std::vector<T> entries;
    };

    static void split(std::string_view s, std::vector<std::string_view>& out) {
        size_t start = 0;
        for (size_t i = 0; i <= s.size(); ++i)
            if (i == s.size() || s[i] == '/') {
                out.push_back(s.substr(start, i - start));
                start = i + 1;
            }
    }

    Node* node_for(std::string_view filter) {
        std::vector<std::string_view> lv;
        split(filter, lv);
        Node* n = &root_;
        for (auto l : lv) {
            std::unique_ptr<Node>* slot;
            if (l == "+") {
                slot = &n->plus;
            } else if (l == "#") {
                slot = &n->hash;
            } else {
                auto it = n->children.find(l);
                if (it == n->children.end())
                    it = n->children.emplace(std::string(l), nullptr).first;
                slot = &it->second;
            }
            if (!*slot) *slot = std::make_unique<Node>();
            n = slot->get();
        }
        return n;
    }

    Node* find(std::string_view filter) {
        std::vector<std::string_view> lv;
        split(filter, lv);
        Node* n = &root_;
        for (auto l : lv) {
            Node* next;
            if (l == "+") {
                next = n->plus.get();
            } else if (l == "#") {
                next = n->hash.get();
            } else {
                auto it = n->children.find(l);
                next = it == n->children.end() ? nullptr : it->second.get();
            }
            if (!next) return nullptr;
            n = next;
        }
        return n;
    }

    template <class Fn>
    static void match(const Node* n, const std::vector<std::string_view>& lv, size_t i, bool dollar,
                      Fn& fn) {
        // '#' matches this level and everything below, including the parent itself
        // ("a/#" matches "a"); not at the root of a '$' topic.
        if (n->hash && !(dollar && i == 0))
            for (const T& e : n->hash->entries) fn(e);
        if (i == lv.size()) {
            for (const T& e : n->entries) fn(e);
            return;
        }
        if (auto it = n->children.find(lv[i]); it != n->children.end())
            match(it->second.get(), lv, i + 1, dollar, fn);
        if (n->plus && !(dollar && i == 0)) match(n->plus.get(), lv, i + 1, dollar, fn);
    }

    Node root_;
    size_t size_ = 0;
    mutable std::vector<std::string_view> levels_scratch_;
};

}  // namespace trestle::core
