#include "trestle/core/message_pool.hpp"

#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace trestle::core {

std::atomic<size_t> MessagePool::alive_{0};

namespace {
constexpr size_t block_size(size_t cls) {
    return MessagePool::smallest << cls;
}
// Where a free block keeps the next one.
void*& link(void* block, size_t cls) {
    return *reinterpret_cast<void**>(static_cast<char*>(block) + block_size(cls) - sizeof(void*));
}
void release(void* block, size_t cls) {
    UNPOISON(block, block_size(cls));
    std::free(block);
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
    void* block = free_[c];
    if (block) {
        free_[c] = link(block, c);
        --free_count_[c];
        UNPOISON(block, block_size(c));
    } else {
        block = std::malloc(block_size(c));
        if (!block) throw std::bad_alloc();
    }
    ++handed_;
    cls = static_cast<uint8_t>(c);
    return block;
}

void MessagePool::give_back(void* block, uint8_t cls) noexcept {
    POISON(block, block_size(cls) - sizeof(void*));
    auto& head = shared_.returned[cls];
    void*& next = link(block, cls);
    next = head.load(std::memory_order_relaxed);
    // Only pushes race here: the owner takes the whole list at once (collect), so no ABA.
    while (!head.compare_exchange_weak(next, block, std::memory_order_release,
                                       std::memory_order_relaxed)) {
    }
    if (shared_.balance.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

// Owner: the blocks given back since the last call become free ones, those beyond what the
// owner keeps freed.
void MessagePool::collect(size_t cls) {
    void* b = shared_.returned[cls].exchange(nullptr, std::memory_order_acquire);
    size_t keep = keep_bytes / block_size(cls);
    while (b) {
        void* next = link(b, cls);
        if (free_count_[cls] < keep) {
            link(b, cls) = free_[cls];
            free_[cls] = b;
            ++free_count_[cls];
        } else {
            release(b, cls);
        }
        b = next;
    }
}

void MessagePool::retire() {
    for (size_t c = 0; c < classes; ++c) {
        collect(c);
        while (void* b = free_[c]) {
            free_[c] = link(b, c);
            release(b, c);
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
    for (size_t c = 0; c < classes; ++c) {
        void* b = shared_.returned[c].load(std::memory_order_acquire);
        while (b) {
            void* next = link(b, c);
            release(b, c);
            b = next;
        }
    }
}

}  // namespace trestle::core
