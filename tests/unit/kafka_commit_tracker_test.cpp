// The commit rule of a Kafka route's consumer (kafka/commit_tracker.cpp): offsets are committed
// per partition up to the first record not yet done, never past it, never backwards.
#include <gtest/gtest.h>

#include "kafka/commit_tracker.hpp"

using trestle::kafka::CommitTracker;
using Commits = std::vector<std::pair<int32_t, int64_t>>;

namespace {

// Fetches and tracks offsets [from, to) of `partition`.
std::vector<CommitTracker::Track*> fetch(CommitTracker& c, int32_t partition, int64_t from,
                                         int64_t to) {
    std::vector<CommitTracker::Track*> out;
    for (int64_t o = from; o < to; ++o) {
        EXPECT_TRUE(c.fetched(partition, o));
        out.push_back(c.track(partition, o));
    }
    return out;
}

}  // namespace

TEST(CommitTracker, CommitsUpToTheFirstRecordNotYetDone) {
    CommitTracker c;
    c.assign(0);
    auto t = fetch(c, 0, 10, 15);  // 10..14
    // A committed offset is the next record to read: 10, the first not yet done.
    EXPECT_EQ(c.to_commit(), (Commits{{0, 10}}));
    c.done(t[1]);
    c.done(t[2]);
    EXPECT_TRUE(c.to_commit().empty()) << "11 and 12 are done, but 10 is not: still 10";
    c.done(t[0]);
    EXPECT_EQ(c.to_commit(), (Commits{{0, 13}})) << "10..12 done: commit up to 13";
    EXPECT_TRUE(c.to_commit().empty()) << "committed already";
    c.done(t[4]);
    c.done(t[3]);
    EXPECT_EQ(c.to_commit(), (Commits{{0, 15}})) << "all done: the position";
    EXPECT_EQ(c.outstanding(), 0u);
}

TEST(CommitTracker, PartitionsAreIndependent) {
    CommitTracker c;
    c.assign(0);
    c.assign(1);
    auto a = fetch(c, 0, 0, 2);
    auto b = fetch(c, 1, 100, 102);
    c.done(b[0]);
    c.done(a[1]);
    EXPECT_EQ(c.to_commit(), (Commits{{0, 0}, {1, 101}})) << "partition 0 waits for offset 0";
    EXPECT_EQ(c.outstanding(), 2u);
}

TEST(CommitTracker, RecordsSkippedByRuleAreCommittedPast) {
    CommitTracker c;
    c.assign(3);
    EXPECT_TRUE(c.fetched(3, 7));  // expired or dead-lettered: never tracked
    EXPECT_TRUE(c.fetched(3, 8));
    EXPECT_EQ(c.to_commit(), (Commits{{3, 9}}));
}

TEST(CommitTracker, RecordsOfAPartitionNotOursAreRefused) {
    CommitTracker c;
    EXPECT_FALSE(c.fetched(0, 1));
    EXPECT_EQ(c.track(0, 1), nullptr);
    EXPECT_TRUE(c.to_commit().empty());
}

TEST(CommitTracker, ARevokedPartitionLeavesOrphansUntilTheCoreLetsThemGo) {
    CommitTracker c;
    c.assign(0);
    auto t = fetch(c, 0, 0, 3);
    t[0]->in_core = true;  // with a consumer
    c.revoke(0);
    EXPECT_EQ(c.outstanding(), 0u);
    EXPECT_TRUE(c.to_commit().empty()) << "another member commits it now";
    EXPECT_TRUE(t[0]->orphan);
    EXPECT_TRUE(c.release_orphan(t[0]));
    // Assigned again (a rebalance gives it back): from the committed offset, afresh.
    c.assign(0, 1);
    EXPECT_EQ(c.parts().at(0).start, 1);
    auto again = fetch(c, 0, 1, 2);
    EXPECT_FALSE(c.release_orphan(again[0])) << "not an orphan";
    c.done(again[0]);
    EXPECT_EQ(c.to_commit(), (Commits{{0, 2}}));
}

TEST(CommitTracker, AReassignedPartitionStartsItsOwnCount) {
    CommitTracker c;
    c.assign(0);
    auto t = fetch(c, 0, 5, 6);
    c.done(t[0]);
    EXPECT_EQ(c.to_commit(), (Commits{{0, 6}}));
    c.assign(0, 2);  // reassigned from an older offset: nothing committed until past 6
    auto r = fetch(c, 0, 2, 4);
    c.done(r[0]);
    c.done(r[1]);
    EXPECT_EQ(c.to_commit(), (Commits{{0, 4}})) << "a new assignment starts its own count";
}
