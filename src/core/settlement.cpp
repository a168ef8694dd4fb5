// Settlement: a consumer's outcome travels back to the producer; multicast copies are
// aggregated into one outcome (qdrouterd delivery.c); a released delivery is routed again.

#include <algorithm>
#include <cassert>

#include "trestle/core/router.hpp"

namespace trestle::core {

size_t Router::stuck_deliveries(uint64_t older_than_ms) const {
    size_t n = 0;
    for (const auto& [id, l] : links_) {
        if (l->direction() != Direction::incoming) continue;
        for (const Delivery* d = l->in_flight_.front(); d; d = d->next)
            n += !d->presettled && now_ms_ > d->arrival_ms + older_than_ms;
    }
    return n;
}

void Router::count_outcome(Link* l, const DeliveryState& s) {
    switch (s.outcome) {
        case Outcome::accepted:
            ++l->counters_.accepted;
            break;
        case Outcome::rejected:
            ++l->counters_.rejected;
            break;
        case Outcome::released:
            ++l->counters_.released;
            break;
        case Outcome::modified:
            ++l->counters_.modified;
            break;
        case Outcome::none:
            break;
    }
}

// Tell the producer the outcome (unless it settled already) and let the delivery go.
void Router::settle_in(Delivery* in, const DeliveryState& s) {
    if (!in->presettled) {
        uint64_t delay = now_ms_ > in->arrival_ms ? now_ms_ - in->arrival_ms : 0;
        if (delay > 10000)
            ++counters_.delayed_10sec;
        else if (delay > 1000)
            ++counters_.delayed_1sec;
        switch (s.outcome) {
            case Outcome::accepted:
                ++counters_.accepted;
                break;
            case Outcome::rejected:
                ++counters_.rejected;
                break;
            case Outcome::released:
                ++counters_.released;
                break;
            case Outcome::modified:
                ++counters_.modified;
                break;
            case Outcome::none:
                break;
        }
        if (in->link) {
            count_outcome(in->link, s);
            if (!in->settled_upstream && in->link->port_) in->link->port_->update(*in, s, true);
        }
    }
    release_in(in);
}

// The delivery stops occupying its producer's link capacity; credit flows again.
void Router::release_in(Delivery* in) {
    Link* l = in->link;
    if (l && in->where == Delivery::Where::in_flight) {
        l->in_flight_.remove(in);
        if (!in->presettled) --l->unsettled_;
    }
    in->where = Delivery::Where::nowhere;
    in->link = nullptr;
    // Multicast presettled deliveries are released before their copies are even sent; the
    // copies hold their own message references, so the delivery can go at once.
    free_delivery(in);
    if (l && !l->detached_) update_credit(l);
}

// One copy of a multicast delivery reached a terminal state: aggregate REJECTED > ACCEPTED >
// MODIFIED > RELEASED and settle the producer's delivery once all copies are done.
void Router::copy_done_for(Delivery* in, const DeliveryState& s) {
    DeliveryState eff = s;
    if (eff.outcome == Outcome::none) eff.outcome = Outcome::accepted;  // settled, no outcome
    if (aggregation_rank(eff.outcome) > aggregation_rank(in->state.outcome)) in->state = eff;
    if (--in->copies == 0) {
        DeliveryState agg = in->state;
        settle_in(in, agg);
    }
}

// A copy that was never sent comes back: try another consumer, else no route.
void Router::reroute(Delivery* in) {
    in->out = nullptr;
    in->copies = 0;
    Address* a = in->address;
    if (in->link && in->link->link_routed_) a = nullptr;
    if (a && a->waypoint_ && !(in->link && in->link->from_waypoint_)) {
        forward_to(in, a->waypoint_);
        return;
    }
    Candidates cs;
    if (a && collect(a, a->name_, in->link ? in->link->owner_ : 0, cs)) {
        Distribution dist = effective_distribution(a, a->name_, in->link);
        if (dist != Distribution::multicast) {
            route_to(in, dist, cs, a->next_);
            return;
        }
    }
    no_route(in);
}

void Router::release_message(Delivery& d) {
    d.message = {};
    if (Delivery* in = d.in; in && !in->multicast && in->out == &d) in->message = {};
}

void Router::disposition(Delivery* d, const DeliveryState& state, bool settled) {
    Link* l = d->link;
    if (!l) return;
    if (l->dir_ == Direction::outgoing) {
        Delivery* in = d->in;
        if (!settled) {
            // A non-final update (e.g. receiver settle mode second): pass it upstream as is.
            d->state = state;
            if (in && !in->multicast && in->link && in->link->port_ && !in->settled_upstream)
                in->link->port_->update(*in, state, false);
            return;
        }
        if (d->where == Delivery::Where::in_flight) {
            l->in_flight_.remove(d);
            --l->unsettled_;
        }
        d->where = Delivery::Where::nowhere;
        count_outcome(l, state);
        free_delivery(d);
        if (!in) return;
        if (in->multicast) {
            copy_done_for(in, state);
        } else {
            in->out = nullptr;
            in->copies = 0;
            settle_in(in, state);
        }
        return;
    }
    // Incoming: the producer updated or settled its own delivery.
    if (!settled) return;
    d->settled_upstream = true;
    d->handle = nullptr;
    if (d->presettled) return;
    Delivery* out = d->out;
    if (out && out->where == Delivery::Where::in_flight && out->link && out->link->port_ &&
        out->state.terminal()) {
        // Receiver settle mode `second`: the consumer waits for us to settle after the
        // producer did.
        Link* ol = out->link;
        ol->in_flight_.remove(out);
        --ol->unsettled_;
        out->where = Delivery::Where::nowhere;
        DeliveryState s = out->state;
        ol->port_->update(*out, s, true);
        count_outcome(ol, s);
        free_delivery(out);
        d->out = nullptr;
        d->copies = 0;
        settle_in(d, s);
    }
}

}  // namespace trestle::core
