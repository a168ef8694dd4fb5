#include "trestle/core/message_pool.hpp"

#include <cstdlib>
#include <new>

namespace trestle::core {

thread_local MessagePool* MessagePool::local_ = nullptr;
std::atomic<size_t> MessagePool::alive_{0};

namespace {
constexpr size_t block_size(size_t cls) {
    return MessagePool::smallest << cls;
}
}  // namespace

MessagePool::Scope::Scope() : pool_(new MessagePool), outer_(local_) {
    local_ = pool_;
}

MessagePool::Scope::~Scope() {
    local_ = outer_;
    pool_->retire();
}

void* MessagePool::take(size_t bytes, uint8_t& cls) {
    size_t c = 0;
    while (c < classes && block_size(c) < bytes) ++c;
    if (c == classes) return nullptr;
    if (!free_[c]) collect(c);
    void* block;
    if (Node* n = free_[c]) {
        free_[c] = n->next;
        --free_count_[c];
        block = n;
    } else {
        block = std::malloc(block_size(c));
        if (!block) throw std::bad_alloc();
    }
    ++handed_;
    cls = static_cast<uint8_t>(c);
    return block;
}

void MessagePool::give_back(void* block, uint8_t cls) noexcept {
    Node* n = static_cast<Node*>(block);
    auto& head = shared_.returned[cls];
    n->next = head.load(std::memory_order_relaxed);
    // Only pushes race here: the owner takes the whole list at once (collect), so no ABA.
    while (!head.compare_exchange_weak(n->next, n, std::memory_order_release,
                                       std::memory_order_relaxed)) {
    }
    if (shared_.balance.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

// Owner: the blocks given back since the last call become free ones, those beyond what the
// owner keeps freed.
void MessagePool::collect(size_t cls) {
    Node* n = shared_.returned[cls].exchange(nullptr, std::memory_order_acquire);
    size_t keep = keep_bytes / block_size(cls);
    while (n) {
        Node* next = n->next;
        if (free_count_[cls] < keep) {
            n->next = free_[cls];
            free_[cls] = n;
            ++free_count_[cls];
        } else {
            std::free(n);
        }
        n = next;
    }
}

void MessagePool::retire() {
    for (size_t c = 0; c < classes; ++c) {
        collect(c);
        while (Node* n = free_[c]) {
            free_[c] = n->next;
            std::free(n);
        }
        free_count_[c] = 0;
    }
    // Every block given out came back: the pool goes now; else with the last give_back.
    if (shared_.balance.fetch_add(handed_, std::memory_order_acq_rel) + handed_ == 0) delete this;
}

size_t MessagePool::kept_bytes() const {
    size_t n = 0;
    for (size_t c = 0; c < classes; ++c) n += free_count_[c] * block_size(c);
    return n;
}

MessagePool::~MessagePool() {
    alive_.fetch_sub(1, std::memory_order_relaxed);
    for (auto& head : shared_.returned) {
        Node* n = head.load(std::memory_order_acquire);
        while (n) {
            Node* next = n->next;
            std::free(n);
            n = next;
        }
    }
}

}  // namespace trestle::core
