// Router::check_invariants(): who owns what in the core, checked by walking every structure.
// Too slow for the message path; the core's state-machine fuzzer calls it after every step and
// unit tests call it after their scenarios.
#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "trestle/core/router.hpp"

namespace trestle::core {

namespace {

struct Problems {
    std::ostringstream out;
    bool any = false;
    template <class... A>
    void add(const A&... parts) {
        if (any) out << "; ";
        any = true;
        (out << ... << parts);
    }
};

const char* dir_name(Direction d) {
    return d == Direction::incoming ? "in" : "out";
}

}  // namespace

std::string Router::check_invariants() const {
    Problems p;
    // --- connections and links own each other ------------------------------------------------
    for (const auto& [id, c] : connections_) {
        if (c->id_ != id) p.add("connection ", id, " keyed under another id");
        for (const Link* l : c->links_) {
            auto it = links_.find(l->id_);
            if (it == links_.end() || it->second.get() != l)
                p.add("connection ", id, " lists link ", l->id_, " that the router does not");
            else if (l->conn_ != c.get())
                p.add("link ", l->id_, " listed by connection ", id, " belongs to another");
        }
    }
    std::unordered_map<const Delivery*, const Link*> on_link;  // every delivery in a link list
    std::unordered_map<const Address*, uint32_t> address_refs;
    for (const auto& entry : links_) {
        const uint64_t id = entry.first;  // a plain variable: lambdas below capture it
        const Link* l = entry.second.get();
        const Connection* c = l->conn_;
        bool known_conn = c == internal_conn_.get();
        if (!known_conn) {
            auto it = c ? connections_.find(c->id_) : connections_.end();
            known_conn = it != connections_.end() && it->second.get() == c;
        }
        if (!known_conn) {
            p.add("link ", id, " belongs to a connection the router does not have");
            continue;
        }
        if (std::count(c->links_.begin(), c->links_.end(), l) != 1)
            p.add("link ", id, " is not listed once by its connection");
        if (l->detached_) p.add("link ", id, " is detached but still in the link table");
        if (l->credit_ < 0) p.add("link ", id, " has negative credit ", l->credit_);
        if (l->dir_ == Direction::incoming && !l->undelivered_.empty())
            p.add("incoming link ", id, " has undelivered deliveries");

        auto walk = [&](const DeliveryList& list, Delivery::Where where, const char* what) {
            size_t n = 0;
            const Delivery* prev = nullptr;
            for (const Delivery* d = list.front(); d; d = d->next) {
                if (++n > list.size()) {
                    p.add("link ", id, " ", what, " list is longer than its size (a cycle?)");
                    return;
                }
                if (d->prev != prev) p.add("link ", id, " ", what, " list has a broken back link");
                prev = d;
                if (d->link != l)
                    p.add("a delivery in link ", id, "'s ", what, " list names another link");
                if (d->where != where)
                    p.add("a delivery in link ", id, "'s ", what, " list is marked elsewhere");
                if (!on_link.emplace(d, l).second)
                    p.add("a delivery is in two link lists (link ", id, ")");
                if (d->address) ++address_refs[d->address];
            }
            if (n != list.size())
                p.add("link ", id, " ", what, " list holds ", n, " but counts ", list.size());
        };
        walk(l->undelivered_, Delivery::Where::undelivered, "undelivered");
        walk(l->in_flight_, Delivery::Where::in_flight, "in-flight");
        size_t unsettled = 0;
        for (const Delivery* d = l->in_flight_.front(); d; d = d->next) {
            if (l->dir_ == Direction::outgoing && d->presettled)
                p.add("outgoing link ", id, " holds a presettled delivery as sent");
            unsettled += !d->presettled;
        }
        if (unsettled != l->unsettled_)
            p.add("link ", id, " counts ", l->unsettled_, " unsettled, holds ", unsettled);

        if (const Address* a = l->addr_) {
            auto it = addresses_.find(std::string_view(a->name_));
            if (it == addresses_.end() || it->second.get() != a) {
                p.add("link ", id, " refers to an address the router no longer has");
            } else {
                ++address_refs[a];
                const auto& members =
                    l->dir_ == Direction::outgoing ? a->consumers_ : a->producers_;
                if (std::count(members.begin(), members.end(), l) != 1)
                    p.add("link ", id, " (", dir_name(l->dir_),
                          ") is not listed once by its address '", a->name_, "'");
                if (l->dir_ == Direction::incoming && l->port_ && !l->peer_pending_ &&
                    l->blocked_ != !a->has_destinations())
                    p.add("producer ", id, " is ", l->blocked_ ? "blocked" : "not blocked",
                          " but its address ", a->has_destinations() ? "has" : "has no",
                          " destination");
            }
        }
        if (const Link* peer = l->routed_peer_) {
            auto it = links_.find(peer->id_);
            if (it == links_.end() || it->second.get() != peer || peer->routed_peer_ != l)
                p.add("link ", id, "'s routed peer does not point back");
        }
        if (!l->waypoint_.empty()) {
            Link* const* w = waypoints_.match(l->waypoint_);
            if (!w || *w != l) p.add("waypoint link ", id, " is not bound to its pattern");
        }
        for (const std::string& f : l->subscriptions_) {
            SharedFilter sf;
            parse_shared(f, sf);
            if (sf.group.empty()) continue;
            auto git = groups_.find({sf.group, sf.filter});
            if (git == groups_.end() ||
                std::count(git->second->members.begin(), git->second->members.end(), l) != 1)
                p.add("link ", id, " subscribed to '", f, "' but is not a member of its group");
        }
    }

    // --- deliveries: copies and the producer's delivery point at each other -------------------
    std::unordered_map<const Delivery*, uint32_t> copies_of;
    std::unordered_set<const Delivery*> orphans;  // producer's link gone, copies pending
    for (const auto& [d, l] : on_link) {
        if (l->dir_ == Direction::incoming) {
            if (d->in) p.add("a producer's delivery on link ", l->id_, " has an `in`");
            continue;
        }
        const Delivery* in = d->in;
        if (!in) continue;
        ++copies_of[in];
        auto it = on_link.find(in);
        if (it != on_link.end()) {
            if (it->second->dir_ != Direction::incoming || in->where != Delivery::Where::in_flight)
                p.add("a copy on link ", l->id_, " points at a delivery that is not a producer's");
        } else if (in->link == nullptr && in->where == Delivery::Where::nowhere) {
            if (orphans.insert(in).second && in->address) ++address_refs[in->address];
        } else {
            p.add("a copy on link ", l->id_, " points at a delivery no link holds");
        }
        if (!in->multicast && in->out != d)
            p.add("an anycast copy on link ", l->id_, " is not its producer delivery's `out`");
    }
    auto check_in = [&](const Delivery* in, const char* where) {
        uint32_t n = 0;
        if (auto it = copies_of.find(in); it != copies_of.end()) n = it->second;
        if (!in->multicast) {
            if (in->out && !on_link.count(in->out))
                p.add("a ", where, " delivery's copy is in no link list");
            if (in->out && in->out->in != in)
                p.add("a ", where, " delivery's copy points elsewhere");
            if (n > 1) p.add("an anycast ", where, " delivery has ", n, " copies");
        }
        if (in->copies != n)
            p.add("a ", where, " delivery counts ", in->copies, " pending copies, has ", n);
    };
    for (const auto& [d, l] : on_link)
        if (l->dir_ == Direction::incoming) check_in(d, "producer's");
    for (const Delivery* in : orphans) {
        check_in(in, "orphaned");
        if (in->copies == 0) p.add("an orphaned delivery has no copies left (leaked)");
    }
    size_t reachable = on_link.size() + orphans.size();
    if (reachable != live_deliveries_)
        p.add(live_deliveries_, " deliveries are live but ", reachable, " are reachable");

    // --- addresses: alive exactly while referred to -------------------------------------------
    for (const auto& [name, ap] : addresses_) {
        const Address* a = ap.get();
        if (name != a->name_) p.add("address '", a->name_, "' keyed as '", name, "'");
        uint32_t refs = 0;
        if (auto it = address_refs.find(a); it != address_refs.end()) refs = it->second;
        if (a->refs_ != refs)
            p.add("address '", name, "' counts ", a->refs_, " references, has ", refs);
        if (refs == 0) p.add("address '", name, "' exists with nothing referring to it");
        for (const Link* l : a->consumers_)
            if (l->addr_ != a || l->dir_ != Direction::outgoing)
                p.add("address '", name, "' lists a consumer that is not its own");
        for (const Link* l : a->producers_)
            if (l->addr_ != a || l->dir_ != Direction::incoming)
                p.add("address '", name, "' lists a producer that is not its own");
        if (a->waypoint_ != waypoint_for(name)) p.add("address '", name, "' has a stale waypoint");
        uint32_t matches = 0;
        filters_.match(name, [&](const FilterEntry&) { ++matches; });
        if (a->filter_matches_ != matches)
            p.add("address '", name, "' counts ", a->filter_matches_, " matching filters, has ",
                  matches);
    }
    for (const auto& [a, n] : address_refs) {
        auto it = addresses_.find(std::string_view(a->name_));
        if (it == addresses_.end() || it->second.get() != a)
            p.add("a delivery or link refers to an address the router no longer has");
    }
    for (const auto& [key, g] : groups_) {
        if (g->members.empty()) p.add("shared group '", key.first, "' has no members");
        for (const Link* l : g->members) {
            auto it = links_.find(l->id_);
            if (it == links_.end() || it->second.get() != l)
                p.add("shared group '", key.first, "' lists a link that is gone");
        }
    }
    return p.out.str();
}

}  // namespace trestle::core
