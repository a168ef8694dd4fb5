// Subscriptions (MQTT topic filters), shared groups, retained messages, links that take over
// their deliveries, and in-process publishing, through fake ports.
#include <gtest/gtest.h>

#include "fake_ports.hpp"

using namespace trestle::core;
using namespace trestle::test;

namespace {

// An MQTT-style session link: subscriber, takes responsibility, lots of credit.
FakeLink* session(FakeConnection& c, uint64_t owner = 0) {
    AttachRequest req;
    req.direction = Direction::outgoing;
    req.name = "session-" + std::to_string(c.links.size());
    req.subscriber = true;
    req.takes_responsibility = true;
    req.owner = owner;
    c.links.push_back(std::make_unique<FakeLink>());
    FakeLink* fl = c.links.back().get();
    c.router.attach(*c.conn, req, *fl, &fl->link);
    c.router.credit(fl->link, 1000000, false);
    return fl;
}

// `port` as an MQTT-style session link subscribed to `filter`, with some credit.
void attach_session(FakeConnection& c, FakeLink& port, const std::string& filter) {
    AttachRequest req;
    req.direction = Direction::outgoing;
    req.subscriber = true;
    req.takes_responsibility = true;
    c.router.attach(*c.conn, req, port, &port.link);
    c.router.credit(port.link, 100, false);
    c.router.subscribe(port.link, filter);
}

// An MQTT-style publisher: anonymous, multicast for unconfigured addresses.
FakeLink* mqtt_publisher(FakeConnection& c, uint64_t owner = 0) {
    AttachRequest req;
    req.direction = Direction::incoming;
    req.name = "pub-" + std::to_string(c.links.size());
    req.unconfigured_distribution = Distribution::multicast;
    req.owner = owner;
    c.links.push_back(std::make_unique<FakeLink>());
    FakeLink* fl = c.links.back().get();
    c.router.attach(*c.conn, req, *fl, &fl->link);
    return fl;
}

TEST(TopicFilter, Syntax) {
    EXPECT_TRUE(valid_topic_filter("a/+/c"));
    EXPECT_TRUE(valid_topic_filter("#"));
    EXPECT_TRUE(valid_topic_filter("a/#"));
    EXPECT_TRUE(valid_topic_filter("+"));
    EXPECT_FALSE(valid_topic_filter("a/#/c"));
    EXPECT_FALSE(valid_topic_filter("a+"));
    EXPECT_FALSE(valid_topic_filter("a/b#"));
    EXPECT_FALSE(valid_topic_filter(""));
    EXPECT_TRUE(valid_topic_name("a/b"));
    EXPECT_FALSE(valid_topic_name("a/+"));
    EXPECT_FALSE(valid_topic_name(""));
    SharedFilter sf;
    ASSERT_TRUE(parse_shared("$share/g1/a/+", sf));
    EXPECT_EQ(sf.group, "g1");
    EXPECT_EQ(sf.filter, "a/+");
    EXPECT_FALSE(parse_shared("$share/g1", sf));
    EXPECT_FALSE(parse_shared("$share//a", sf));
    EXPECT_FALSE(parse_shared("$share/g+/a", sf));
    EXPECT_EQ(filter_of("$share/g1/a/+"), "a/+");
    EXPECT_EQ(filter_of("a/+"), "a/+");
    EXPECT_EQ(filter_of("$shared/a"), "$shared/a");
}

TEST(TopicFilter, Matching) {
    EXPECT_TRUE(topic_matches("a/+/c", "a/b/c"));
    EXPECT_FALSE(topic_matches("a/+/c", "a/b/d"));
    EXPECT_TRUE(topic_matches("a/#", "a"));
    EXPECT_TRUE(topic_matches("a/#", "a/b/c"));
    EXPECT_TRUE(topic_matches("#", "a/b"));
    EXPECT_TRUE(topic_matches("+/+", "/x"));
    EXPECT_FALSE(topic_matches("+", "a/b"));
    EXPECT_FALSE(topic_matches("#", "$SYS/x")) << "$-topics hide from root wildcards";
    EXPECT_FALSE(topic_matches("+/x", "$SYS/x"));
    EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/x"));
    TopicFilterIndex<int> idx;
    idx.add("a/+/c", 1);
    idx.add("a/#", 2);
    idx.add("#", 3);
    idx.add("a/b/c", 4);
    std::vector<int> got;
    idx.match("a/b/c", [&](int v) { got.push_back(v); });
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4}));
    got.clear();
    idx.match("$SYS/a", [&](int v) { got.push_back(v); });
    EXPECT_TRUE(got.empty());
}

TEST(Subscriptions, MqttTopicsDefaultToMulticast) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* s1 = session(c);
    FakeLink* s2 = session(c);
    ASSERT_EQ(r.subscribe(s1->link, "sensors/+/temp"), "");
    ASSERT_EQ(r.subscribe(s2->link, "sensors/#"), "");
    FakeLink* pub = mqtt_publisher(c);
    r.transfer(pub->link, msg("21"), "sensors/k/temp", false, nullptr);
    EXPECT_EQ(s1->delivered_bodies, std::vector<std::string>{"21"});
    EXPECT_EQ(s2->delivered_bodies, std::vector<std::string>{"21"});
    EXPECT_EQ(pub->settled_outcomes(), std::vector<Outcome>{Outcome::accepted})
        << "accepted as soon as the sessions took it over";
    r.transfer(pub->link, msg("x"), "other/topic", false, nullptr);
    EXPECT_EQ(pub->settled_outcomes().back(), Outcome::released) << "no matching subscriber";
}

TEST(Subscriptions, OverlappingFiltersDeliverOnce) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* s = session(c);
    r.subscribe(s->link, "a/#");
    r.subscribe(s->link, "a/+");
    r.subscribe(s->link, "a/b");
    FakeLink* pub = mqtt_publisher(c);
    r.transfer(pub->link, msg("m"), "a/b", true, nullptr);
    EXPECT_EQ(s->delivered.size(), 1u);
    r.unsubscribe(s->link, "a/#");
    r.unsubscribe(s->link, "a/+");
    r.unsubscribe(s->link, "a/b");
    r.transfer(pub->link, msg("m"), "a/b", true, nullptr);
    EXPECT_EQ(s->delivered.size(), 1u) << "unsubscribed: nothing more";
}

TEST(Subscriptions, SharedGroupGivesEachMessageToOneMember) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* m1 = session(c);
    FakeLink* m2 = session(c);
    FakeLink* plain = session(c);
    ASSERT_EQ(r.subscribe(m1->link, "$share/workers/jobs/#"), "");
    ASSERT_EQ(r.subscribe(m2->link, "$share/workers/jobs/#"), "");
    r.subscribe(plain->link, "jobs/#");
    FakeLink* pub = mqtt_publisher(c);
    for (int i = 0; i < 10; ++i) r.transfer(pub->link, msg("j"), "jobs/a", true, nullptr);
    EXPECT_EQ(m1->delivered.size() + m2->delivered.size(), 10u);
    EXPECT_EQ(m1->delivered.size(), 5u) << "round-robin in the group";
    EXPECT_EQ(plain->delivered.size(), 10u) << "a non-shared subscription still gets every one";
    EXPECT_NE(r.subscribe(m1->link, "$share/g/x", true), "") << "no-local on shared is an error";
}

TEST(Subscriptions, NoLocalSkipsTheOwnersMessages) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* mine = session(c, 42);
    FakeLink* other = session(c, 7);
    r.subscribe(mine->link, "chat", true);
    r.subscribe(other->link, "chat", true);
    FakeLink* pub = mqtt_publisher(c, 42);
    r.transfer(pub->link, msg("hi"), "chat", true, nullptr);
    EXPECT_TRUE(mine->delivered.empty());
    EXPECT_EQ(other->delivered.size(), 1u);
}

TEST(Subscriptions, CountAsDestinationsForAmqpSenders) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* sender = c.sender("devices/1/cmd");
    EXPECT_EQ(sender->flows, 0);
    FakeLink* s = session(c);
    r.subscribe(s->link, "devices/+/cmd");
    EXPECT_EQ(sender->credit, 250u) << "a matching subscription is a destination";
    r.transfer(sender->link, msg("reboot"), "", false, nullptr);
    EXPECT_EQ(s->delivered_bodies, std::vector<std::string>{"reboot"});
    r.unsubscribe(s->link, "devices/+/cmd");
    EXPECT_TRUE(sender->drain) << "losing the last one drains the sender";
}

TEST(Subscriptions, AmqpReceiverWithATopicFilter) {
    Router r(settings());
    r.add_address_rule({"t", "telemetry", "", Distribution::multicast, -1});
    FakeConnection c(r);
    FakeLink* rcv = c.receiver("telemetry/+/temp");
    ASSERT_TRUE(rcv->link);
    r.credit(rcv->link, 10, false);
    FakeLink* pub = mqtt_publisher(c);
    r.transfer(pub->link, msg("20"), "telemetry/a/temp", false, nullptr);
    r.transfer(pub->link, msg("no"), "telemetry/a/hum", false, nullptr);
    EXPECT_EQ(rcv->delivered_bodies, std::vector<std::string>{"20"});
    AttachResult res;
    c.attach(Direction::outgoing, "bad/#/filter", &res);
    EXPECT_EQ(res.kind, AttachResult::Kind::refused);
}

TEST(Retained, StoredReplacedDeletedAndSentToNewMulticastReceivers) {
    Router r(settings());
    r.add_address_rule({"s", "status", "", Distribution::multicast, -1});
    FakeConnection c(r);
    FakeLink* pub = mqtt_publisher(c);
    auto retained = [](const char* body, bool empty = false) {
        MessageRef m = msg(body);
        m->retain = true;
        m->empty_payload = empty;
        return m;
    };
    r.transfer(pub->link, retained("v1"), "status/door", true, nullptr);
    r.transfer(pub->link, retained("v2"), "status/door", true, nullptr);
    r.transfer(pub->link, retained("w1"), "status/window", true, nullptr);
    EXPECT_EQ(r.retained().size(), 2u);
    FakeLink* rcv = c.receiver("status/door");
    r.credit(rcv->link, 10, false);
    ASSERT_EQ(rcv->delivered_bodies, std::vector<std::string>{"v2"}) << "the latest, first";
    EXPECT_TRUE(rcv->delivered[0]->retained);
    FakeLink* all = c.receiver("status/#");
    r.credit(all->link, 10, false);
    EXPECT_EQ(all->delivered.size(), 2u);
    r.transfer(pub->link, retained("", true), "status/door", true, nullptr);
    EXPECT_EQ(r.retained().size(), 1u) << "an empty retained message deletes";
}

TEST(Publish, InProcessPublishingReachesSubscribers) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* s = session(c);
    r.subscribe(s->link, "wills/#");
    r.publish("wills/dev1", msg("gone"));
    EXPECT_EQ(s->delivered_bodies, std::vector<std::string>{"gone"});
    EXPECT_EQ(r.live_deliveries(), 0u);
}

TEST(TakesResponsibility, APortCanRefuseADelivery) {
    Router r(settings());
    FakeConnection c(r);
    struct Full : FakeLink {
        void deliver(Delivery& d) override {
            FakeLink::deliver(d);
            d.state = DeliveryState::released();  // e.g. its queue is full
        }
    };
    Full full;
    attach_session(c, full, "t");
    FakeLink* pub = mqtt_publisher(c);
    r.transfer(pub->link, msg("m"), "t", false, nullptr);
    EXPECT_EQ(pub->settled_outcomes(), std::vector<Outcome>{Outcome::released});
    r.detach(full.link, nullptr);
}

TEST(TakesResponsibility, ADeferredDeliveryWaitsFirstInLineUnsettledUntilCredit) {
    Router r(settings());
    FakeConnection c(r);
    struct Busy : FakeLink {
        bool busy = true;
        void deliver(Delivery& d) override {
            if (busy) {
                d.deferred = true;  // e.g. its queue is full of what Kafka can hold instead
                return;
            }
            FakeLink::deliver(d);
        }
    };
    Busy busy;
    attach_session(c, busy, "t");
    FakeLink* pub = mqtt_publisher(c);
    r.transfer(pub->link, msg("a"), "t", false, nullptr);
    r.transfer(pub->link, msg("b"), "t", false, nullptr);
    EXPECT_TRUE(pub->settled_outcomes().empty()) << "held unsettled: the producer waits";
    EXPECT_EQ(busy.link->undelivered_count(), 2u);
    busy.busy = false;
    r.credit(busy.link, 100, false);
    EXPECT_EQ(busy.delivered_bodies, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(pub->settled_outcomes(),
              (std::vector<Outcome>{Outcome::accepted, Outcome::accepted}));
    r.detach(busy.link, nullptr);
}

}  // namespace
