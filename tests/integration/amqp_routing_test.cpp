// Message routing through a real trestled with real Proton C++ clients: one test per rule of
// docs/routing.md (qdrouterd's rules).
#include <gtest/gtest.h>

#include <proton/message.hpp>
#include <proton/message_id.hpp>

#include "amqp_client.hpp"
#include "router_process.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

const char* kConfig = R"(
router {
    id: Rtest
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
}
# A second listener whose links hold at most 5 deliveries (balanced / slow-consumer tests).
listener {
    name: small
    host: 127.0.0.1
    port: 0
    linkCapacity: 5
}
address {
    prefix: closest
    distribution: closest
}
address {
    prefix: multicast
    distribution: multicast
}
address {
    pattern: sensors.*.temperature   # a pattern entity
    distribution: multicast
}
address {
    prefix: balanced
    distribution: balanced
}
address {
    pattern: forbidden/#
    distribution: unavailable
}
)";

class Routing : public ::testing::Test {
  protected:
    void SetUp() override {
        router = std::make_unique<RouterProcess>(kConfig);
        url = router->url("amqp");
        small_url = router->url("small");
    }
    std::unique_ptr<RouterProcess> router;
    std::string url, small_url;
};

proton::message msg(const std::string& body) {
    proton::message m;
    m.body(body);
    return m;
}

std::string body_of(const std::optional<Received>& r) {
    if (!r) return "<nothing>";
    return proton::get<std::string>(r->message.body());
}

TEST_F(Routing, AddressComesFromTheTarget) {
    AmqpClient c(url);
    int rcv = c.open_receiver("orders");
    ASSERT_TRUE(c.wait_link_open(rcv));
    int snd = c.open_sender("orders");
    ASSERT_TRUE(c.wait_credit(snd, 1));
    int i = c.send(snd, msg("order 1"));
    auto r = c.receive(rcv);
    EXPECT_EQ(body_of(r), "order 1");
    c.accept(rcv, r->id);
    EXPECT_EQ(c.wait_outcome(snd, i).state, transfer::ACCEPTED);
}

TEST_F(Routing, AnonymousRelayRoutesByTo) {
    AmqpClient c(url);
    auto caps = c.remote_offered_capabilities();
    EXPECT_NE(std::find(caps.begin(), caps.end(), "ANONYMOUS-RELAY"), caps.end());
    int rcv = c.open_receiver("invoices");
    ASSERT_TRUE(c.wait_link_open(rcv));
    int anon = c.open_sender("");
    ASSERT_TRUE(c.wait_credit(anon, 1)) << "anonymous senders get credit at once";
    proton::message m = msg("inv 7");
    m.to("invoices");
    int i = c.send(anon, m);
    auto r = c.receive(rcv);
    EXPECT_EQ(body_of(r), "inv 7");
    c.accept(rcv, r->id);
    EXPECT_EQ(c.wait_outcome(anon, i).state, transfer::ACCEPTED);

    proton::message lost = msg("to nobody");
    lost.to("nobody-listens-here");
    EXPECT_EQ(c.wait_outcome(anon, c.send(anon, lost)).state, transfer::RELEASED)
        << "an unroutable unsettled message comes back RELEASED";
}

TEST_F(Routing, ClosestIsStrictRoundRobin) {
    AmqpClient c(url);
    std::vector<int> rcvs;
    for (int k = 0; k < 3; ++k) {
        LinkConfig cfg;
        cfg.auto_accept = true;
        rcvs.push_back(c.open_receiver("closest/work", cfg));
        ASSERT_TRUE(c.wait_link_open(rcvs.back()));
    }
    int snd = c.open_sender("closest/work");
    ASSERT_TRUE(c.wait_credit(snd, 1));
    for (int i = 0; i < 9; ++i) c.send(snd, msg("m" + std::to_string(i)));
    for (int k = 0; k < 3; ++k)
        for (int j = 0; j < 3; ++j)
            EXPECT_EQ(body_of(c.receive(rcvs[k])), "m" + std::to_string(k + 3 * j))
                << "receiver " << k;
}

TEST_F(Routing, PrefixAndPatternEntitiesChooseTheDistribution) {
    AmqpClient c(url);
    LinkConfig auto_acc;
    auto_acc.auto_accept = true;
    int a = c.open_receiver("sensors.kitchen.temperature", auto_acc);
    int b = c.open_receiver("sensors.kitchen.temperature", auto_acc);
    ASSERT_TRUE(c.wait_link_open(a) && c.wait_link_open(b));
    int snd = c.open_sender("sensors.kitchen.temperature");
    ASSERT_TRUE(c.wait_credit(snd, 1));
    int i = c.send(snd, msg("21.5"));
    EXPECT_EQ(body_of(c.receive(a)), "21.5") << "the pattern made the address multicast";
    EXPECT_EQ(body_of(c.receive(b)), "21.5");
    EXPECT_EQ(c.wait_outcome(snd, i).state, transfer::ACCEPTED);

    // No entity matches: balanced (the default), one copy only.
    int x = c.open_receiver("sensors.kitchen.humidity", auto_acc);
    int y = c.open_receiver("sensors.kitchen.humidity", auto_acc);
    ASSERT_TRUE(c.wait_link_open(x) && c.wait_link_open(y));
    int s2 = c.open_sender("sensors.kitchen.humidity");
    ASSERT_TRUE(c.wait_credit(s2, 1));
    c.wait_outcome(s2, c.send(s2, msg("40%")));
    c.sync();
    EXPECT_EQ(c.pending(x) + c.pending(y), 1u);
}

TEST_F(Routing, BalancedAvoidsAConsumerAtCapacity) {
    // Nothing settles in this test, so only the router's own counts decide: `stuck` (link
    // capacity 5, plenty of credit) holds what it gets unsettled; `idle` (capacity 250) gives
    // no credit yet, so what it gets waits undelivered. Each copy goes to the smaller
    // undelivered+unsettled count among links below capacity.
    AmqpClient small(small_url);
    LinkConfig credit100;
    credit100.credit_window = 100;
    int stuck = small.open_receiver("balanced/jobs", credit100);
    ASSERT_TRUE(small.wait_link_open(stuck));
    AmqpClient big(url);
    LinkConfig no_credit;
    no_credit.credit_window = 0;
    int idle = big.open_receiver("balanced/jobs", no_credit);
    ASSERT_TRUE(big.wait_link_open(idle));

    AmqpClient producer(url);
    int snd = producer.open_sender("balanced/jobs");
    ASSERT_TRUE(producer.wait_credit(snd, 20));
    for (int i = 0; i < 20; ++i) producer.send(snd, msg("job " + std::to_string(i)));
    producer.sync();
    small.sync();
    EXPECT_EQ(small.pending(stuck), 5u) << "alternating until `stuck` reached its capacity";
    big.add_credit(idle, 100);
    for (int i = 0; i < 15; ++i) ASSERT_TRUE(big.receive(idle)) << i;
    big.sync();
    EXPECT_EQ(big.pending(idle), 0u) << "the other 15 all went to the link below capacity";
}

struct AggregationCase {
    std::vector<char> actions;  // a=accept r=reject l=release m=modify
    DeliveryOutcome expected;
};

void PrintTo(const AggregationCase& c, std::ostream* os) {
    *os << std::string(c.actions.begin(), c.actions.end());
}

class MulticastOutcome : public Routing, public ::testing::WithParamInterface<AggregationCase> {};

TEST_P(MulticastOutcome, AggregatesRejectedAcceptedModifiedReleased) {
    AmqpClient c(url);
    std::vector<int> rcvs;
    for (size_t k = 0; k < GetParam().actions.size(); ++k) {
        rcvs.push_back(c.open_receiver("multicast/agg"));
        ASSERT_TRUE(c.wait_link_open(rcvs.back()));
    }
    int snd = c.open_sender("multicast/agg");
    ASSERT_TRUE(c.wait_credit(snd, 1));
    int i = c.send(snd, msg("event"));
    std::vector<Received> got;
    for (int r : rcvs) {
        auto m = c.receive(r);
        ASSERT_TRUE(m);
        got.push_back(*m);
    }
    for (size_t k = 0; k < rcvs.size(); ++k) {
        EXPECT_FALSE(c.outcome(snd, i).settled) << "settled only after every copy is done";
        switch (GetParam().actions[k]) {
            case 'a':
                c.accept(rcvs[k], got[k].id);
                break;
            case 'r':
                c.reject(rcvs[k], got[k].id, "app:bad-event", "copy " + std::to_string(k));
                break;
            case 'l':
                c.release(rcvs[k], got[k].id);
                break;
            case 'm':
                c.modify(rcvs[k], got[k].id, true, false);
                break;
        }
    }
    Outcome o = c.wait_outcome(snd, i);
    EXPECT_TRUE(o.settled);
    EXPECT_EQ(o.state, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Cases, MulticastOutcome,
                         ::testing::Values(AggregationCase{{'a', 'r', 'l'}, transfer::REJECTED},
                                           AggregationCase{{'l', 'a', 'm'}, transfer::ACCEPTED},
                                           AggregationCase{{'l', 'm'}, transfer::MODIFIED},
                                           AggregationCase{{'l', 'l', 'l'}, transfer::RELEASED}),
                         [](const ::testing::TestParamInfo<AggregationCase>& info) {
                             // Readable test names: the consumers' actions, e.g. "arl".
                             return std::string(info.param.actions.begin(),
                                                info.param.actions.end());
                         });

TEST_F(Routing, MulticastPresettledShedsOldestAtSlowConsumer) {
    AmqpClient slow(small_url);  // capacity 5
    LinkConfig manual;
    manual.credit_window = 0;
    int lagging = slow.open_receiver("multicast/ticks", manual);
    ASSERT_TRUE(slow.wait_link_open(lagging));
    AmqpClient fast(url);
    LinkConfig auto_acc;
    auto_acc.credit_window = 100;
    int keeping_up = fast.open_receiver("multicast/ticks", auto_acc);
    ASSERT_TRUE(fast.wait_link_open(keeping_up));

    AmqpClient producer(url);
    LinkConfig presettled;
    presettled.presettled = true;
    int snd = producer.open_sender("multicast/ticks", presettled);
    ASSERT_TRUE(producer.wait_credit(snd, 1));
    for (int i = 0; i < 20; ++i) producer.send(snd, msg("tick " + std::to_string(i)));
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(body_of(fast.receive(keeping_up)), "tick " + std::to_string(i))
            << "the fast consumer gets every copy";
    slow.add_credit(lagging, 100);
    for (int i = 15; i < 20; ++i)
        EXPECT_EQ(body_of(slow.receive(lagging)), "tick " + std::to_string(i))
            << "the slow consumer kept only its capacity's worth, the newest";
    slow.sync();
    EXPECT_EQ(slow.pending(lagging), 0u);
}

TEST_F(Routing, NoCreditUntilADestinationExists) {
    AmqpClient c(url);
    int snd = c.open_sender("lonely");
    ASSERT_TRUE(c.wait_link_open(snd));
    c.sync();
    EXPECT_EQ(c.credit(snd), 0) << "no consumer, no credit";
    AmqpClient consumer(url);
    int rcv = consumer.open_receiver("lonely");
    ASSERT_TRUE(consumer.wait_link_open(rcv));
    EXPECT_TRUE(c.wait_credit(snd, 250)) << "link capacity (250) once a consumer attached";
}

TEST_F(Routing, LastDestinationLeavingReleasesAndDrains) {
    AmqpClient c(url);
    LinkConfig no_credit;
    no_credit.credit_window = 0;
    int rcv = c.open_receiver("fleeting", no_credit);
    ASSERT_TRUE(c.wait_link_open(rcv));
    int snd = c.open_sender("fleeting");
    ASSERT_TRUE(c.wait_credit(snd, 1));
    std::vector<int> sent;
    for (int i = 0; i < 3; ++i) sent.push_back(c.send(snd, msg("q" + std::to_string(i))));
    c.sync();  // queued at the router: the consumer gave no credit
    c.close_link(rcv);
    for (int i : sent) EXPECT_EQ(c.wait_outcome(snd, i).state, transfer::RELEASED);
    c.sync();
    EXPECT_TRUE(c.drain_requested(snd)) << "the router drains the sender's credit";
    EXPECT_EQ(c.credit(snd), 0);
}

TEST_F(Routing, RequestReplyThroughADynamicAddress) {
    AmqpClient service(url);
    int requests = service.open_receiver("service/echo");
    ASSERT_TRUE(service.wait_link_open(requests));
    int replies = service.open_sender("");

    AmqpClient client(url);
    LinkConfig dyn;
    dyn.dynamic = true;
    dyn.auto_accept = true;
    int reply_link = client.open_receiver("", dyn);
    ASSERT_TRUE(client.wait_link_open(reply_link));
    std::string reply_to = client.link_remote_address(reply_link);
    EXPECT_EQ(reply_to.rfind("amqp:/_topo/0/Rtest/temp.", 0), 0u) << reply_to;
    int req = client.open_sender("service/echo");
    ASSERT_TRUE(client.wait_credit(req, 1));
    proton::message m = msg("ping");
    m.reply_to(reply_to);
    m.correlation_id(std::string("c-42"));
    client.send(req, m);

    auto got = service.receive(requests);
    ASSERT_TRUE(got);
    proton::message reply = msg("pong");
    reply.to(got->message.reply_to());
    reply.correlation_id(got->message.correlation_id());
    ASSERT_TRUE(service.wait_credit(replies, 1));
    EXPECT_EQ(service.wait_outcome(replies, service.send(replies, reply)).state,
              transfer::ACCEPTED);
    service.accept(requests, got->id);

    auto answer = client.receive(reply_link);
    EXPECT_EQ(body_of(answer), "pong");
    EXPECT_EQ(proton::coerce<std::string>(answer->message.correlation_id()), "c-42");
}

TEST_F(Routing, SettlementAndOutcomesTravelEndToEnd) {
    AmqpClient c(url);
    int rcv = c.open_receiver("settle");
    ASSERT_TRUE(c.wait_link_open(rcv));
    int snd = c.open_sender("settle");
    ASSERT_TRUE(c.wait_credit(snd, 1));

    int i = c.send(snd, msg("unsettled"));
    auto r = c.receive(rcv);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->settled) << "unsettled in, unsettled out";
    c.sync();
    EXPECT_FALSE(c.outcome(snd, i).settled) << "the router does not settle on its own";
    c.reject(rcv, r->id, "app:invalid-order", "order 7 has no lines");
    Outcome o = c.wait_outcome(snd, i);
    EXPECT_EQ(o.state, transfer::REJECTED);
    EXPECT_EQ(o.condition, "app:invalid-order") << "the consumer's condition, unchanged";
    EXPECT_EQ(o.description, "order 7 has no lines");

    i = c.send(snd, msg("released"));
    r = c.receive(rcv);
    c.release(rcv, r->id);
    EXPECT_EQ(c.wait_outcome(snd, i).state, transfer::RELEASED);

    i = c.send(snd, msg("modified"));
    r = c.receive(rcv);
    c.modify(rcv, r->id, true, true);
    o = c.wait_outcome(snd, i);
    EXPECT_EQ(o.state, transfer::MODIFIED);
    EXPECT_TRUE(o.delivery_failed);
    EXPECT_TRUE(o.undeliverable_here);

    LinkConfig presettled;
    presettled.presettled = true;
    int ps = c.open_sender("settle", presettled);
    ASSERT_TRUE(c.wait_credit(ps, 1));
    c.send(ps, msg("fire and forget"));
    r = c.receive(rcv);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->settled) << "presettled stays presettled";
}

TEST_F(Routing, LostReceiverInFlightComesBackModifiedQueuedGoesToAnother) {
    AmqpClient producer(url);
    AmqpClient first(url);
    LinkConfig one;
    one.credit_window = 0;
    int r1 = first.open_receiver("closest/tasks", one);
    ASSERT_TRUE(first.wait_link_open(r1));
    first.add_credit(r1, 1);
    int snd = producer.open_sender("closest/tasks");
    ASSERT_TRUE(producer.wait_credit(snd, 1));
    int a = producer.send(snd, msg("A"));
    int b = producer.send(snd, msg("B"));  // queued at the router: r1 has one credit
    EXPECT_EQ(body_of(first.receive(r1)), "A");

    AmqpClient second(url);
    LinkConfig no_credit;
    no_credit.credit_window = 0;
    int r2 = second.open_receiver("closest/tasks", no_credit);
    ASSERT_TRUE(second.wait_link_open(r2));
    first.close();  // gone with A unsettled and B never sent to it

    Outcome oa = producer.wait_outcome(snd, a);
    EXPECT_EQ(oa.state, transfer::MODIFIED) << "A may have been processed: MODIFIED";
    EXPECT_TRUE(oa.delivery_failed);
    second.add_credit(r2, 5);
    auto got = second.receive(r2);
    EXPECT_EQ(body_of(got), "B") << "B never reached the lost consumer: routed to another";
    second.accept(r2, got->id);
    EXPECT_EQ(producer.wait_outcome(snd, b).state, transfer::ACCEPTED);
}

TEST_F(Routing, UnavailableAddressRefusesTheAttach) {
    AmqpClient c(url);
    int snd = c.open_sender("forbidden/zone");
    ASSERT_TRUE(c.wait_link_closed(snd));
    EXPECT_EQ(c.link_error(snd), "amqp:not-found");
    int ok = c.open_receiver("allowed");
    EXPECT_TRUE(c.wait_link_open(ok)) << "the connection carries on";
}

}  // namespace
