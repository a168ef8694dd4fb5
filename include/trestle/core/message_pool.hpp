// Message blocks for a thread that makes messages another thread frees (a route's fetch thread
// makes them, the event loop frees them). glibc frees a block into the arena of the thread that
// allocated it, under that arena's lock, which the allocating thread is taking at the same rate
// (the contention measured: bench/RESULTS.md, "Profiles behind design choices"). Here a freed
// block goes onto a lock-free list
// of its pool and the owning thread takes it from there for its next message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace trestle::core {

class MessagePool {
  public:
    // Block sizes: 256, 512, 1024 and 2048 bytes. A bigger message is malloc'd as usual.
    static constexpr size_t classes = 4;
    static constexpr size_t smallest = 256;

    // The calling thread's pool: messages made on a thread with none are malloc'd.
    static MessagePool* local() { return local_; }

    // Gives the calling thread a pool for its lifetime in scope. The pool itself lives on until
    // the last of its blocks is freed, wherever that happens.
    class Scope {
      public:
        Scope();
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

      private:
        MessagePool* pool_;
        MessagePool* outer_;
    };

    // Owner thread: a block of at least `bytes` and its class, or nullptr when too big.
    void* take(size_t bytes, uint8_t& cls);
    // Any thread: a block take() gave.
    void give_back(void* block, uint8_t cls) noexcept;

    // Diagnostics (tests): pools not yet deleted in the process; the owner's free bytes.
    static size_t alive() { return alive_.load(std::memory_order_relaxed); }
    size_t kept_bytes() const;

    // Free blocks the owner keeps per class at most, beyond which it frees them (a burst of
    // messages held long does not keep its memory).
    static constexpr size_t keep_bytes = 128 * 1024;

  private:
    // A free block's link to the next one is its last pointer-sized bytes; under
    // AddressSanitizer the rest is poisoned, so a message used after its last unref is
    // reported as it would be with malloc (a header or leading bytes are what such use
    // touches).
    using Block = void*;
    MessagePool() { alive_.fetch_add(1, std::memory_order_relaxed); }
    ~MessagePool();
    void retire();
    void collect(size_t cls);

    // Written by other threads: the returned blocks per class, and how many blocks came back
    // minus (once retired) how many the owner gave out; retired, it reaches 0 with the last.
    struct alignas(64) Shared {
        std::atomic<Block> returned[classes] = {};
        std::atomic<int64_t> balance{0};
    } shared_;
    // Owner thread only.
    Block free_[classes] = {};
    size_t free_count_[classes] = {};
    int64_t handed_ = 0;

    // Inline, constant-initialized: read directly (an out-of-line definition is reached
    // through a TLS wrapper call, which UBSan reports as a null load).
    static inline thread_local MessagePool* local_ = nullptr;
    static std::atomic<size_t> alive_;
};

}  // namespace trestle::core
