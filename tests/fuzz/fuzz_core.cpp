// State-machine fuzzing of the routing core (docs/development.md, "Testing").
// The input is a sequence of operations, one byte for the operation and one per argument (0
// once the input is used up): connections open and close; links of every kind attach and
// detach (senders and receivers on closest, balanced, multicast, link-routed, waypoint and
// unavailable addresses; anonymous; dynamic; MQTT-style subscribers with shared filters;
// waypoints and what comes out of them); transfers settled or not; every outcome, settled or
// not, from either end; credit and drain; route containers answering or refusing; address
// rules and link routes added and removed at runtime; in-process publishes; wills held, armed,
// cancelled and published; the clock.
//
// The ports model an adapter: each keeps the deliveries the core handed it (sent unsettled,
// or taken in unsettled) until the core settles them or the link or connection ends, exactly
// as the AMQP adapter keeps pn_delivery contexts. After every step, Router::check_invariants()
// and the ports' own view must agree; under ASan a pointer the core freed while a port or the
// core still held it is reported where it is used. tests/fuzz/corpus/core/ has the README
// scenario that once crashed trestled (see make_seeds.py there for the encoding).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../unit/fake_ports.hpp"

using namespace trestle::core;
using trestle::test::FakeLink;

namespace {

[[noreturn]] void fail(const std::string& what, size_t step) {
    fprintf(stderr, "core invariant broken after step %zu: %s\n", step, what.c_str());
    abort();
}

class Input {
  public:
    Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
    bool done() const { return i_ >= n_; }
    uint8_t next() { return i_ < n_ ? d_[i_++] : 0; }
    size_t pick(size_t n) { return n ? next() % n : 0; }
    bool flag() { return next() & 1; }

  private:
    const uint8_t* d_;
    size_t n_;
    size_t i_ = 0;
};

struct World;
struct FuzzConnection;

// A link as an adapter holds it. Derived from the unit tests' FakeLink for its record of
// flows and dispositions; deliver() and update() also keep what the adapter may still use.
struct FuzzLink : FakeLink {
    World* world = nullptr;
    FuzzConnection* conn = nullptr;
    Direction dir = Direction::incoming;
    bool alive = true;  // false once detached either way (the core forgot it)
    bool takes_responsibility = false;
    bool route_peer = false;      // opened by the core on a route container
    bool answered = false;        // route peer: the container answered the attach
    bool defer = false;           // takes-responsibility port: "not now" for the next delivery
    std::vector<Delivery*> held;  // deliveries the adapter may still refer to

    void deliver(Delivery& d) override;
    void update(Delivery& d, const DeliveryState& s, bool settle) override;
    void detach(const ErrorCondition* e) override {
        FakeLink::detach(e);
        alive = false;
        held.clear();
    }
};

struct FuzzConnection : ConnectionPort {
    World* world = nullptr;
    Connection* conn = nullptr;
    bool route_container = false;
    std::vector<std::unique_ptr<FuzzLink>> links;

    LinkPort* open_link(Link& l, const AttachRequest& req, ErrorCondition& refusal) override;
    void close(const ErrorCondition&) override {}
};

struct World {
    Router router{[] {
        RouterSettings s;
        s.id = "R1";
        return s;
    }()};
    std::vector<std::unique_ptr<FuzzConnection>> conns;
    bool refuse_open_link = false;
    FuzzLink* transferring = nullptr;  // the link inside a transfer() call
    size_t step = 0;

    std::vector<FuzzLink*> live(std::optional<Direction> dir = std::nullopt) {
        std::vector<FuzzLink*> v;
        for (auto& c : conns)
            for (auto& l : c->links)
                if (l->alive && l->link && (!dir || l->dir == *dir)) v.push_back(l.get());
        return v;
    }
};

void FuzzLink::deliver(Delivery& d) {
    if (!alive) fail("the core sent on a link it had detached", world->step);
    if (d.link != link) fail("a delivery was sent on another link's port", world->step);
    if (d.message && d.message->size() > 0) (void)d.message->bytes()[0];  // the adapter reads it
    if (takes_responsibility && !d.presettled) {
        if (defer) {
            d.deferred = true;
            defer = false;
        }
        return;  // taken over (or deferred): the core settles or keeps it
    }
    if (!d.presettled) held.push_back(&d);
}

void FuzzLink::update(Delivery& d, const DeliveryState& s, bool settle) {
    FakeLink::update(d, s, settle);
    if (updates.size() > 64) updates.erase(updates.begin(), updates.begin() + 32);
    if (!alive) fail("the core updated a delivery on a link it had detached", world->step);
    if (!settle) return;
    auto it = std::find(held.begin(), held.end(), &d);
    if (it != held.end())
        held.erase(it);
    else if (world->transferring != this)
        fail("the core settled a delivery its port did not hold", world->step);
}

LinkPort* FuzzConnection::open_link(Link& l, const AttachRequest& req, ErrorCondition& refusal) {
    if (world->refuse_open_link) {
        refusal = {"amqp:not-found", "refused by the fuzzer"};
        return nullptr;
    }
    auto fl = std::make_unique<FuzzLink>();
    fl->world = world;
    fl->conn = this;
    fl->link = &l;
    fl->dir = req.direction;
    fl->route_peer = true;
    links.push_back(std::move(fl));
    return links.back().get();
}

// Addresses the operations draw from: one per kind of routing the default rules give.
const char* const kAddresses[] = {"closest/a",   "balanced/b", "multicast/c", "multicast/d",
                                  "q",           "lr/x",       "lr/y",        "wp/one",
                                  "wp/two",      "unavail/u",  "temp.none",   "amqp:/closest/a",
                                  "_topo/0/R1/q"};
const char* const kFilters[] = {"multicast/#", "+/c",    "wp/#",          "$share/g/multicast/#",
                                "$share/g/q",  "#",      "$share/h/wp/+", "bad/#/filter",
                                "q",           "$share/"};
const char* const kPrefixes[] = {"closest", "balanced", "multicast", "q", "wp", "lr", "unavail"};
const Distribution kDistributions[] = {Distribution::closest, Distribution::balanced,
                                       Distribution::multicast, Distribution::unavailable};

void add_rule(Router& r, const char* name, const char* prefix, Distribution d) {
    AddressRule rule;
    rule.name = name;
    rule.prefix = prefix;
    rule.distribution = d;
    r.add_address_rule(rule);
}

void add_link_route(Router& r, std::string name, const char* prefix, Direction d) {
    LinkRouteRule rule;
    rule.name = std::move(name);
    rule.prefix = prefix;
    rule.direction = d;
    rule.connection = "broker";
    r.add_link_route(rule);
}

enum Op : uint8_t {
    open_connection,
    close_connection,
    attach_link,
    detach_link,
    transfer,
    consumer_disposition,
    producer_settles,
    grant_credit,
    producer_flow,
    container_answers,
    change_address_rule,
    change_link_route,
    change_subscription,
    in_process_publish,
    release_message,
    defer_next,
    advance_clock,
    will,
    op_count
};

DeliveryState outcome(Input& in) {
    switch (in.pick(5)) {
        case 0:
            return DeliveryState::accepted();
        case 1:
            return DeliveryState::rejected({"amqp:internal-error", "fuzz"});
        case 2:
            return DeliveryState::released();
        case 3:
            return DeliveryState::modified(in.flag(), in.flag());
        default:
            return {};
    }
}

void attach(World& w, Input& in) {
    if (w.conns.empty()) return;
    FuzzConnection& c = *w.conns[in.pick(w.conns.size())];
    AttachRequest req;
    req.name = "l" + std::to_string(w.step);
    uint8_t kind = in.next();
    const char* address = kAddresses[in.pick(std::size(kAddresses))];
    req.direction = kind & 1 ? Direction::outgoing : Direction::incoming;
    Terminus& t = req.direction == Direction::incoming ? req.target : req.source;
    t.address = address;
    t.has_address = true;
    switch ((kind >> 1) % 7) {
        case 0:
            break;  // an ordinary sender or receiver
        case 1:     // anonymous sender / receiver without address (refused)
            t.address.clear();
            t.has_address = false;
            break;
        case 2:  // dynamic
            t.address.clear();
            t.has_address = false;
            t.dynamic = true;
            break;
        case 3:  // an MQTT session: a subscriber that takes responsibility, or a publisher
            if (req.direction == Direction::outgoing) {
                req.subscriber = true;
                req.takes_responsibility = true;
            } else {
                t.address.clear();
                t.has_address = false;
                req.unconfigured_distribution = Distribution::multicast;
            }
            req.owner = 1000 + in.pick(3);
            break;
        case 4:  // a Kafka route: the waypoint of a pattern, or what comes back out of it
            if (req.direction == Direction::outgoing) {
                req.waypoint = in.flag() ? "wp/#" : "wp/one";
                req.takes_responsibility = in.flag();
            } else {
                req.from_waypoint = true;
            }
            break;
        case 5:  // an AMQP receiver with an MQTT topic filter
            t.address = kFilters[in.pick(std::size(kFilters))];
            break;
        case 6:  // a presettled-only receiver / sender settle mode
            req.snd_settle_mode = SenderSettleMode::settled;
            break;
    }
    auto fl = std::make_unique<FuzzLink>();
    fl->world = &w;
    fl->conn = &c;
    fl->dir = req.direction;
    fl->takes_responsibility = req.takes_responsibility;
    FuzzLink* raw = fl.get();
    c.links.push_back(std::move(fl));
    AttachResult res = w.router.attach(*c.conn, req, *raw, &raw->link);
    if (res.kind == AttachResult::Kind::refused) {
        if (raw->link) fail("a refused attach returned a link", w.step);
        raw->alive = false;
    } else if (!raw->link) {
        fail("an attach that was not refused returned no link", w.step);
    }
}

void forget_connection(World& w, size_t i) {
    FuzzConnection* c = w.conns[i].get();
    // The adapter forgets everything of the connection; the core must call none of its ports.
    for (auto& l : c->links) {
        l->alive = false;
        l->held.clear();
    }
    w.router.connection_closed(c->conn);
    w.conns.erase(w.conns.begin() + static_cast<long>(i));
}

void step(World& w, Input& in) {
    Router& r = w.router;
    switch (static_cast<Op>(in.next() % op_count)) {
        case open_connection: {
            if (w.conns.size() >= 6) break;
            auto c = std::make_unique<FuzzConnection>();
            c->world = &w;
            ConnectionInfo info;
            info.link_capacity = 1 + in.pick(4);  // small: capacity limits are reached
            if (in.pick(4) == 0) {
                c->route_container = true;
                info.role = "route-container";
                info.connector = "broker";
            }
            c->conn = r.connection_opened(info, *c);
            w.conns.push_back(std::move(c));
            break;
        }
        case close_connection:
            if (!w.conns.empty()) forget_connection(w, in.pick(w.conns.size()));
            break;
        case attach_link:
            attach(w, in);
            break;
        case detach_link: {
            auto v = w.live();
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            ErrorCondition e{"amqp:link:detach-forced", "fuzz"};
            bool with_error = in.flag();
            Link* core_link = l->link;
            l->alive = false;  // the adapter forgets it before telling the core
            l->held.clear();
            r.detach(core_link, with_error ? &e : nullptr);
            break;
        }
        case transfer: {
            auto v = w.live(Direction::incoming);
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            uint8_t f = in.next();
            bool settled = f & 1;
            auto m = trestle::test::msg(f & 2 ? "" : "payload");
            m->retain = f & 4;
            m->empty_payload = f & 2;
            m->qos = settled ? 0 : 1;
            const char* to = kAddresses[in.pick(std::size(kAddresses))];
            w.transferring = l;
            Delivery* d = r.transfer(l->link, std::move(m), to, settled, nullptr);
            w.transferring = nullptr;
            if (d && !settled && l->alive) l->held.push_back(d);
            break;
        }
        case consumer_disposition: {
            auto v = w.live(Direction::outgoing);
            std::erase_if(v, [](FuzzLink* l) { return l->held.empty(); });
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            size_t i = in.pick(l->held.size());
            Delivery* d = l->held[i];
            DeliveryState s = outcome(in);
            bool settle = in.pick(4) != 0;
            if (settle) l->held.erase(l->held.begin() + static_cast<long>(i));
            r.disposition(d, s, settle);
            break;
        }
        case producer_settles: {
            auto v = w.live(Direction::incoming);
            std::erase_if(v, [](FuzzLink* l) { return l->held.empty(); });
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            size_t i = in.pick(l->held.size());
            Delivery* d = l->held[i];
            l->held.erase(l->held.begin() + static_cast<long>(i));
            r.disposition(d, DeliveryState::accepted(), true);
            break;
        }
        case grant_credit: {
            auto v = w.live(Direction::outgoing);
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            int32_t credit = static_cast<int32_t>(in.next() % 8) - 1;  // -1: a broken peer
            r.credit(l->link, credit, in.pick(4) == 0);
            break;
        }
        case producer_flow: {
            auto v = w.live(Direction::incoming);
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            r.producer_flow(l->link, static_cast<int32_t>(in.next() % 4));
            break;
        }
        case container_answers: {
            std::vector<FuzzLink*> v;
            for (FuzzLink* l : w.live())
                if (l->route_peer && !l->answered) v.push_back(l);
            if (v.empty()) {
                w.refuse_open_link = in.flag();  // the next routed attach is refused at once
                break;
            }
            FuzzLink* l = v[in.pick(v.size())];
            if (in.pick(3) == 0) {
                // No terminus: the attach was refused; the container detaches.
                ErrorCondition e{"amqp:not-found", "no such queue"};
                Link* core_link = l->link;
                l->alive = false;
                r.peer_attached(core_link, Terminus{}, Terminus{});
                r.detach(core_link, &e);
            } else {
                l->answered = true;
                Terminus src, tgt;
                src.address = tgt.address = "lr/x";
                src.has_address = tgt.has_address = true;
                r.peer_attached(l->link, src, tgt);
            }
            break;
        }
        case change_address_rule: {
            size_t i = in.pick(std::size(kPrefixes));
            std::string name = std::string("rule-") + kPrefixes[i];
            if (!r.remove_address_rule(name))
                add_rule(r, name.c_str(), kPrefixes[i], kDistributions[in.pick(4)]);
            break;
        }
        case change_link_route: {
            Direction d = in.flag() ? Direction::incoming : Direction::outgoing;
            std::string name = d == Direction::incoming ? "lr-in" : "lr-out";
            if (!r.remove_link_route(name)) add_link_route(r, name, "lr", d);
            break;
        }
        case change_subscription: {
            std::vector<FuzzLink*> v;
            for (FuzzLink* l : w.live(Direction::outgoing))
                if (l->link->subscriber()) v.push_back(l);
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            const char* f = kFilters[in.pick(std::size(kFilters))];
            if (in.flag())
                r.subscribe(l->link, f, in.flag());
            else
                r.unsubscribe(l->link, f);
            break;
        }
        case in_process_publish: {
            auto m = trestle::test::msg("will");
            m->qos = in.pick(3);
            m->retain = in.flag();
            r.publish(kAddresses[in.pick(std::size(kAddresses))], std::move(m));
            break;
        }
        case release_message: {
            auto v = w.live(Direction::outgoing);
            std::erase_if(v, [](FuzzLink* l) { return l->held.empty(); });
            if (v.empty()) break;
            FuzzLink* l = v[in.pick(v.size())];
            r.release_message(*l->held[in.pick(l->held.size())]);
            break;
        }
        case defer_next: {
            auto v = w.live(Direction::outgoing);
            if (v.empty()) break;
            v[in.pick(v.size())]->defer = true;
            break;
        }
        case advance_clock:
            r.set_now_ms(r.now_ms() + 100u * in.next());
            r.wills().check(r.now_ms());  // as the MQTT tick does
            break;
        case will: {  // the will rule MQTT and AMQP `$lwt` share, on a few client ids
            WillRecord wr;
            wr.client_id = "client-" + std::to_string(in.pick(3));
            wr.topic = kAddresses[in.pick(std::size(kAddresses))];
            wr.message = trestle::test::msg("will");
            wr.message->qos = in.pick(3);
            switch (in.pick(5)) {
                case 0:
                    r.wills().hold(wr);
                    break;
                case 1:
                    wr.due_ms = 100u * in.pick(4);  // 0: published at once
                    r.wills().arm(std::move(wr));
                    break;
                case 2:
                    r.wills().cancel(wr.client_id);
                    break;
                case 3:
                    r.wills().reconnected(wr.client_id, in.flag());
                    break;
                default:
                    r.wills().fire_now(wr.client_id);
                    break;
            }
            break;
        }
        case op_count:
            break;
    }
}

// The adapter's view and the core's agree: what a port holds is live on its link, unsettled.
void check_ports(World& w) {
    for (FuzzLink* l : w.live()) {
        if (l->link->credit() < 0)
            fail("negative credit on link " + std::to_string(l->link->id()), w.step);
        for (Delivery* d : l->held) {
            if (d->link != l->link || d->where != Delivery::Where::in_flight)
                fail("a port holds a delivery its link no longer has", w.step);
            if (l->dir == Direction::incoming && d->settled_upstream)
                fail("a port holds a delivery it settled", w.step);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 4096) return 0;  // long inputs add time, not states
    World w;
    add_rule(w.router, "closest", "closest", Distribution::closest);
    add_rule(w.router, "multicast", "multicast", Distribution::multicast);
    add_rule(w.router, "balanced", "balanced", Distribution::balanced);
    add_rule(w.router, "unavail", "unavail", Distribution::unavailable);
    add_link_route(w.router, "lr-in", "lr", Direction::incoming);
    add_link_route(w.router, "lr-out", "lr", Direction::outgoing);
    Input in(data, size);
    while (!in.done()) {
        ++w.step;
        step(w, in);
        std::string broken = w.router.check_invariants();
        if (!broken.empty()) fail(broken, w.step);
        check_ports(w);
    }
    // Everyone leaves: nothing may be left behind.
    while (!w.conns.empty()) {
        ++w.step;
        forget_connection(w, w.conns.size() - 1);
        std::string broken = w.router.check_invariants();
        if (!broken.empty()) fail(broken, w.step);
    }
    if (!w.router.addresses().empty())
        fail("addresses remain after every connection closed: " +
                 w.router.addresses().begin()->first,
             w.step);
    if (w.router.links().size() != 1)  // the in-process publisher stays
        fail("links remain after every connection closed", w.step);
    if (w.router.live_deliveries() != 0)
        fail("deliveries remain after every connection closed", w.step);
    return 0;
}
