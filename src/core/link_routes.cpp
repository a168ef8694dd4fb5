// Link routing: the rules, the route container a routed link goes to, and the routed pair of
// links that carries attach, credit and dispositions end to end (qdrouterd route_control.c).

#include <algorithm>
#include <cassert>

#include "trestle/core/router.hpp"

namespace trestle::core {

std::string Router::add_link_route(const LinkRouteRule& rule) {
    if (rule.prefix.empty() == rule.pattern.empty())
        return "exactly one of 'prefix' or 'pattern' must be set";
    if (rule.connection.empty() == rule.container_id.empty())
        return "exactly one of 'connection' or 'containerId' must be set";
    for (const auto& r : link_routes_)
        if (!rule.name.empty() && r.name == rule.name)
            return "a linkRoute named '" + rule.name + "' already exists";
    std::string key =
        rule.prefix.empty() ? canonical_pattern(rule.pattern) : prefix_to_pattern(rule.prefix);
    auto& table = rule.direction == Direction::incoming ? link_route_in_ : link_route_out_;
    if (!table.insert(key, link_routes_.size()))
        return "a linkRoute with the same prefix/pattern and direction already exists";
    link_routes_.push_back(rule);
    return {};
}

bool Router::remove_link_route(const std::string& name) {
    auto it = std::find_if(link_routes_.begin(), link_routes_.end(),
                           [&](const LinkRouteRule& r) { return r.name == name; });
    if (it == link_routes_.end()) return false;
    link_routes_.erase(it);
    link_route_in_ = {};
    link_route_out_ = {};
    for (size_t i = 0; i < link_routes_.size(); ++i) {
        const auto& r = link_routes_[i];
        auto& table = r.direction == Direction::incoming ? link_route_in_ : link_route_out_;
        table.insert(r.prefix.empty() ? canonical_pattern(r.pattern) : prefix_to_pattern(r.prefix),
                     i);
    }
    return true;
}

const LinkRouteRule* Router::find_link_route(std::string_view address, Direction dir) const {
    const auto& table = dir == Direction::incoming ? link_route_in_ : link_route_out_;
    if (table.size() == 0) return nullptr;
    if (const size_t* i = table.match(address)) return &link_routes_[*i];
    return nullptr;
}

Connection* Router::route_container_for(const LinkRouteRule& r) const {
    Connection* best = nullptr;
    for (const auto& [id, c] : connections_) {
        if (c->info_.role != "route-container" || !c->port_) continue;
        bool match = !r.connection.empty() ? c->info_.connector == r.connection
                                           : c->info_.container_id == r.container_id;
        // Lowest id = the longest-standing connection: deterministic choice.
        if (match && (!best || c->id_ < best->id_)) best = c.get();
    }
    return best;
}

static std::string rewrite_external(std::string_view address, const LinkRouteRule& r) {
    std::string_view a = address;
    if (!r.del_external_prefix.empty() &&
        a.substr(0, r.del_external_prefix.size()) == r.del_external_prefix)
        a.remove_prefix(r.del_external_prefix.size());
    return r.add_external_prefix + std::string(a);
}

AttachResult Router::attach_link_routed(Connection& conn, const AttachRequest& req,
                                        const LinkRouteRule& route, LinkPort& port, Link** out) {
    Connection* rc = route_container_for(route);
    if (!rc)
        return {AttachResult::Kind::refused,
                {condition::no_route, "No route to the destination node"},
                {}};
    Link* l = new_link(conn, req, &port);
    l->link_routed_ = true;
    l->peer_pending_ = true;

    AttachRequest peer_req = req;
    peer_req.direction =
        req.direction == Direction::incoming ? Direction::outgoing : Direction::incoming;
    Terminus& pt = req.direction == Direction::incoming ? peer_req.target : peer_req.source;
    if (pt.has_address) pt.address = rewrite_external(pt.address, route);
    Link* p = new_link(*rc, peer_req, nullptr);
    p->link_routed_ = true;
    p->presettled_only_ = false;  // settle modes are the client's, relayed as they come
    l->presettled_only_ = false;
    l->routed_peer_ = p;
    p->routed_peer_ = l;
    ErrorCondition refusal;
    LinkPort* pp = rc->port_->open_link(*p, peer_req, refusal);
    if (!pp) {
        l->routed_peer_ = p->routed_peer_ = nullptr;
        destroy_link(p);
        destroy_link(l);
        if (refusal.empty()) refusal = {condition::no_route, "No route to the destination node"};
        return {AttachResult::Kind::refused, std::move(refusal), {}};
    }
    p->port_ = pp;
    *out = l;
    return {AttachResult::Kind::pending, {}, {}};
}

void Router::peer_attached(Link* p, const Terminus& source, const Terminus& target) {
    Link* l = p->routed_peer_;
    if (!l) return;
    l->peer_pending_ = false;
    if (l->port_) l->port_->opened(source, target);
    // Credit flows end to end from here on.
    if (l->dir_ == Direction::incoming)
        update_credit(l);
    else
        update_credit(p);
}

}  // namespace trestle::core
