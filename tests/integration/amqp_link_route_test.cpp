// Link routing through a connector to a real AMQP container: the broker from Qpid Proton's
// C examples (Debian's libqpid-proton11-dev-examples), built by the test setup. That broker
// grants 5 credits per link, accepts what it receives and sends presettled.
#include <gtest/gtest.h>

#include <proton/message.hpp>

#include "amqp_client.hpp"
#include "router_process.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

constexpr int kBrokerWindow = 5;  // WINDOW in broker.c

class Broker {
  public:
    explicit Broker(int port) : port_(port) { start(); }
    void start() {
        proc_ = std::make_unique<Process>(
            std::vector<std::string>{PROTON_BROKER_PATH, "127.0.0.1", std::to_string(port_)});
        if (proc_->wait_for_line(std::regex("listening on")).empty())
            throw std::runtime_error("broker did not start: " + proc_->output());
    }
    void kill() { proc_->stop(SIGKILL); }
    int port() const { return port_; }
    static std::string container_id() { return PROTON_BROKER_PATH; }  // broker.c uses argv[0]

  private:
    int port_;
    std::unique_ptr<Process> proc_;
};

std::string config(int broker_port) {
    return R"(
router {
    id: Rlr
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
}
connector {
    name: broker
    host: 127.0.0.1
    port: )" +
           std::to_string(broker_port) +
           R"(
    role: route-container
    maxReconnectDelaySeconds: 1
}
linkRoute {
    prefix: queue
    direction: in
    connection: broker
}
linkRoute {
    prefix: queue
    direction: out
    connection: broker
}
linkRoute {
    prefix: ext
    direction: in
    connection: broker
    delExternalPrefix: ext.
    addExternalPrefix: queue.rewritten.
}
linkRoute {
    pattern: by-id/#
    direction: in
    containerId: )" +
           Broker::container_id() +
           R"(
}
linkRoute {
    pattern: by-id/#
    direction: out
    containerId: )" +
           Broker::container_id() +
           R"(
}
)";
}

class LinkRoute : public ::testing::Test {
  protected:
    void SetUp() override {
        broker = std::make_unique<Broker>(free_port());
        router = std::make_unique<RouterProcess>(config(broker->port()));
        url = router->url("amqp");
        ASSERT_FALSE(
            router->process().wait_for_line(std::regex("outgoing connection to .* opened")).empty())
            << router->process().output();
    }
    std::unique_ptr<Broker> broker;
    std::unique_ptr<RouterProcess> router;
    std::string url;
};

proton::message msg(const std::string& body) {
    proton::message m;
    m.body(body);
    return m;
}

std::string body_of(const std::optional<Received>& r) {
    return r ? proton::get<std::string>(r->message.body()) : "<nothing>";
}

TEST_F(LinkRoute, AttachTransfersAndOutcomesPassThroughEndToEnd) {
    AmqpClient c(url);
    int snd = c.open_sender("queue.orders");
    ASSERT_TRUE(c.wait_link_open(snd)) << c.link_error(snd);
    EXPECT_EQ(c.link_remote_address(snd), "queue.orders") << "the broker's attach, relayed";
    ASSERT_TRUE(c.wait_credit(snd, kBrokerWindow));
    c.sync();
    EXPECT_EQ(c.credit(snd), kBrokerWindow)
        << "the broker's credit is the client's credit (not the router's 250)";
    for (int i = 0; i < 3; ++i) {
        Outcome o = c.wait_outcome(snd, c.send(snd, msg("order " + std::to_string(i))));
        EXPECT_EQ(o.state, transfer::ACCEPTED) << "the broker's outcome";
        EXPECT_TRUE(o.settled);
    }

    LinkConfig manual;
    manual.credit_window = 0;
    int rcv = c.open_receiver("queue.orders", manual);
    ASSERT_TRUE(c.wait_link_open(rcv));
    c.add_credit(rcv, 2);  // relayed to the broker: it may send two
    for (int i = 0; i < 2; ++i) {
        auto r = c.receive(rcv);
        EXPECT_EQ(body_of(r), "order " + std::to_string(i));
        EXPECT_TRUE(r && r->settled) << "the broker sends presettled; that is relayed as is";
    }
    c.sync();
    EXPECT_EQ(c.pending(rcv), 0u) << "no credit, no more messages";
    c.add_credit(rcv, 5);
    EXPECT_EQ(body_of(c.receive(rcv)), "order 2");
}

TEST_F(LinkRoute, ContainerIdRoutesAndAddressRewriting) {
    AmqpClient c(url);
    int snd = c.open_sender("by-id/q1");
    ASSERT_TRUE(c.wait_link_open(snd)) << c.link_error(snd);
    ASSERT_TRUE(c.wait_credit(snd, 1));
    EXPECT_EQ(c.wait_outcome(snd, c.send(snd, msg("via container id"))).state, transfer::ACCEPTED);
    LinkConfig acc;
    acc.auto_accept = true;
    int rcv = c.open_receiver("by-id/q1", acc);
    EXPECT_EQ(body_of(c.receive(rcv)), "via container id");

    // ext.x is attached at the broker as queue.rewritten.x
    int ext = c.open_sender("ext.x");
    ASSERT_TRUE(c.wait_credit(ext, 1)) << c.link_error(ext);
    EXPECT_EQ(c.wait_outcome(ext, c.send(ext, msg("rewritten"))).state, transfer::ACCEPTED);
    int back = c.open_receiver("queue.rewritten.x", acc);
    EXPECT_EQ(body_of(c.receive(back)), "rewritten");
}

TEST_F(LinkRoute, LostContainerDetachesRoutedLinksAndTheConnectorReconnects) {
    AmqpClient c(url);
    int snd = c.open_sender("queue.jobs");
    ASSERT_TRUE(c.wait_credit(snd, 1));
    int rcv = c.open_receiver("queue.jobs");
    ASSERT_TRUE(c.wait_link_open(rcv));

    broker->kill();
    ASSERT_TRUE(c.wait_link_closed(snd));
    EXPECT_EQ(c.link_error(snd), "qd:routed-link-lost");
    EXPECT_EQ(c.link_error_description(snd), "Connectivity to the peer container was lost");
    ASSERT_TRUE(c.wait_link_closed(rcv));
    EXPECT_EQ(c.link_error(rcv), "qd:routed-link-lost");

    int refused = c.open_sender("queue.jobs");
    ASSERT_TRUE(c.wait_link_closed(refused));
    EXPECT_EQ(c.link_error(refused), "qd:no-route-to-dest") << "no container, no route";
    EXPECT_FALSE(c.is_closed()) << "the client's connection is unaffected";

    broker->start();  // same port: the connector's backoff (at most 1 s here) finds it again
    // A refused attach never gets credit; a routed one gets the broker's. Retry until routed.
    auto deadline = std::chrono::steady_clock::now() + 15s;
    bool attached = false;
    while (!attached && std::chrono::steady_clock::now() < deadline) {
        int again = c.open_sender("queue.jobs");
        attached = c.wait_credit(again, 1, 2s);
        if (attached) {
            EXPECT_EQ(c.wait_outcome(again, c.send(again, msg("after restart"))).state,
                      transfer::ACCEPTED);
        }
    }
    EXPECT_TRUE(attached) << router->process().output();
}

TEST_F(LinkRoute, ClientDetachIsRelayedAndFreesTheBrokerLink) {
    AmqpClient c(url);
    // Reattach the same link name many times: each detach must reach the broker, or the
    // broker would refuse the name as already attached.
    for (int i = 0; i < 5; ++i) {
        LinkConfig named;
        named.name = "same-name";
        int snd = c.open_sender("queue.reuse", named);
        ASSERT_TRUE(c.wait_credit(snd, 1)) << "attempt " << i << ": " << c.link_error(snd);
        EXPECT_EQ(c.wait_outcome(snd, c.send(snd, msg("m" + std::to_string(i)))).state,
                  transfer::ACCEPTED);
        c.close_link(snd);
        ASSERT_TRUE(c.wait_link_closed(snd));
        EXPECT_EQ(c.link_error(snd), "");
    }
}

}  // namespace
