// AMQP listener behaviour: open properties, SASL and bare-header clients, negotiated limits,
// heartbeats and idle timeout, bad input, graceful shutdown.
#include <gtest/gtest.h>

#include <proton/message.hpp>

#include <thread>

#include "amqp_client.hpp"
#include "raw_socket.hpp"
#include "router_process.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

const char* kConfig = R"(
router {
    id: Rconn
}
listener {
    name: amqp
    host: 127.0.0.1
    port: 0
    idleTimeoutSeconds: 2
}
listener {
    name: tight
    host: 127.0.0.1
    port: 0
    maxFrameSize: 1024
    maxSessions: 4
    linkCapacity: 17
    idleTimeoutSeconds: 1
}
address {
    prefix: gone
    distribution: unavailable
}
linkRoute {
    prefix: broker
    direction: in
    containerId: no-such-broker
}
)";

class Connection : public ::testing::Test {
  protected:
    void SetUp() override { router = std::make_unique<RouterProcess>(kConfig); }
    std::unique_ptr<RouterProcess> router;
};

proton::message msg(const std::string& body) {
    proton::message m;
    m.body(body);
    return m;
}

// A client that proves the router still serves: a message goes round trip.
void expect_router_serves(const std::string& url, const std::string& address) {
    AmqpClient c(url);
    ASSERT_TRUE(c.wait_open()) << c.error();
    LinkConfig acc;
    acc.auto_accept = true;
    int r = c.open_receiver(address, acc);
    ASSERT_TRUE(c.wait_link_open(r));
    int s = c.open_sender(address);
    ASSERT_TRUE(c.wait_credit(s, 1));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, msg("still here"))).state, transfer::ACCEPTED);
}

TEST_F(Connection, OpenAdvertisesProductVersionAndAnonymousRelay) {
    AmqpClient c(router->url("amqp"));
    ASSERT_TRUE(c.wait_open()) << c.error();
    auto props = c.remote_properties();
    EXPECT_EQ(props["product"], "trestle");
    EXPECT_FALSE(props["version"].empty());
    auto caps = c.remote_offered_capabilities();
    EXPECT_NE(std::find(caps.begin(), caps.end(), "ANONYMOUS-RELAY"), caps.end());
}

TEST_F(Connection, SaslAnonymousAndBareAmqpHeaderClientsAreAccepted) {
    AmqpClient sasl(router->url("amqp"));
    EXPECT_TRUE(sasl.wait_open()) << sasl.error();
    AmqpClient::Options no_sasl;
    no_sasl.sasl = false;  // sends "AMQP 0 1 0 0" directly, as qdstat does
    AmqpClient bare(router->url("amqp"), no_sasl);
    EXPECT_TRUE(bare.wait_open()) << bare.error();
    EXPECT_TRUE(router->process().wait_for_line(std::regex("opened .*sasl none")).size());
    expect_router_serves(router->url("amqp"), "sasl-check");
}

TEST_F(Connection, ListenerLimitsAreNegotiated) {
    AmqpClient c(router->url("tight"));
    ASSERT_TRUE(c.wait_open()) << c.error();
    EXPECT_EQ(c.remote_max_frame_size(), 1024u);
    EXPECT_EQ(c.remote_max_sessions(), 3u) << "channel-max = maxSessions - 1";
    EXPECT_GT(c.remote_idle_timeout(), 0u) << "the router asks for heartbeats";
    int r = c.open_receiver("capacity-check");
    ASSERT_TRUE(c.wait_link_open(r));
    int s = c.open_sender("capacity-check");
    ASSERT_TRUE(c.wait_credit(s, 17));
    c.sync();
    EXPECT_EQ(c.credit(s), 17) << "linkCapacity is the credit window";
}

TEST_F(Connection, LargeMessagesSpanFrames) {
    AmqpClient c(router->url("tight"));  // maxFrameSize 1024
    int r = c.open_receiver("big");
    ASSERT_TRUE(c.wait_link_open(r));
    int s = c.open_sender("big");
    ASSERT_TRUE(c.wait_credit(s, 1));
    std::string body(200000, 'x');
    body[12345] = 'y';
    int i = c.send(s, msg(body));
    auto got = c.receive(r);
    ASSERT_TRUE(got);
    EXPECT_EQ(proton::get<std::string>(got->message.body()), body);
    c.accept(r, got->id);
    EXPECT_EQ(c.wait_outcome(s, i).state, transfer::ACCEPTED);
}

// A message is held whole while it arrives: a listener bounds it at 16 MiB unless configured
// otherwise, and a larger one detaches its link before it is buffered.
TEST_F(Connection, ByDefaultAMessageOver16MiBDetachesItsLinkAndTheConnectionGoesOn) {
    AmqpClient c(router->url("amqp"));
    ASSERT_TRUE(c.wait_open()) << c.error();
    int r = c.open_receiver("huge");
    ASSERT_TRUE(c.wait_link_open(r));
    int s = c.open_sender("huge");
    ASSERT_TRUE(c.wait_credit(s, 1));
    c.send(s, msg(std::string(16 * 1024 * 1024 + 1, 'x')));
    ASSERT_TRUE(c.wait_link_closed(s));
    EXPECT_EQ(c.link_error(s), "amqp:link:message-size-exceeded");
    // 4 MiB is fine, on a new link of the same connection.
    int s2 = c.open_sender("huge");
    ASSERT_TRUE(c.wait_credit(s2, 1));
    int i = c.send(s2, msg(std::string(4 * 1024 * 1024, 'y')));
    auto got = c.receive(r);
    ASSERT_TRUE(got);
    EXPECT_EQ(proton::get<std::string>(got->message.body()).size(), 4u * 1024 * 1024);
    c.accept(r, got->id);
    EXPECT_EQ(c.wait_outcome(s2, i).state, transfer::ACCEPTED);
}

TEST_F(Connection, SilentPeerIsDroppedAfterIdleTimeout) {
    RawSocket sock(router->port("tight"));  // idleTimeoutSeconds: 1
    auto start = std::chrono::steady_clock::now();
    sock.write(amqp_header() + open_frame());
    bool closed = false;
    std::string reply = sock.read_until_closed(10s, &closed);
    auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(closed) << "the router drops a peer that sends nothing";
    EXPECT_GE(waited, 900ms) << "not before the idle timeout";
    EXPECT_NE(reply.find("amqp:resource-limit-exceeded"), std::string::npos)
        << "the close carries the reason";
}

TEST_F(Connection, HeartbeatsKeepAnIdleClientAlive) {
    AmqpClient::Options o;
    o.idle_timeout_ms = 1000;  // the client drops the router if it hears nothing for 1 s
    AmqpClient c(router->url("amqp"), o);
    ASSERT_TRUE(c.wait_open()) << c.error();
    // Idle time is the behaviour under test: over 3.5 s (three client timeouts) neither end
    // may drop the other; a close ends the wait at once and fails.
    EXPECT_FALSE(c.wait_closed(3500ms)) << c.error();
    LinkConfig acc;
    acc.auto_accept = true;
    int r = c.open_receiver("after-idle", acc);
    ASSERT_TRUE(c.wait_link_open(r));
    int s = c.open_sender("after-idle");
    ASSERT_TRUE(c.wait_credit(s, 1));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, msg("awake"))).state, transfer::ACCEPTED);
}

TEST_F(Connection, GarbageBytesAreRefusedWithoutHarmingOthers) {
    AmqpClient bystander(router->url("amqp"));
    ASSERT_TRUE(bystander.wait_open());
    RawSocket sock(router->port("amqp"));
    sock.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    bool closed = false;
    std::string reply = sock.read_until_closed(5s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(reply.substr(0, 4), "AMQP") << "the router answers with the header it speaks";
    EXPECT_FALSE(bystander.is_closed());
    expect_router_serves(router->url("amqp"), "after-garbage");
}

TEST_F(Connection, ATlsHandshakeOnAPlainListenerIsClosedAtOnce) {
    RawSocket sock(router->port("amqp"));
    // The start of a TLS 1.2 ClientHello record.
    std::string hello("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
    hello += std::string(160, '\0');
    sock.write(hello);
    bool closed = false;
    sock.read_until_closed(5s, &closed);
    EXPECT_TRUE(closed) << "not held open waiting for a TLS configuration";
    EXPECT_FALSE(
        router->process()
            .wait_for_line(std::regex("TLS handshake received, but this listener has no TLS"))
            .empty());
    std::string out;
    int st = run_command(
        {TRESTLE_STAT_PATH, "-b", router->url("amqp"), "--ssl-disable-peer-name-verify", "-g"},
        &out);
    EXPECT_EQ(st, 1) << out;
    EXPECT_NE(out.find("failed"), std::string::npos) << "the CLI tried TLS and says so: " << out;
    expect_router_serves(router->url("amqp"), "after-tls");
}

TEST_F(Connection, WrongProtocolHeaderIsRefused) {
    RawSocket sock(router->port("amqp"));
    sock.write(std::string("AMQP\x01\x01\x00\x0a", 8));  // protocol id 1 (AMQP 0-10 style)
    bool closed = false;
    std::string reply = sock.read_until_closed(5s, &closed);
    EXPECT_TRUE(closed);
    ASSERT_GE(reply.size(), 8u);
    EXPECT_EQ(reply.substr(0, 4), "AMQP");
    EXPECT_EQ(reply[5], '\x01') << "answers with AMQP 1.0";
    expect_router_serves(router->url("amqp"), "after-bad-header");
}

TEST_F(Connection, OversizedFrameGetsAFramingError) {
    RawSocket sock(router->port("tight"));  // maxFrameSize 1024
    sock.write(amqp_header() + open_frame());
    // A frame header announcing 100000 bytes, far beyond the negotiated 1024.
    std::string big("\x00\x01\x86\xa0\x02\x00\x00\x00", 8);
    big += std::string(2000, '\0');
    sock.write(big);
    bool closed = false;
    std::string reply = sock.read_until_closed(5s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_NE(reply.find("amqp:connection:framing-error"), std::string::npos) << reply.size();
    expect_router_serves(router->url("amqp"), "after-oversize");
}

TEST_F(Connection, LinksToUnservableAddressesGetSpecificErrors) {
    AmqpClient c(router->url("amqp"));
    int unavailable = c.open_sender("gone/away");
    ASSERT_TRUE(c.wait_link_closed(unavailable));
    EXPECT_EQ(c.link_error(unavailable), "amqp:not-found");
    int no_route = c.open_sender("broker.queue");
    ASSERT_TRUE(c.wait_link_closed(no_route));
    EXPECT_EQ(c.link_error(no_route), "qd:no-route-to-dest");
    EXPECT_EQ(c.link_error_description(no_route), "No route to the destination node");
    EXPECT_FALSE(c.is_closed()) << "a refused link does not end the connection";
    expect_router_serves(router->url("amqp"), "after-refusals");
}

TEST_F(Connection, SigtermDetachesLinksClosesConnectionsAndExitsZero) {
    AmqpClient c(router->url("amqp"));
    int r = c.open_receiver("shutdown");
    ASSERT_TRUE(c.wait_link_open(r));
    int s = c.open_sender("shutdown");
    ASSERT_TRUE(c.wait_credit(s, 1));
    EXPECT_EQ(router->terminate(), 0);
    EXPECT_TRUE(c.wait_link_closed(r));
    EXPECT_TRUE(c.wait_link_closed(s));
    EXPECT_TRUE(c.wait_closed());
    EXPECT_NE(c.error().find("amqp:connection:forced"), std::string::npos) << c.error();
}

}  // namespace
