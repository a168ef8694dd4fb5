// Waypoints (how Kafka sits behind the core): a bound address's producers reach only the
// waypoint, with its outcome as theirs; what comes out of the waypoint reaches the consumers.
#include <gtest/gtest.h>

#include "fake_ports.hpp"

using namespace trestle::core;
using namespace trestle::test;

namespace {

FakeLink* waypoint(FakeConnection& c, std::string pattern, int32_t credit,
                   AttachResult* result = nullptr) {
    AttachRequest req;
    req.direction = Direction::outgoing;
    req.name = "waypoint-" + pattern;
    req.waypoint = std::move(pattern);
    c.links.push_back(std::make_unique<FakeLink>());
    FakeLink* fl = c.links.back().get();
    AttachResult r = c.router.attach(*c.conn, req, *fl, &fl->link);
    if (result) *result = r;
    if (fl->link) c.router.credit(fl->link, credit, false);
    return fl;
}

FakeLink* from_waypoint(FakeConnection& c) {
    AttachRequest req;
    req.direction = Direction::incoming;
    req.name = "from-waypoint";
    req.from_waypoint = true;
    req.unconfigured_distribution = Distribution::multicast;
    c.links.push_back(std::make_unique<FakeLink>());
    FakeLink* fl = c.links.back().get();
    c.router.attach(*c.conn, req, *fl, &fl->link);
    return fl;
}

// An MQTT-style publisher: anonymous, multicast for unconfigured addresses.
FakeLink* publisher(FakeConnection& c, std::string name) {
    AttachRequest req;
    req.direction = Direction::incoming;
    req.name = std::move(name);
    req.unconfigured_distribution = Distribution::multicast;
    c.links.push_back(std::make_unique<FakeLink>());
    FakeLink* fl = c.links.back().get();
    c.router.attach(*c.conn, req, *fl, &fl->link);
    return fl;
}

TEST(Waypoint, ProducersOfABoundAddressGetCreditAndReachOnlyTheWaypoint) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* w = waypoint(kafka, "telemetry/#", 100);
    ASSERT_NE(w->link, nullptr);
    FakeLink* consumer = clients.receiver("telemetry/dev1");
    r.credit(consumer->link, 10, false);
    FakeLink* s = clients.sender("telemetry/dev1");
    EXPECT_GT(s->credit, 0u) << "the waypoint is a destination";
    r.transfer(s->link, msg("m1"), "", false, nullptr);
    ASSERT_EQ(w->delivered_bodies, std::vector<std::string>{"m1"});
    EXPECT_TRUE(consumer->delivered.empty()) << "consumers are fed from the waypoint only";
    EXPECT_TRUE(s->updates.empty()) << "not settled before the waypoint settles";
    r.disposition(w->delivered[0], DeliveryState::accepted(), true);
    ASSERT_EQ(s->updates.size(), 1u);
    EXPECT_EQ(s->updates[0].state.outcome, Outcome::accepted);
    EXPECT_TRUE(s->updates[0].settle);
}

TEST(Waypoint, ItsRejectionIsTheProducersOutcome) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* w = waypoint(kafka, "orders", 100);
    FakeLink* s = clients.sender("orders");
    r.transfer(s->link, msg("m1"), "", false, nullptr);
    ASSERT_EQ(w->delivered.size(), 1u);
    r.disposition(
        w->delivered[0],
        DeliveryState::rejected({"trestle:kafka-error", "Broker: Topic authorization failed"}),
        true);
    ASSERT_EQ(s->updates.size(), 1u);
    EXPECT_EQ(s->updates[0].state.outcome, Outcome::rejected);
    ASSERT_TRUE(s->updates[0].state.error);
    EXPECT_EQ(s->updates[0].state.error->name, "trestle:kafka-error");
}

// A Kafka route copies the message into a record at once: it lets the message go then, not
// with the outcome thousands of messages later. The outcome still reaches the producer as it
// is, released included (nothing is re-routed once a copy was handed over).
TEST(Waypoint, APortDoneWithTheMessageLetsItGoAndTheOutcomeStillReachesTheProducer) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* w = waypoint(kafka, "orders", 100);
    FakeLink* s = clients.sender("orders");
    MessageRef m1 = msg("m1");
    r.transfer(s->link, m1, "", false, nullptr);
    ASSERT_EQ(w->delivered.size(), 1u);
    EXPECT_EQ(m1->refs(), 3u) << "ours, the producer's delivery and the waypoint's copy";
    r.release_message(*w->delivered[0]);
    EXPECT_EQ(m1->refs(), 1u) << "only ours is left";
    r.disposition(w->delivered[0], DeliveryState::accepted(), true);
    ASSERT_EQ(s->updates.size(), 1u);
    EXPECT_EQ(s->updates[0].state.outcome, Outcome::accepted);

    r.transfer(s->link, msg("m2"), "", false, nullptr);
    ASSERT_EQ(w->delivered.size(), 2u);
    r.release_message(*w->delivered[1]);
    r.disposition(w->delivered[1], DeliveryState::released(), true);
    ASSERT_EQ(s->updates.size(), 2u);
    EXPECT_EQ(s->updates[1].state.outcome, Outcome::released) << "back to the producer as is";
}

TEST(Waypoint, AnonymousAndMqttStylePublishersAreBoundByTheirTopic) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* w = waypoint(kafka, "devices/*/telemetry", 100);
    FakeLink* anon = publisher(clients, "anon");
    r.transfer(anon->link, msg("t"), "devices/d7/telemetry", true, nullptr);
    r.transfer(anon->link, msg("other"), "devices/d7/status", false, nullptr);
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"t"});
    ASSERT_EQ(anon->updates.size(), 1u);
    EXPECT_EQ(anon->updates[0].state.outcome, Outcome::released) << "unbound, nobody consumes";
}

// A publisher's topic is resolved once and remembered (MQTT publishers repeat topics); the
// memory must not outlive a waypoint or an address rule that changes the answer.
TEST(Waypoint, APublishersRepeatedTopicFollowsWaypointsAndAddressRulesAsTheyChange) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* pub = publisher(clients, "pub");
    auto session = [&](const char* filter) {
        AttachRequest s;
        s.direction = Direction::outgoing;
        s.name = std::string("session-") + filter;
        s.subscriber = true;
        clients.links.push_back(std::make_unique<FakeLink>());
        FakeLink* fl = clients.links.back().get();
        r.attach(*clients.conn, s, *fl, &fl->link);
        r.credit(fl->link, 100, false);
        EXPECT_EQ(r.subscribe(fl->link, filter), "");
        return fl;
    };
    FakeLink* s1 = session("d/+/t");
    FakeLink* s2 = session("d/#");
    const std::string topic = "d/7/t";

    r.transfer(pub->link, msg("1"), topic, true, nullptr);
    EXPECT_EQ(s1->delivered_bodies.size() + s2->delivered_bodies.size(), 2u) << "multicast";

    FakeLink* w = waypoint(kafka, "d/#", 100);
    r.transfer(pub->link, msg("2"), topic, true, nullptr);
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"2"}) << "bound after the first";
    EXPECT_EQ(s1->delivered_bodies.size() + s2->delivered_bodies.size(), 2u);

    r.detach(w->link, nullptr);
    r.transfer(pub->link, msg("3"), topic, true, nullptr);
    EXPECT_EQ(w->delivered_bodies.size(), 1u) << "unbound: not the waypoint any more";
    EXPECT_EQ(s1->delivered_bodies.size() + s2->delivered_bodies.size(), 4u);

    ASSERT_EQ(r.add_address_rule({"d", "d/", "", Distribution::balanced, -1}), "");
    r.transfer(pub->link, msg("4"), topic, true, nullptr);
    EXPECT_EQ(s1->delivered_bodies.size() + s2->delivered_bodies.size(), 5u)
        << "an address rule added after the topic was seen decides its distribution";

    ASSERT_TRUE(r.remove_address_rule("d"));
    r.transfer(pub->link, msg("5"), topic, true, nullptr);
    EXPECT_EQ(s1->delivered_bodies.size() + s2->delivered_bodies.size(), 7u)
        << "and its removal restores the publisher's default (multicast)";
}

TEST(Waypoint, WhatComesOutReachesConsumersAndSubscriptionsNotTheWaypointAgain) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* w = waypoint(kafka, "telemetry/#", 100);
    FakeLink* consumer = clients.receiver("telemetry/dev1");
    r.credit(consumer->link, 10, false);
    FakeLink* out = from_waypoint(kafka);
    EXPECT_GT(out->credit, 0u);
    r.transfer(out->link, msg("from kafka"), "telemetry/dev1", false, nullptr);
    EXPECT_TRUE(w->delivered.empty());
    ASSERT_EQ(consumer->delivered_bodies, std::vector<std::string>{"from kafka"});
    r.disposition(consumer->delivered[0], DeliveryState::accepted(), true);
    ASSERT_EQ(out->updates.size(), 1u);
    EXPECT_EQ(out->updates[0].state.outcome, Outcome::accepted);
}

TEST(Waypoint, RetainedMessagesAreStoredGoingInNotComingOut) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    waypoint(kafka, "status/#", 100);
    FakeLink* s = clients.sender("status/door");
    MessageRef m = msg("open");
    m->retain = true;
    r.transfer(s->link, m, "", true, nullptr);
    size_t n = 0;
    r.retained().match("status/#", [&](std::string_view, const MessageRef&) { ++n; });
    EXPECT_EQ(n, 1u);
    FakeLink* out = from_waypoint(kafka);
    MessageRef again = msg("closed");
    again->retain = true;
    r.transfer(out->link, again, "status/door", true, nullptr);
    std::string body;
    r.retained().match("status/#", [&](std::string_view, const MessageRef& rm) {
        body = std::string(rm->bytes());
    });
    EXPECT_EQ(body, "open") << "the copy coming back out of Kafka is not a new retained message";
}

TEST(Waypoint, CreditIsBoundedByTheWaypointsBudget) {
    Router r(settings());
    FakeConnection kafka(r);
    ConnectionInfo small;
    small.link_capacity = 8;
    FakeConnection clients(r, small);
    FakeLink* w = waypoint(kafka, "t", 3);
    FakeLink* s = clients.sender("t");
    EXPECT_EQ(s->credit, 8u);
    for (int i = 0; i < 8; ++i)
        r.transfer(s->link, msg("m" + std::to_string(i)), "", false, nullptr);
    EXPECT_EQ(w->delivered.size(), 3u) << "the waypoint takes what its credit allows";
    EXPECT_EQ(w->link->undelivered_count(), 5u);
    EXPECT_EQ(s->link->credit(), 0) << "and the producer has used all it was given";
    // Settling frees credit at the waypoint and, in batches, at the producer.
    for (int i = 0; i < 3; ++i)
        r.disposition(w->delivered[size_t(i)], DeliveryState::accepted(), true);
    r.credit(w->link, 3, false);
    EXPECT_EQ(w->delivered.size(), 6u);
    EXPECT_GT(s->credit, 0u);
}

TEST(Waypoint, UnbindingRoutesToConsumersAgainAndAddressesWithoutDestinationsDrain) {
    Router r(settings());
    FakeConnection kafka(r), clients(r);
    FakeLink* w = waypoint(kafka, "q", 0);  // no credit: deliveries wait at the waypoint
    FakeLink* s = clients.sender("q");
    r.transfer(s->link, msg("waiting"), "", false, nullptr);
    EXPECT_TRUE(w->delivered.empty());
    FakeLink* consumer = clients.receiver("q");
    r.credit(consumer->link, 10, false);
    r.detach(w->link, nullptr);
    ASSERT_EQ(consumer->delivered_bodies, std::vector<std::string>{"waiting"})
        << "the waypoint's undelivered message is routed to the consumer";
    r.detach(consumer->link, nullptr);
    EXPECT_TRUE(s->drain) << "no destination left: the producer is drained";
}

TEST(Waypoint, OnePatternOneWaypoint) {
    Router r(settings());
    FakeConnection kafka(r);
    waypoint(kafka, "a/#", 1);
    AttachResult res;
    FakeLink* dup = waypoint(kafka, "a.#", 1, &res);
    EXPECT_EQ(res.kind, AttachResult::Kind::refused);
    EXPECT_EQ(dup->link, nullptr);
}

}  // namespace
