// The routing core: construction, address rules, addresses and connections. The rules are
// qdrouterd's (docs/routing.md); each has its own file
// beside this one (docs/architecture.md, "The core"): attach.cpp, link_routes.cpp,
// forwarder.cpp, settlement.cpp, credit.cpp, subscriptions.cpp. Deviations from qdrouterd are
// commented where they are made.
#include "trestle/core/router.hpp"

#include <algorithm>
#include <cassert>

namespace trestle::core {

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

}  // namespace trestle::core
