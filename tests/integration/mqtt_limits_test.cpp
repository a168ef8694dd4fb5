// Backpressure and bounded memory: a subscriber that stops reading, a publisher whose
// destination stalls.
#include <gtest/gtest.h>

#include <fstream>

#include "amqp_client.hpp"
#include "mqtt_helpers.hpp"
#include "router_process.hpp"

using namespace trestle::test;
namespace m = trestle::mqtt;

namespace {

const char* kConfig = R"(
router {
    id: Rlimits
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
}
mqttListener {
    name: mqtt
    host: 127.0.0.1
    port: 0
    maxBufferedBytes: 262144
    maxSessionQueue: 100
}
address {
    prefix: work
    distribution: balanced
}
)";

long rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

std::string publish_packet(const std::string& topic, size_t payload, uint8_t qos, uint16_t id) {
    m::Packet p;
    p.type = m::PacketType::publish;
    p.publish.topic = topic;
    p.publish.qos = qos;
    p.publish.packet_id = id;
    p.publish.payload = std::string(payload, 'p');
    std::string b;
    m::encode(p, m::v311, b);
    return b;
}

class Limits : public ::testing::Test {
  protected:
    void SetUp() override {
        router = std::make_unique<RouterProcess>(kConfig);
        port = router->port("mqtt");
    }
    std::unique_ptr<RouterProcess> router;
    int port = 0;
};

TEST_F(Limits, SubscriberThatStopsReadingDoesNotGrowMemory) {
    RawMqtt stalled(port, m::v311);
    ASSERT_EQ(stalled.connect("stalled").code, 0);
    stalled.subscribe(1, "flood/#", 0);
    ASSERT_TRUE(stalled.receive());
    RawMqtt healthy(port, m::v311);
    ASSERT_EQ(healthy.connect("healthy").code, 0);
    healthy.subscribe(1, "flood/#", 0);
    ASSERT_TRUE(healthy.receive());
    // From here on `stalled` never reads again.
    long before = rss_kb(router->process().pid());

    RawMqtt pub(port, m::v311);
    ASSERT_EQ(pub.connect("flooder").code, 0);
    std::string pkt = publish_packet("flood/x", 1024, 0, 0);
    const size_t n = 30000;  // ~30 MB through the router
    std::string batch;
    for (int i = 0; i < 100; ++i) batch += pkt;
    size_t received = 0;
    for (size_t sent = 0; sent < n; sent += 100) {
        pub.send_bytes(batch);
        // Lockstep: the healthy subscriber takes each batch before the next one goes out,
        // so only the stalled reader ever reaches its output limit.
        for (int k = 0; k < 100; ++k) {
            if (!healthy.receive(5s)) break;
            ++received;
        }
    }
    EXPECT_EQ(received, n) << "a stalled subscriber does not hold up the others";
    long after = rss_kb(router->process().pid());
    EXPECT_LT(after - before, 16 * 1024)
        << "router RSS grew " << (after - before) << " kB for a 30 MB flood to a stalled reader";
}

TEST_F(Limits, PublisherToAStalledDestinationIsSlowedNotBuffered) {
    // A balanced address whose only consumer gives no credit: nothing can leave the router.
    AmqpClient amqp(router->url("amqp"));
    LinkConfig no_credit;
    no_credit.credit_window = 0;
    int r = amqp.open_receiver("work/queue", no_credit);
    ASSERT_TRUE(amqp.wait_link_open(r));
    long before = rss_kb(router->process().pid());

    RawSocket pub(port);
    m::Packet c;
    c.type = m::PacketType::connect;
    c.connect.client_id = "pusher";
    std::string connect;
    m::encode(c, m::v311, connect);
    pub.write(connect);
    std::string chunk;
    for (int i = 0; i < 64; ++i) chunk += publish_packet("work/queue", 1024, 0, 0);
    size_t written = pub.write_until_blocked(chunk, 200u << 20, 1500ms);
    long after = rss_kb(router->process().pid());
    EXPECT_LT(written, 64u << 20) << "the router stopped reading: TCP pushed back on the publisher";
    EXPECT_LT(after - before, 8 * 1024) << "kB of router memory held for the stalled publisher";
    // And once the consumer gives credit, what was held moves on.
    amqp.add_credit(r, 10);
    EXPECT_TRUE(amqp.receive(r));
}

}  // namespace
