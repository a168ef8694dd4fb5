// The commit rule of a Kafka route's consumer: per partition, offsets are committed only up to
// the first record not yet done (settled by its consumers, or dropped by rule), so a crash or a
// rebalance redelivers everything not done and nothing is lost (at least once). Pure: no
// librdkafka, no I/O; RouteOut (route_out.cpp) feeds it and commits what it returns.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "trestle/core/message.hpp"

namespace trestle::kafka {

class CommitTracker {
  public:
    // One record between its fetch and its end.
    struct Track {
        int32_t partition = 0;
        int64_t offset = 0;
        bool done = false;
        bool in_core = false;  // a core delivery refers to it
        bool orphan = false;   // its partition was revoked while it was in the core
        uint64_t retry_at = 0;
        core::MessageRef message;
        std::string address;
    };
    struct Part {
        std::deque<Track*> pending;  // in offset order; done ones popped from the front
        int64_t next_offset = -1;    // after the last record taken
        int64_t committed = -1;
        int64_t start = -1;  // first offset to consume, if known at assignment
    };

    CommitTracker() = default;
    ~CommitTracker() { clear(); }
    CommitTracker(const CommitTracker&) = delete;
    CommitTracker& operator=(const CommitTracker&) = delete;

    // The partition is ours (again), from `start` if known (-1: not known).
    void assign(int32_t partition, int64_t start = -1);
    // A record was fetched: the partition's position moves past it. False: not our partition.
    // A record skipped by rule (expired, dead-lettered) needs nothing more.
    bool fetched(int32_t partition, int64_t offset);
    // A fetched record goes to consumers: tracked until done().
    Track* track(int32_t partition, int64_t offset);
    // Its consumers settled it (or it was dropped): commits may pass it.
    void done(Track* t);
    // The core let go of a record whose partition was revoked meanwhile: freed. True if it was
    // such an orphan (nothing else to do with it).
    bool release_orphan(Track* t);
    // Another member owns the partition now: its records are forgotten (those still in the
    // core become orphans, freed when the core lets them go).
    void revoke(int32_t partition);
    // Per partition, the offset to commit now — the first record not yet done, or the position
    // when all are — if it is past what was committed; recorded as committed.
    std::vector<std::pair<int32_t, int64_t>> to_commit();
    // Records tracked and not yet done.
    size_t outstanding() const { return outstanding_; }
    const std::map<int32_t, Part>& parts() const { return parts_; }
    // Forgets everything (the consumer stops).
    void clear();

  private:
    Track* new_track();
    void free_track(Track* t);

    std::map<int32_t, Part> parts_;
    std::vector<Track*> orphans_;
    // Tracks come and go by the thousand per second: some are kept for reuse (allocating one
    // per record and freeing it turns later, past malloc's per-thread cache, costs the loop;
    // bench/RESULTS.md).
    std::vector<Track*> spare_;
    size_t outstanding_ = 0;
};

}  // namespace trestle::kafka
