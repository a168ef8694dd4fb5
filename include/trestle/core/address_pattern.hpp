// Address prefix/pattern matching as qdrouterd does it: tokens separated by '.' or '/',
// '*' = exactly one token, '#' = zero or more; exact beats '*' beats '#'; prefix "a/b" = "a/b/#".
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trestle::core {

// Splits an address into tokens at '.' and '/'.
std::vector<std::string_view> address_tokens(std::string_view address);

// The same split into a caller's buffer: the tokens, or an empty span if there are more than
// `buf.size()` (the caller then uses address_tokens). Lookups run per message: no allocation.
std::span<const std::string_view> address_tokens(std::string_view address,
                                                 std::span<std::string_view> buf);

// The canonical pattern of a prefix: "a/b" -> "a/b/#", "" -> "#"; trailing separators dropped.
std::string prefix_to_pattern(std::string_view prefix);

// Canonical form of a pattern (separators normalised to '/') used as the table key, so
// "a.b" and "a/b" are the same entry.
std::string canonical_pattern(std::string_view pattern);

template <class T>
class AddressPatternTable {
  public:
    // Returns false if the pattern is already present.
    bool insert(std::string_view pattern, T value) {
        Node* n = &root_;
        for (auto tok : address_tokens(pattern)) n = n->child(tok, true);
        if (n->value) return false;
        n->value = std::move(value);
        ++size_;
        return true;
    }

    bool erase(std::string_view pattern) {
        Node* n = &root_;
        for (auto tok : address_tokens(pattern)) {
            n = n->child(tok, false);
            if (!n) return false;
        }
        if (!n->value) return false;
        n->value.reset();
        --size_;
        return true;
    }

    // The best match for a concrete address, or nullptr.
    const T* match(std::string_view address) const {
        std::string_view buf[16];
        auto toks = address_tokens(address, buf);
        if (!toks.empty()) return match(&root_, toks, 0);
        auto many = address_tokens(address);
        return match(&root_, Tokens(many), 0);
    }
    T* match(std::string_view address) {
        return const_cast<T*>(std::as_const(*this).match(address));
    }

    size_t size() const { return size_; }

  private:
    using Tokens = std::span<const std::string_view>;

    struct Node {
        std::map<std::string, std::unique_ptr<Node>, std::less<>> exact;
        std::unique_ptr<Node> star, hash;
        std::optional<T> value;

        Node* child(std::string_view tok, bool create) {
            std::unique_ptr<Node>* slot;
            if (tok == "*") {
                slot = &star;
            } else if (tok == "#") {
                slot = &hash;
            } else {
                auto it = exact.find(tok);
                if (it == exact.end()) {
                    if (!create) return nullptr;
                    it = exact.emplace(std::string(tok), nullptr).first;
                }
                slot = &it->second;
            }
            if (!*slot && create) *slot = std::make_unique<Node>();
            return slot->get();
        }
    };

    static const T* match(const Node* n, Tokens toks, size_t i) {
        if (i == toks.size()) {
            if (n->value) return &*n->value;
            if (n->hash) return match_hash(n->hash.get(), toks, i);
            return nullptr;
        }
        if (auto it = n->exact.find(toks[i]); it != n->exact.end()) {
            if (auto r = match(it->second.get(), toks, i + 1)) return r;
        }
        if (n->star) {
            if (auto r = match(n->star.get(), toks, i + 1)) return r;
        }
        if (n->hash) return match_hash(n->hash.get(), toks, i);
        return nullptr;
    }

    // '#' swallows zero or more tokens; try the longest remaining-suffix match first so
    // that more specific continuations after '#' win only when they actually match.
    static const T* match_hash(const Node* h, Tokens toks, size_t i) {
        for (size_t j = i; j <= toks.size(); ++j) {
            if (j == toks.size()) {
                if (h->value) return &*h->value;
                continue;
            }
            if (auto r = match_after_hash(h, toks, j)) return r;
        }
        return nullptr;
    }
    static const T* match_after_hash(const Node* h, Tokens toks, size_t j) {
        // Continue matching the pattern after '#' at token j (no value check here: '#' at the
        // end is handled by the caller when all tokens are consumed).
        if (auto it = h->exact.find(toks[j]); it != h->exact.end()) {
            if (auto r = match(it->second.get(), toks, j + 1)) return r;
        }
        if (h->star) {
            if (auto r = match(h->star.get(), toks, j + 1)) return r;
        }
        return nullptr;
    }

    Node root_;
    size_t size_ = 0;
};

}  // namespace trestle::core
