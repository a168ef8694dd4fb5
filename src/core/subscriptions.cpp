// MQTT topic-filter subscriptions (shared groups, no-local), in-process publishing and the
// retained messages a new subscription receives.

#include <algorithm>
#include <cassert>

#include "trestle/core/router.hpp"

namespace trestle::core {

// ---------------------------------------------------------------------------------------------
// Subscriptions

std::string Router::subscribe(Link* l, std::string_view filter, bool no_local) {
    SharedFilter sf;
    if (!parse_shared(filter, sf))
        return "malformed shared subscription '" + std::string(filter) + "'";
    if (!valid_topic_filter(sf.filter)) return "invalid topic filter '" + sf.filter + "'";
    if (!sf.group.empty() && no_local) return "no-local is not allowed on a shared subscription";
    // Subscribing again replaces the options.
    if (std::find(l->subscriptions_.begin(), l->subscriptions_.end(), filter) !=
        l->subscriptions_.end())
        unsubscribe(l, filter);
    if (sf.group.empty()) {
        filters_.add(sf.filter, FilterEntry{l, nullptr, no_local});
        filters_changed(sf.filter, +1);
    } else {
        auto& g = groups_[{sf.group, sf.filter}];
        if (!g) {
            g = std::make_unique<SharedGroup>();
            g->name = sf.group;
            g->filter = sf.filter;
        }
        g->members.push_back(l);
        if (g->members.size() == 1) {
            filters_.add(sf.filter, FilterEntry{nullptr, g.get(), false});
            filters_changed(sf.filter, +1);
        }
    }
    l->subscriptions_.emplace_back(filter);
    return {};
}

bool Router::unsubscribe(Link* l, std::string_view filter) {
    auto it = std::find(l->subscriptions_.begin(), l->subscriptions_.end(), filter);
    if (it == l->subscriptions_.end()) return false;
    l->subscriptions_.erase(it);
    SharedFilter sf;
    parse_shared(filter, sf);
    if (sf.group.empty()) {
        filters_.remove(sf.filter, FilterEntry{l, nullptr, false});
        filters_changed(sf.filter, -1);
        return true;
    }
    auto git = groups_.find({sf.group, sf.filter});
    if (git == groups_.end()) return true;
    SharedGroup* g = git->second.get();
    auto& ms = g->members;
    ms.erase(std::find(ms.begin(), ms.end(), l));
    if (ms.empty()) {
        filters_.remove(sf.filter, FilterEntry{nullptr, g, false});
        filters_changed(sf.filter, -1);
        groups_.erase(git);
    }
    return true;
}

void Router::remove_subscriptions(Link* l) {
    while (!l->subscriptions_.empty()) {
        std::string f = l->subscriptions_.back();
        unsubscribe(l, f);
    }
}

// Subscriptions count as destinations of the addresses they match: producers blocked on those
// addresses get credit (or lose it) accordingly.
void Router::filters_changed(std::string_view filter, int delta) {
    for (auto& [name, a] : addresses_) {
        if (!topic_matches(filter, name)) continue;
        bool had = a->has_destinations();
        a->filter_matches_ = static_cast<uint32_t>(static_cast<int>(a->filter_matches_) + delta);
        if (had != a->has_destinations()) destinations_changed(a.get(), had);
    }
}

void Router::publish(std::string_view address, MessageRef message) {
    // QoS 1/2 (a will, a management publish) travel unsettled, so subscribers get them at the
    // QoS they were published with; nobody waits for the outcome.
    bool settled = !message || message->qos == 0;
    transfer(publisher_, std::move(message), address, settled, nullptr);
}

size_t Router::send_retained(Link* l, std::string_view filter) {
    size_t n = 0;
    retained_->match(filter, [&](std::string_view, const MessageRef& m) {
        if (m->expires_at_ms && m->expires_at_ms <= now_ms_) return;
        Delivery* d = new_delivery();
        d->message = m;
        d->retained = true;
        d->presettled = l->presettled_only_;
        enqueue(l, d);
        ++n;
    });
    if (n) pump(l);
    return n;
}

}  // namespace trestle::core
