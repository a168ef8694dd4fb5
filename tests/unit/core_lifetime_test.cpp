// Lifetimes in the core: what goes away while something still refers to it. Each scenario ends
// with Router::check_invariants() and an empty address table; under ASan (CI's second build) a
// use after free fails the test where it happens.
#include <gtest/gtest.h>

#include "fake_ports.hpp"

using namespace trestle::core;
using namespace trestle::test;

namespace {

Router multicast_router() {
    RouterSettings s;
    s.id = "R1";
    return Router(s);
}

void add_multicast(Router& r) {
    AddressRule rule;
    rule.name = "mc";
    rule.prefix = "multicast";
    rule.distribution = Distribution::multicast;
    ASSERT_EQ(r.add_address_rule(rule), "");
}

// The README's first example: receiver, then sender, on one connection; the message is sent
// unsettled and the receiver never settles it before the connection goes. Closing the
// connection detaches the sender (its delivery is orphaned, waiting for its copy), then the
// receiver: its unsettled copy completes the orphan, whose free dropped the address's last
// reference while the receiver's own detach still used the address.
TEST(Lifetime, ReadmeScenarioOnOneConnection) {
    Router r = multicast_router();
    add_multicast(r);
    FakeConnection c(r);
    FakeLink* rcv = c.receiver("multicast/hello");
    FakeLink* snd = c.sender("multicast/hello");
    r.credit(rcv->link, 10, false);
    ASSERT_EQ(snd->credit, 250u);
    ASSERT_NE(r.transfer(snd->link, msg("hello, Trestle"), "", false, nullptr), nullptr);
    ASSERT_EQ(rcv->delivered.size(), 1u);
    EXPECT_EQ(r.check_invariants(), "");
    c.gone();
    EXPECT_EQ(r.check_invariants(), "");
    EXPECT_TRUE(r.addresses().empty());
    EXPECT_EQ(r.live_deliveries(), 0u);
}

TEST(Lifetime, ReadmeScenarioOnTwoConnectionsEitherClosingFirst) {
    for (bool sender_first : {true, false}) {
        Router r = multicast_router();
        add_multicast(r);
        FakeConnection rc(r), sc(r);
        FakeLink* rcv = rc.receiver("multicast/hello");
        FakeLink* snd = sc.sender("multicast/hello");
        r.credit(rcv->link, 10, false);
        r.transfer(snd->link, msg("hello"), "", false, nullptr);
        ASSERT_EQ(rcv->delivered.size(), 1u);
        if (sender_first) {
            sc.gone();
            EXPECT_EQ(r.check_invariants(), "");
            rc.gone();
        } else {
            rc.gone();
            EXPECT_EQ(snd->settled_outcomes(), std::vector<Outcome>{Outcome::modified})
                << "the receiver took the copy and vanished: MODIFIED, delivery-failed";
            EXPECT_EQ(r.check_invariants(), "");
            sc.gone();
        }
        EXPECT_EQ(r.check_invariants(), "") << "sender first: " << sender_first;
        EXPECT_TRUE(r.addresses().empty());
        EXPECT_EQ(r.live_deliveries(), 0u);
    }
}

// The balanced scenario from the same report: receiver A never settles, receiver B accepts,
// 50 messages one at a time, then both connections close normally.
TEST(Lifetime, BalancedWithOneReceiverNeverSettling) {
    for (bool same_connection : {true, false}) {
        Router r = multicast_router();
        FakeConnection ca(r), cb(r);
        FakeConnection& cs = same_connection ? cb : ca;
        FakeLink* a = ca.receiver("q");
        FakeLink* b = cb.receiver("q");
        FakeLink* s = cs.sender("q");
        r.credit(a->link, 100, false);
        r.credit(b->link, 100, false);
        for (int i = 0; i < 50; ++i) {
            r.transfer(s->link, msg("m" + std::to_string(i)), "", false, nullptr);
            for (size_t k = 0; k < b->delivered.size(); ++k)
                if (b->delivered[k]) {
                    r.disposition(b->delivered[k], DeliveryState::accepted(), true);
                    b->delivered[k] = nullptr;
                }
            ASSERT_EQ(r.check_invariants(), "") << "after message " << i;
        }
        EXPECT_GT(a->delivered.size(), 0u);
        EXPECT_GT(b->delivered.size(), 0u);
        ca.gone();
        EXPECT_EQ(r.check_invariants(), "");
        cb.gone();
        EXPECT_EQ(r.check_invariants(), "");
        EXPECT_TRUE(r.addresses().empty());
        EXPECT_EQ(r.live_deliveries(), 0u);
    }
}

// A waypoint's consumer (Kafka) holds copies; the producer and the waypoint go in either order.
TEST(Lifetime, WaypointAndProducerGoInEitherOrder) {
    for (bool producer_first : {true, false}) {
        Router r = multicast_router();
        FakeConnection kafka(r), client(r);
        AttachRequest req;
        req.direction = Direction::outgoing;
        req.name = "route";
        req.waypoint = "telemetry/#";
        auto* w = kafka.links.emplace_back(std::make_unique<FakeLink>()).get();
        ASSERT_EQ(r.attach(*kafka.conn, req, *w, &w->link).kind, AttachResult::Kind::open);
        r.credit(w->link, 10, false);
        FakeLink* s = client.sender("telemetry/a");
        r.transfer(s->link, msg("x"), "", false, nullptr);
        ASSERT_EQ(w->delivered.size(), 1u);
        if (producer_first) {
            client.gone();
            EXPECT_EQ(r.check_invariants(), "");
            kafka.gone();
        } else {
            kafka.gone();
            EXPECT_EQ(r.check_invariants(), "");
            client.gone();
        }
        EXPECT_EQ(r.check_invariants(), "");
        EXPECT_TRUE(r.addresses().empty());
        EXPECT_EQ(r.live_deliveries(), 0u);
    }
}

}  // namespace
