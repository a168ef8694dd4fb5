// Message blocks made on one thread and freed on another go back to the making thread's pool;
// the pool outlives its thread until the last block is back (sanitizer builds check the rest).
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "trestle/core/message.hpp"

using namespace trestle::core;

namespace {

std::string pattern(size_t i, size_t size) {
    std::string s(size, '\0');
    for (size_t k = 0; k < size; ++k) s[k] = static_cast<char>('a' + (i + k) % 26);
    return s;
}

TEST(MessagePool, ABlockFreedOnAnotherThreadIsTheOwnersNextMessage) {
    size_t before = MessagePool::alive();
    std::thread owner([] {
        MessagePool::Scope scope;
        Message* first = Message::copy_of(pattern(1, 100));
        const void* block = first;
        std::thread([first] { first->unref(); }).join();
        Message* second = Message::copy_of(pattern(2, 120));
        EXPECT_EQ(static_cast<const void*>(second), block) << "the returned block is reused";
        EXPECT_EQ(second->bytes(), pattern(2, 120));
        Message* other_class = Message::copy_of(pattern(3, 400));
        EXPECT_NE(static_cast<const void*>(other_class), block);
        second->unref();
        other_class->unref();
    });
    owner.join();
    EXPECT_EQ(MessagePool::alive(), before) << "every block back: the pool is gone";
}

TEST(MessagePool, MessagesOutliveTheirThreadAndThePoolGoesWithTheLast) {
    size_t before = MessagePool::alive();
    std::vector<Message*> made;
    Message* big = nullptr;
    std::thread([&] {
        MessagePool::Scope scope;
        for (size_t i = 0; i < 100; ++i) made.push_back(Message::copy_of(pattern(i, 50 + i * 15)));
        big = Message::copy_of(pattern(7, 10000));  // beyond the largest block: malloc'd
    }).join();
    EXPECT_EQ(MessagePool::alive(), before + 1) << "its blocks are still out";
    for (size_t i = 0; i < made.size(); ++i) {
        EXPECT_EQ(made[i]->bytes(), pattern(i, 50 + i * 15));
        if (i + 1 < made.size()) made[i]->unref();
    }
    EXPECT_EQ(MessagePool::alive(), before + 1);
    made.back()->unref();
    EXPECT_EQ(MessagePool::alive(), before) << "the last block back deletes the pool";
    EXPECT_EQ(big->bytes(), pattern(7, 10000));
    big->unref();
}

TEST(MessagePool, WithoutAPoolMessagesAreMallocd) {
    size_t before = MessagePool::alive();
    EXPECT_EQ(MessagePool::local(), nullptr);
    Message* m = Message::copy_of(pattern(1, 100));
    EXPECT_EQ(MessagePool::alive(), before);
    std::thread([m] { m->unref(); }).join();
}

TEST(MessagePool, TheOwnerKeepsABoundedNumberOfFreeBlocks) {
    std::thread([] {
        MessagePool::Scope scope;
        std::vector<Message*> burst;
        for (size_t i = 0; i < 10000; ++i) burst.push_back(Message::copy_of(pattern(i, 100)));
        std::thread([&] {
            for (Message* m : burst) m->unref();
        }).join();
        Message::copy_of(pattern(0, 100))->unref();  // takes back what was given
        EXPECT_GT(MessagePool::local()->kept_bytes(), 0u);
        EXPECT_LE(MessagePool::local()->kept_bytes(), MessagePool::keep_bytes);
    }).join();
}

// The loop's side: messages handed over in batches and freed while the owner makes more.
TEST(MessagePool, ConcurrentMakingAndFreeingKeepsEveryMessageIntact) {
    size_t before = MessagePool::alive();
    constexpr size_t total = 100000;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<size_t, Message*>> handed;
    bool done = false;
    std::thread owner([&] {
        MessagePool::Scope scope;
        for (size_t i = 0; i < total; ++i) {
            Message* m = Message::copy_of(pattern(i, 40 + i % 1500));
            std::unique_lock<std::mutex> g(mu);
            cv.wait(g, [&] { return handed.size() < 512; });
            handed.emplace_back(i, m);
            cv.notify_all();
        }
        std::lock_guard<std::mutex> g(mu);
        done = true;
        cv.notify_all();
    });
    size_t freed = 0, wrong = 0;
    for (;;) {
        std::deque<std::pair<size_t, Message*>> got;
        {
            std::unique_lock<std::mutex> g(mu);
            cv.wait(g, [&] { return done || !handed.empty(); });
            if (handed.empty() && done) break;
            got.swap(handed);
            cv.notify_all();
        }
        for (auto& [i, m] : got) {
            if (m->bytes() != pattern(i, 40 + i % 1500)) ++wrong;
            m->unref();
            ++freed;
        }
    }
    owner.join();
    EXPECT_EQ(freed, total);
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(MessagePool::alive(), before);
}

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
namespace {
// A pooled block is poisoned while free: a use after the last unref is still caught.
TEST(MessagePoolDeathTest, AMessageUsedAfterItsLastUnrefIsReported) {
    EXPECT_DEATH(
        {
            MessagePool::Scope scope;
            Message* m = Message::copy_of("gone");
            m->unref();
            volatile size_t n = m->size();
            (void)n;
        },
        "use-after-poison");
}
}  // namespace
#endif
