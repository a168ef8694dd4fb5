// Credit (qdrouterd's link credit rules): consumers grant it, producers get what their
// destinations can take, drain empties it, and link-routed pairs pass it through.

#include <algorithm>
#include <cassert>

#include "trestle/core/router.hpp"

namespace trestle::core {

void Router::credit(Link* l, int32_t credit, bool drain) {
    if (l->dir_ != Direction::outgoing) return;
    l->credit_ = credit < 0 ? 0 : credit;
    l->drain_ = drain;
    if (!drain) l->peer_drained_ = false;
    pump(l);
}

void Router::producer_flow(Link* l, int32_t credit) {
    if (l->dir_ != Direction::incoming || !l->link_routed_) return;
    Link* out = l->routed_peer_;
    if (out && out->drain_ && credit == 0) {
        out->peer_drained_ = true;
        pump(out);
    }
}

// How much credit an incoming link's producer should have.
//  - link routed: whatever the consumer on the other side has given, minus what waits here;
//  - fixed target without destination: none (drained once, when it was lost);
//  - otherwise: link capacity minus the deliveries this link still holds.
void Router::update_credit(Link* in) {
    if (in->detached_ || !in->port_ || in->peer_pending_) return;
    if (in->link_routed_) {
        Link* out = in->routed_peer_;
        if (!out || out->peer_pending_) return;
        int32_t target = out->credit_ - static_cast<int32_t>(out->undelivered_.size());
        if (target < 0) target = 0;
        in->credit_ = target;
        in->port_->flow(static_cast<uint32_t>(target), out->drain_ && !out->peer_drained_);
        return;
    }
    if (in->addr_ && !in->addr_->has_destinations()) {
        if (!in->blocked_) {
            in->blocked_ = true;
            in->credit_ = 0;
            in->port_->flow(0, true);
        }
        return;
    }
    in->blocked_ = false;
    size_t held = in->in_flight_.size();
    uint32_t target = held < in->capacity_ ? static_cast<uint32_t>(in->capacity_ - held) : 0;
    // Top up in batches (a quarter of the capacity): fewer flow frames and larger bursts from the
    // producer. A producer at zero credit is always topped up at once.
    int32_t batch = static_cast<int32_t>(std::max<uint32_t>(1, in->capacity_ / 4));
    if (in->credit_ > 0 && static_cast<int32_t>(target) - in->credit_ < batch) return;
    in->credit_ = static_cast<int32_t>(target);
    in->port_->flow(target, false);
}

}  // namespace trestle::core
