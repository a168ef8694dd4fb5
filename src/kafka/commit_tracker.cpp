#include "kafka/commit_tracker.hpp"

#include <algorithm>

namespace trestle::kafka {

void CommitTracker::assign(int32_t partition, int64_t start) {
    Part& p = parts_[partition] = Part{};
    if (start >= 0) p.start = start;
}

bool CommitTracker::fetched(int32_t partition, int64_t offset) {
    auto it = parts_.find(partition);
    if (it == parts_.end()) return false;  // from a partition no longer ours
    it->second.next_offset = offset + 1;
    return true;
}

CommitTracker::Track* CommitTracker::track(int32_t partition, int64_t offset) {
    auto it = parts_.find(partition);
    if (it == parts_.end()) return nullptr;
    Track* t = new_track();
    t->partition = partition;
    t->offset = offset;
    it->second.pending.push_back(t);
    ++outstanding_;
    return t;
}

void CommitTracker::done(Track* t) {
    t->done = true;
    --outstanding_;
    auto it = parts_.find(t->partition);
    if (it == parts_.end()) return;
    auto& q = it->second.pending;
    while (!q.empty() && q.front()->done) {
        free_track(q.front());
        q.pop_front();
    }
}

bool CommitTracker::release_orphan(Track* t) {
    if (!t->orphan) return false;
    orphans_.erase(std::remove(orphans_.begin(), orphans_.end(), t), orphans_.end());
    free_track(t);
    return true;
}

void CommitTracker::revoke(int32_t partition) {
    auto it = parts_.find(partition);
    if (it == parts_.end()) return;
    for (Track* t : it->second.pending) {
        if (!t->done) --outstanding_;
        if (t->in_core) {
            t->orphan = true;
            orphans_.push_back(t);
        } else {
            free_track(t);
        }
    }
    parts_.erase(it);
}

std::vector<std::pair<int32_t, int64_t>> CommitTracker::to_commit() {
    std::vector<std::pair<int32_t, int64_t>> out;
    for (auto& [id, p] : parts_) {
        int64_t upto = p.pending.empty() ? p.next_offset : p.pending.front()->offset;
        if (upto < 0 || upto <= p.committed) continue;
        out.emplace_back(id, upto);
        p.committed = upto;
    }
    return out;
}

void CommitTracker::clear() {
    for (auto& [id, p] : parts_)
        for (Track* t : p.pending) delete t;
    parts_.clear();
    for (Track* t : orphans_) delete t;
    orphans_.clear();
    for (Track* t : spare_) delete t;
    spare_.clear();
    outstanding_ = 0;
}

CommitTracker::Track* CommitTracker::new_track() {
    if (spare_.empty()) return new Track;
    Track* t = spare_.back();
    spare_.pop_back();
    return t;
}

void CommitTracker::free_track(Track* t) {
    if (spare_.size() >= 1024) {
        delete t;
        return;
    }
    *t = Track{};  // the message goes now
    spare_.push_back(t);
}

}  // namespace trestle::kafka
