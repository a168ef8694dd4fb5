// The routing core. Rules follow qdrouterd (research/anchors.md b1) and DESIGN.md
// "Addresses and routing"; deviations are commented where they are made.
#include "trestle/core/router.hpp"

#include <algorithm>
#include <cassert>
#include <random>

namespace trestle::core {

namespace {
// Under ASan a freed delivery is freed for real, not pooled, so that a pointer kept past its
// settlement (by the core or an adapter) is reported where it is used, not silently reused.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pool_deliveries = false;
#elif defined(__has_feature)
constexpr bool pool_deliveries = !__has_feature(address_sanitizer);
#else
constexpr bool pool_deliveries = true;
#endif
}  // namespace

// ---------------------------------------------------------------------------------------------
// DeliveryList

void DeliveryList::push_back(Delivery* d) {
    d->prev = tail_;
    d->next = nullptr;
    if (tail_)
        tail_->next = d;
    else
        head_ = d;
    tail_ = d;
    ++size_;
}

void DeliveryList::push_front(Delivery* d) {
    d->prev = nullptr;
    d->next = head_;
    if (head_)
        head_->prev = d;
    else
        tail_ = d;
    head_ = d;
    ++size_;
}

void DeliveryList::remove(Delivery* d) {
    if (d->prev)
        d->prev->next = d->next;
    else
        head_ = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        tail_ = d->prev;
    d->prev = d->next = nullptr;
    --size_;
}

Delivery* DeliveryList::pop_front() {
    Delivery* d = head_;
    if (d) remove(d);
    return d;
}

// ---------------------------------------------------------------------------------------------
// Construction and configuration

Router::Router(RouterSettings settings) : settings_(std::move(settings)) {
    topo_prefix_ = "_topo/0/" + settings_.id + "/";
    // The in-process publisher (wills, management): an anonymous, presettled MQTT-style
    // producer on an internal connection that no adapter owns.
    internal_conn_ = std::make_unique<Connection>();
    internal_conn_->info_.protocol = "internal";
    internal_conn_->info_.container_id = settings_.id;
    AttachRequest req;
    req.direction = Direction::incoming;
    req.name = "$in-process";
    req.target.has_address = false;
    req.unconfigured_distribution = Distribution::multicast;
    publisher_ = new_link(*internal_conn_, req, nullptr);
}

Router::~Router() {
    // Deliveries sit in link lists; orphaned incoming ones are reachable only from their copies.
    std::vector<Delivery*> all;
    for (auto& [id, l] : links_) {
        for (Delivery* d = l->undelivered_.front(); d; d = d->next) all.push_back(d);
        for (Delivery* d = l->in_flight_.front(); d; d = d->next) all.push_back(d);
    }
    for (size_t i = 0, n = all.size(); i < n; ++i)
        if (Delivery* in = all[i]->in; in && !in->link) {
            in->link = reinterpret_cast<Link*>(1);  // mark: collected once
            all.push_back(in);
        }
    for (Delivery* d : all) {
        d->address = nullptr;  // addresses go with the map
        delete d;
    }
    for (Delivery* d : delivery_pool_) delete d;
}

std::string Router::add_address_rule(const AddressRule& rule) {
    if (rule.prefix.empty() == rule.pattern.empty())
        return "exactly one of 'prefix' or 'pattern' must be set";
    for (const auto& r : address_rules_)
        if (!rule.name.empty() && r.name == rule.name)
            return "an address named '" + rule.name + "' already exists";
    std::string key =
        rule.prefix.empty() ? canonical_pattern(rule.pattern) : prefix_to_pattern(rule.prefix);
    if (!address_table_.insert(key, address_rules_.size()))
        return "an address with the same prefix/pattern already exists";
    address_rules_.push_back(rule);
    ++rules_generation_;
    // Addresses already in use follow the new rule for their next messages.
    for (auto& [name, a] : addresses_) {
        if (a->dynamic_) continue;
        auto d = configured_distribution(name);
        a->configured_ = d.has_value();
        a->distribution_ = d.value_or(settings_.default_distribution);
    }
    return {};
}

bool Router::remove_address_rule(const std::string& name) {
    auto it = std::find_if(address_rules_.begin(), address_rules_.end(),
                           [&](const AddressRule& r) { return r.name == name; });
    if (it == address_rules_.end()) return false;
    address_rules_.erase(it);
    ++rules_generation_;
    address_table_ = {};
    for (size_t i = 0; i < address_rules_.size(); ++i) {
        const auto& r = address_rules_[i];
        address_table_.insert(
            r.prefix.empty() ? canonical_pattern(r.pattern) : prefix_to_pattern(r.prefix), i);
    }
    for (auto& [n, a] : addresses_) {
        if (a->dynamic_) continue;
        auto d = configured_distribution(n);
        a->configured_ = d.has_value();
        a->distribution_ = d.value_or(settings_.default_distribution);
    }
    return true;
}

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

Distribution Router::distribution_for(std::string_view address) const {
    return configured_distribution(address).value_or(settings_.default_distribution);
}

std::optional<Distribution> Router::configured_distribution(std::string_view address) const {
    if (address_table_.size() == 0) return std::nullopt;
    if (const size_t* i = address_table_.match(address)) return address_rules_[*i].distribution;
    return std::nullopt;
}

// An address entity decides; otherwise the sender's default (MQTT publishers: multicast),
// otherwise the router's.
Distribution Router::effective_distribution(const Address* a, std::string_view topic,
                                            const Link* from) const {
    if (a) {
        if (a->configured_) return a->distribution_;
    } else if (auto d = configured_distribution(topic)) {
        return *d;
    }
    if (from && from->unconfigured_distribution_) return *from->unconfigured_distribution_;
    return settings_.default_distribution;
}

std::string_view Router::normalize(std::string_view a) const {
    if (a.substr(0, 6) == "amqp:/" && a.substr(0, 7) != "amqp://") a.remove_prefix(6);
    if (a.substr(0, topo_prefix_.size()) == topo_prefix_) a.remove_prefix(topo_prefix_.size());
    return a;
}

Address* Router::find_address(std::string_view name) {
    auto it = addresses_.find(name);
    return it == addresses_.end() ? nullptr : it->second.get();
}

Address* Router::address_for(std::string_view name) {
    auto it = addresses_.find(name);
    if (it != addresses_.end()) return it->second.get();
    std::string key(name);
    auto a = std::make_unique<Address>();
    a->name_ = key;
    auto d = configured_distribution(key);
    a->configured_ = d.has_value();
    a->distribution_ = d.value_or(settings_.default_distribution);
    filters_.match(key, [&](const FilterEntry&) { ++a->filter_matches_; });
    a->waypoint_ = waypoint_for(key);
    Address* raw = a.get();
    addresses_.emplace(std::move(key), std::move(a));
    return raw;
}

// An address lives while anything refers to it: a link whose address it is, or a delivery
// routed to it. Whoever drops a reference asks here; nobody else erases addresses.
void Router::hold(Address* a) {
    ++a->refs_;
}

void Router::let_go(Address* a) {
    assert(a->refs_ > 0);
    if (--a->refs_ == 0) erase_address(a);
}

void Router::maybe_delete_address(Address* a) {
    if (a && a->refs_ == 0) erase_address(a);
}

void Router::erase_address(Address* a) {
    // By iterator: the key is the address's own name, which the erase frees.
    addresses_.erase(addresses_.find(std::string_view(a->name_)));
}

void Router::add_consumer(Address* a, Link* l) {
    bool had = a->has_destinations();
    a->consumers_.push_back(l);
    if (!had) destinations_changed(a, had);
}

void Router::remove_consumer(Address* a, Link* l) {
    auto& v = a->consumers_;
    auto it = std::find(v.begin(), v.end(), l);
    if (it == v.end()) return;
    size_t pos = static_cast<size_t>(it - v.begin());
    v.erase(it);
    if (a->next_ > pos) --a->next_;
    if (!a->has_destinations()) destinations_changed(a, true);
}

Link* Router::waypoint_for(std::string_view address) const {
    if (waypoints_.size() == 0) return nullptr;
    Link* const* w = waypoints_.match(address);
    return w ? *w : nullptr;
}

const Link::TopicRoute& Router::resolve_topic(Link* from, std::string_view topic) {
    auto& r = from->last_topic_;
    if (!r) r = std::make_unique<Link::TopicRoute>();
    if (r->generation != rules_generation_ || r->topic != topic) {
        r->topic.assign(topic);
        r->generation = rules_generation_;
        r->waypoint = waypoint_for(topic);
        r->configured = configured_distribution(topic);
    }
    return *r;
}

// Waypoints came or went: every address finds its own again, and producers whose address
// gained or lost its only destination learn it through their credit.
void Router::rebind_waypoints() {
    for (auto& [name, a] : addresses_) {
        Link* w = waypoint_for(name);
        if (w == a->waypoint_) continue;
        bool had = a->has_destinations();
        a->waypoint_ = w;
        if (had != a->has_destinations()) destinations_changed(a.get(), had);
    }
}

// Producers with a fixed target get credit only while their address has a destination;
// when the last destination goes, their credit is drained (qdrouterd).
void Router::destinations_changed(Address* a, bool) {
    for (Link* p : a->producers_) update_credit(p);
}

// ---------------------------------------------------------------------------------------------
// Connections

Connection* Router::connection_opened(ConnectionInfo info, ConnectionPort& port) {
    auto c = std::make_unique<Connection>();
    c->id_ = next_connection_id_++;
    c->info_ = std::move(info);
    c->port_ = &port;
    c->opened_ms_ = now_ms_;
    Connection* raw = c.get();
    connections_.emplace(raw->id_, std::move(c));
    return raw;
}

void Router::connection_closed(Connection* conn, const ErrorCondition*) {
    if (!conn) return;
    // The adapter is tearing the connection down: never call back into its ports.
    for (Link* l : conn->links_) l->port_ = nullptr;
    // Clients of a lost route container learn why their routed links ended; a client that
    // vanished just has its routed links closed at the container.
    ErrorCondition lost{condition::routed_link_lost, "Connectivity to the peer container was lost"};
    const ErrorCondition* err = conn->info_.role == "route-container" ? &lost : nullptr;
    while (!conn->links_.empty()) detach(conn->links_.back(), err);
    connections_.erase(conn->id_);
}

// ---------------------------------------------------------------------------------------------
// Links

Link* Router::new_link(Connection& conn, const AttachRequest& req, LinkPort* port) {
    auto l = std::make_unique<Link>();
    l->id_ = next_link_id_++;
    l->dir_ = req.direction;
    l->name_ = req.name;
    l->terminus_address_ = req.routed_terminus().address;
    l->conn_ = &conn;
    l->port_ = port;
    l->capacity_ = conn.info_.link_capacity ? conn.info_.link_capacity : 250;
    l->presettled_only_ =
        req.direction == Direction::outgoing && req.snd_settle_mode == SenderSettleMode::settled;
    l->subscriber_ = req.subscriber;
    l->takes_responsibility_ = req.takes_responsibility;
    l->unconfigured_distribution_ = req.unconfigured_distribution;
    l->from_waypoint_ = req.direction == Direction::incoming && req.from_waypoint;
    l->owner_ = req.owner ? req.owner : (uint64_t(1) << 63) | conn.id_;
    l->zero_credit_since_ms_ = now_ms_;
    Link* raw = l.get();
    links_.emplace(raw->id_, std::move(l));
    conn.links_.push_back(raw);
    return raw;
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

AttachResult Router::attach(Connection& conn, const AttachRequest& req, LinkPort& port,
                            Link** out) {
    *out = nullptr;
    const Terminus& t = req.routed_terminus();
    AttachResult res;

    if (t.has_address && !t.dynamic && !link_routes_.empty()) {
        std::string_view a = t.address;
        if (a.substr(0, 6) == "amqp:/" && a.substr(0, 7) != "amqp://") a.remove_prefix(6);
        // Links from the route container itself are never routed back to it.
        if (const LinkRouteRule* r = find_link_route(a, req.direction);
            r && conn.info_.role != "route-container")
            return attach_link_routed(conn, req, *r, port, out);
    }

    if (req.direction == Direction::incoming) {
        Link* l;
        if (!t.has_address || t.dynamic) {
            // Anonymous relay: each message is routed by its `to`.
            l = new_link(conn, req, &port);
        } else {
            Address* a = address_for(normalize(t.address));
            if (a->distribution_ == Distribution::unavailable) {
                maybe_delete_address(a);
                return {AttachResult::Kind::refused, {condition::not_found, "Node not found"}, {}};
            }
            l = new_link(conn, req, &port);
            l->addr_ = a;
            hold(a);
            a->producers_.push_back(l);
            // Initially blocked without a drain: the sender never had credit.
            l->blocked_ = !a->has_destinations();
        }
        if (!l->blocked_) update_credit(l);
        *out = l;
        return res;
    }

    // Outgoing link (the peer receives).
    if (!req.waypoint.empty()) {
        std::string pattern = canonical_pattern(req.waypoint);
        Link* l = new_link(conn, req, &port);
        if (!waypoints_.insert(pattern, l)) {
            destroy_link(l);
            return {
                AttachResult::Kind::refused,
                {condition::invalid_field, "addresses '" + pattern + "' already have a waypoint"},
                {}};
        }
        l->waypoint_ = std::move(pattern);
        ++rules_generation_;
        rebind_waypoints();
        *out = l;
        return res;
    }
    if (req.subscriber) {
        Link* l = new_link(conn, req, &port);
        *out = l;
        return res;
    }
    if (t.has_address && !t.dynamic && has_wildcards(t.address)) {
        // An AMQP receiver with an MQTT topic filter: a subscription, not an address.
        Link* l = new_link(conn, req, &port);
        l->subscriber_ = true;
        std::string err = subscribe(l, t.address);
        if (!err.empty()) {
            destroy_link(l);
            return {AttachResult::Kind::refused, {condition::invalid_field, err}, {}};
        }
        SharedFilter sf;
        parse_shared(t.address, sf);
        if (sf.group.empty() &&
            effective_distribution(nullptr, sf.filter, nullptr) == Distribution::multicast)
            send_retained(l, sf.filter);
        *out = l;
        return res;
    }
    Address* a;
    if (t.dynamic) {
        static thread_local std::mt19937_64 rng{std::random_device{}()};
        char buf[40];
        snprintf(buf, sizeof buf, "temp.%llx%llx", static_cast<unsigned long long>(rng()),
                 static_cast<unsigned long long>(next_dynamic_++));
        a = address_for(buf);
        a->dynamic_ = true;
        a->distribution_ = Distribution::closest;
        res.dynamic_address = "amqp:/" + topo_prefix_ + buf;
    } else if (!t.has_address) {
        return {AttachResult::Kind::refused,
                {condition::invalid_field, "A receiving link needs a source address or dynamic"},
                {}};
    } else {
        a = address_for(normalize(t.address));
        if (a->distribution_ == Distribution::unavailable) {
            maybe_delete_address(a);
            return {AttachResult::Kind::refused, {condition::not_found, "Node not found"}, {}};
        }
    }
    Link* l = new_link(conn, req, &port);
    l->addr_ = a;
    hold(a);
    if (t.dynamic) l->terminus_address_ = a->name_;
    add_consumer(a, l);
    // New receivers on a multicast address get its retained message first.
    if (!a->dynamic_ && a->configured_ && a->distribution_ == Distribution::multicast)
        send_retained(l, a->name_);
    *out = l;
    return res;
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

void Router::detach(Link* l, const ErrorCondition* error) {
    if (!l || l->detached_) return;
    Link* peer = l->routed_peer_;
    if (peer) {
        peer->routed_peer_ = nullptr;
        l->routed_peer_ = nullptr;
    }
    destroy_link(l);
    if (peer) {
        // The other end of a routed link goes with it, carrying the same condition.
        if (peer->port_) peer->port_->detach(error);
        destroy_link(peer);
    }
}

void Router::destroy_link(Link* l) {
    l->detached_ = true;
    if (!l->waypoint_.empty()) {
        // Unbound first, so that what it still held is routed without it.
        waypoints_.erase(l->waypoint_);
        l->waypoint_.clear();
        ++rules_generation_;
        rebind_waypoints();
    }
    if (!l->subscriptions_.empty()) remove_subscriptions(l);
    if (l->dir_ == Direction::outgoing)
        cleanup_outgoing(l);
    else
        cleanup_incoming(l);
    // The link's own reference kept its address alive through the cleanup above (which frees
    // deliveries that may have held the only other references): dropped last.
    if (Address* a = l->addr_) {
        l->addr_ = nullptr;
        let_go(a);
    }
    auto& cl = l->conn_->links_;
    cl.erase(std::find(cl.begin(), cl.end(), l));
    links_.erase(l->id_);
}

// A consumer went away. What it never got is routed again (anycast) or counted as released
// (multicast); what it got but did not settle comes back MODIFIED with delivery-failed, as
// qdrouterd does (the consumer may have processed it).
void Router::cleanup_outgoing(Link* l) {
    if (l->addr_) remove_consumer(l->addr_, l);
    while (Delivery* d = l->undelivered_.pop_front()) {
        d->where = Delivery::Where::nowhere;
        Delivery* in = d->in;
        bool dropped = !in && d->presettled;
        free_delivery(d);
        if (in) {
            if (in->multicast)
                copy_done_for(in, DeliveryState::released());
            else
                reroute(in);
        } else if (dropped) {
            ++l->counters_.dropped_presettled;
            ++counters_.dropped_presettled;
        }
    }
    while (Delivery* d = l->in_flight_.pop_front()) {
        d->where = Delivery::Where::nowhere;
        Delivery* in = d->in;
        free_delivery(d);
        if (in) {
            if (in->multicast) {
                copy_done_for(in, DeliveryState::modified(true));
            } else {
                in->out = nullptr;
                settle_in(in, DeliveryState::modified(true));
            }
        }
    }
    l->unsettled_ = 0;
}

// A producer went away. Its messages already routed stay in flight to their consumers (they
// were handed over); their outcomes just have nobody to go back to.
void Router::cleanup_incoming(Link* l) {
    if (l->addr_) {
        auto& v = l->addr_->producers_;
        v.erase(std::find(v.begin(), v.end(), l));
    }
    while (Delivery* d = l->in_flight_.pop_front()) {
        d->where = Delivery::Where::nowhere;
        d->link = nullptr;
        d->handle = nullptr;
        if (d->out == nullptr && d->copies == 0) free_delivery(d);
    }
    l->unsettled_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Deliveries

Delivery* Router::new_delivery() {
    Delivery* d;
    if (!delivery_pool_.empty()) {
        d = delivery_pool_.back();
        delivery_pool_.pop_back();
    } else {
        d = new Delivery();
    }
    if (++live_deliveries_ > peak_deliveries_) peak_deliveries_ = live_deliveries_;
    return d;
}

void Router::free_delivery(Delivery* d) {
    if (d == transfer_current_) transfer_current_freed_ = true;
    if (Address* a = d->address) {
        d->address = nullptr;
        let_go(a);
    }
    *d = Delivery{};
    --live_deliveries_;
    // Pooled up to the peak in use, so a steady window of thousands in flight (a Kafka-bound
    // stream holds two per message) allocates nothing; once nothing is in flight the pool
    // shrinks back to a small reserve.
    constexpr size_t reserve = 4096;
    if (pool_deliveries && delivery_pool_.size() < std::max(reserve, peak_deliveries_))
        delivery_pool_.push_back(d);
    else
        delete d;
    if (live_deliveries_ == 0) {
        if (delivery_pool_.size() > reserve) {
            for (size_t i = reserve; i < delivery_pool_.size(); ++i) delete delivery_pool_[i];
            delivery_pool_.resize(reserve);
            delivery_pool_.shrink_to_fit();
        }
        peak_deliveries_ = 0;
    }
}

Delivery* Router::transfer(Link* l, MessageRef message, std::string_view to, bool settled,
                           void* handle) {
    Delivery* d = new_delivery();
    d->link = l;
    d->message = std::move(message);
    d->handle = handle;
    d->presettled = settled;
    d->arrival_ms = now_ms_;
    d->where = Delivery::Where::in_flight;
    l->in_flight_.push_back(d);
    if (l->credit_ > 0) --l->credit_;  // the producer used one credit
    ++l->counters_.delivery_count;
    if (settled) {
        ++l->counters_.presettled;
        ++counters_.presettled;
    } else {
        ++l->unsettled_;
    }
    ++l->conn_->deliveries_in;
    l->conn_->last_delivery_ms = now_ms_;

    transfer_current_ = d;
    transfer_current_freed_ = false;

    if (l->link_routed_) {
        Link* peer = l->routed_peer_;
        if (!peer || peer->detached_) {
            no_route(d);
        } else {
            ++counters_.deliveries_ingress_route_container;
            forward_to(d, peer);
        }
    } else {
        ++counters_.deliveries_ingress;
        Address* a = l->addr_;
        std::string_view topic = a ? std::string_view(a->name_) : normalize(to);
        if (!a && !topic.empty()) a = find_address(topic);
        Message& m = *d->message;
        // What comes out of a waypoint was stored as retained when it went in.
        if (m.retain && !topic.empty() && !l->from_waypoint_) {
            if (m.empty_payload)
                retained_->erase(topic);
            else
                retained_->put(topic, d->message);
        }
        // A topic without an Address object: its waypoint and configured distribution as
        // effective_distribution() and waypoint_for() find them, from the link's cache.
        Link* waypoint = nullptr;
        Distribution dist;
        if (a) {
            waypoint = a->waypoint_;
            dist = effective_distribution(a, topic, l);
        } else if (topic.empty()) {
            dist = effective_distribution(nullptr, topic, l);
        } else {
            const Link::TopicRoute& r = resolve_topic(l, topic);
            waypoint = r.waypoint;
            dist = r.configured
                       ? *r.configured
                       : l->unconfigured_distribution_.value_or(settings_.default_distribution);
        }
        if (dist == Distribution::unavailable) {
            settle_in(d, DeliveryState::rejected(
                             {condition::not_found,
                              "Deliveries cannot be sent to an unavailable address"}));
        } else if (topic.empty()) {
            no_route(d);
        } else if (Link* w = l->from_waypoint_ ? nullptr : waypoint) {
            // Bound to a waypoint (Kafka): it is the only destination; the address's consumers
            // are fed from it.
            if (a) {
                ++a->counters_.deliveries_ingress;
                d->address = a;
                hold(a);
            }
            forward_to(d, w);
        } else if (a && a->filter_matches_ == 0) {
            // The common AMQP case: the address's own consumers, no subscriptions involved.
            if (a->consumers_.empty()) {
                no_route(d);
            } else {
                ++a->counters_.deliveries_ingress;
                d->address = a;
                hold(a);
                route_to(d, dist, a->consumers_, a->next_);
            }
        } else if (!collect(a, topic, l->owner_, scratch_)) {
            no_route(d);
        } else {
            if (a) {
                ++a->counters_.deliveries_ingress;
                d->address = a;
                hold(a);
            }
            route_to(d, dist, scratch_, a ? a->next_ : transient_next_);
        }
    }

    bool freed = transfer_current_freed_;
    transfer_current_ = nullptr;
    return freed ? nullptr : d;
}

// No destination: an unsettled message comes back RELEASED; a presettled one is dropped and
// counted (the sender gave up any claim to it).
void Router::no_route(Delivery* in) {
    if (in->presettled) {
        if (in->link) ++in->link->counters_.dropped_presettled;
        ++counters_.dropped_presettled;
        release_in(in);
    } else {
        settle_in(in, DeliveryState::released());
    }
}

void Router::route_to(Delivery* in, Distribution dist, const Candidates& cs, size_t& next) {
    switch (dist) {
        case Distribution::multicast: {
            in->multicast = true;
            const bool settled = in->presettled;
            // pump() may complete `in`, and the candidate list may be the scratch vector:
            // snapshot it, then enqueue every copy before sending any, so the fan-out count is
            // final before an outcome can arrive.
            size_t n = cs.size();
            Link* stack_buf[16];
            std::vector<Link*> heap_buf;
            Link** targets = stack_buf;
            if (n > 16) {
                heap_buf.assign(cs.begin(), cs.end());
                targets = heap_buf.data();
            } else {
                std::copy(cs.begin(), cs.end(), stack_buf);
            }
            for (size_t i = 0; i < n; ++i) {
                Link* c = targets[i];
                Delivery* copy = new_delivery();
                copy->message = in->message;
                if ((copy->address = in->address)) hold(copy->address);
                copy->presettled = settled || c->presettled_only_;
                if (!settled) {
                    copy->in = in;
                    ++in->copies;
                }
                enqueue(c, copy);
            }
            // Presettled: nothing waits for the copies, so the producer's credit comes back now;
            // slow consumers shed the oldest presettled copies instead (enqueue()).
            if (settled) release_in(in);
            for (size_t i = 0; i < n; ++i) pump(targets[i]);
            break;
        }
        case Distribution::closest:
            forward_to(in, pick_closest(cs, next));
            break;
        case Distribution::balanced:
        case Distribution::unavailable:
            forward_to(in, pick_balanced(cs, next));
            break;
    }
}

// The consumers of a topic: the address's own links plus every subscription whose filter
// matches (one member of each shared group), each link once.
bool Router::collect(Address* a, std::string_view topic, uint64_t origin_owner, Candidates& out) {
    out.clear();
    if (a) out.insert(out.end(), a->consumers_.begin(), a->consumers_.end());
    if (filters_.size() && (!a || a->filter_matches_ > 0)) {
        filters_.match(topic, [&](const FilterEntry& e) {
            Link* l = e.link;
            if (e.group) {
                auto& ms = e.group->members;
                if (ms.empty()) return;
                l = ms[e.group->next++ % ms.size()];
            } else if (e.no_local && l->owner_ == origin_owner) {
                return;
            }
            if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
        });
    }
    return !out.empty();
}

// Strict round-robin over the consumers, without looking at their queues.
Link* Router::pick_closest(const Candidates& cs, size_t& next) {
    if (next >= cs.size()) next = 0;
    return cs[next++];
}

// The consumer with the fewest undelivered + unsettled deliveries among those below their
// capacity; if all are at capacity, the least loaded anyway (buffer, never drop). An idle
// consumer found first wins at once and the start rotates, so light load is round-robin.
Link* Router::pick_balanced(const Candidates& cs, size_t& next) {
    size_t n = cs.size();
    if (next >= n) next = 0;
    Link* best_eligible = nullptr;
    size_t best_eligible_v = SIZE_MAX;
    Link* best_any = nullptr;
    size_t best_any_v = SIZE_MAX;
    for (size_t k = 0; k < n; ++k) {
        size_t i = (next + k) % n;
        Link* c = cs[i];
        size_t v = c->undelivered_.size() + c->unsettled_;
        if (v == 0) {
            next = (i + 1) % n;
            return c;
        }
        if (v < c->capacity_ && v < best_eligible_v) {
            best_eligible = c;
            best_eligible_v = v;
        }
        if (v < best_any_v) {
            best_any = c;
            best_any_v = v;
        }
    }
    return best_eligible ? best_eligible : best_any;
}

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

void Router::forward_to(Delivery* in, Link* out) {
    Delivery* copy = new_delivery();
    copy->message = in->message;
    if ((copy->address = in->address)) hold(copy->address);
    copy->presettled = in->presettled || out->presettled_only_;
    // Even a presettled delivery stays held until its copy leaves the router: anycast
    // producers are paced by their consumer instead of losing messages to a full queue.
    copy->in = in;
    in->out = copy;
    in->copies = 1;
    enqueue(out, copy);
    pump(out);
}

void Router::enqueue(Link* out, Delivery* d) {
    if (d->presettled && !d->in && out->undelivered_.size() >= out->capacity_)
        drop_oldest_presettled(out);
    d->link = out;
    d->where = Delivery::Where::undelivered;
    out->undelivered_.push_back(d);
}

// Slow-consumer protection for multicast (qdrouterd): with the queue at capacity, the oldest
// presettled copy nobody waits for is discarded and counted.
void Router::drop_oldest_presettled(Link* out) {
    for (Delivery* d = out->undelivered_.front(); d; d = d->next) {
        if (d->presettled && !d->in) {
            out->undelivered_.remove(d);
            ++out->counters_.dropped_presettled;
            ++counters_.dropped_presettled;
            if (out->addr_) ++out->addr_->counters_.dropped_presettled;
            free_delivery(d);
            return;
        }
    }
}

void Router::pump(Link* out) {
    if (!out->port_ || out->detached_ || out->peer_pending_) return;
    while (out->credit_ > 0 && !out->undelivered_.empty()) {
        Delivery* d = out->undelivered_.pop_front();
        --out->credit_;
        ++out->counters_.delivery_count;
        ++out->conn_->deliveries_out;
        out->conn_->last_delivery_ms = now_ms_;
        if (out->link_routed_) {
            ++counters_.deliveries_egress_route_container;
        } else {
            ++counters_.deliveries_egress;
            if (out->addr_) ++out->addr_->counters_.deliveries_egress;
        }
        if (d->presettled || out->takes_responsibility_) {
            d->where = Delivery::Where::nowhere;
            DeliveryState outcome = DeliveryState::accepted();
            if (d->presettled) {
                ++out->counters_.presettled;
                out->port_->deliver(*d);
            } else {
                // The consumer takes the message over now (an MQTT session queues it): that is
                // its outcome, unless it reported another one (e.g. released when full).
                d->state = {};
                out->port_->deliver(*d);
                if (d->deferred) {
                    // Not now (its queue is full): it stays first in line, still unsettled, so
                    // its producer's capacity stays used (a Kafka route pauses its partitions).
                    d->deferred = false;
                    d->where = Delivery::Where::undelivered;
                    out->undelivered_.push_front(d);
                    out->credit_ = 0;
                    --out->counters_.delivery_count;
                    --out->conn_->deliveries_out;
                    if (out->link_routed_) {
                        --counters_.deliveries_egress_route_container;
                    } else {
                        --counters_.deliveries_egress;
                        if (out->addr_) --out->addr_->counters_.deliveries_egress;
                    }
                    break;
                }
                if (d->state.terminal()) outcome = d->state;
                count_outcome(out, outcome);
            }
            Delivery* in = d->in;
            free_delivery(d);
            if (in) {
                // Sent settled or taken over: for the waiting producer that is the outcome.
                if (in->multicast)
                    copy_done_for(in, outcome);
                else {
                    in->out = nullptr;
                    in->copies = 0;
                    if (in->presettled)
                        release_in(in);
                    else
                        settle_in(in, outcome);
                }
            }
        } else {
            d->where = Delivery::Where::in_flight;
            out->in_flight_.push_back(d);
            ++out->unsettled_;
            out->port_->deliver(*d);
        }
    }
    if (out->credit_ == 0) {
        if (out->zero_credit_since_ms_ == 0) out->zero_credit_since_ms_ = now_ms_;
    } else {
        out->zero_credit_since_ms_ = 0;
    }
    if (out->drain_ && out->undelivered_.empty() && out->credit_ > 0) {
        // A routed link drains only once the producer side has drained.
        if (!out->link_routed_ || out->peer_drained_) {
            out->credit_ = 0;
            out->drain_ = false;
            out->peer_drained_ = false;
            out->port_->drained();
        }
    }
    if (out->link_routed_ && out->routed_peer_) update_credit(out->routed_peer_);
}

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
