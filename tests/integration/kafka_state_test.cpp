// State in Kafka shared by instances: MQTT sessions, wills (MQTT and AMQP), retained messages.
#include "kafka_fixture.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

TEST_F(Kafka, TwoInstancesOnOneKafkaPublishAtAReachesASubscriberAtB) {
    Instance a("A", kafka->bootstrap());
    Instance b("B", kafka->bootstrap());
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho sub(b.mqtt_port, "ksub-b");
    sub.connect();
    sub.subscribe("telemetry/#", 1);
    Paho pub(a.mqtt_port, "kpub-a");
    pub.connect();
    ASSERT_EQ(pub.publish("telemetry/room1", "19.0", 1), 0);
    auto got = sub.receive(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->get_topic(), "telemetry/room1");
    EXPECT_EQ(got->to_string(), "19.0");
}

TEST_F(Kafka, APersistentSessionCreatedAtAResumesAtBWithItsMissedQos1Messages) {
    Instance a("A", kafka->bootstrap());
    Instance b("B", kafka->bootstrap(), "", "", {"--log-level", "debug"});
    ASSERT_TRUE(a.consuming("telemetry"));
    ASSERT_TRUE(b.consuming("telemetry"));
    {
        Paho dev(a.mqtt_port, "kpers");
        EXPECT_FALSE(dev.connect(false, 60, 300).is_session_present());
        dev.subscribe("telemetry/pers/#", 1);
        Paho pub(a.mqtt_port, "kpers-pub");
        pub.connect();
        ASSERT_EQ(pub.publish("telemetry/pers/x", "before", 1), 0);
        auto m = dev.receive(10s);
        ASSERT_TRUE(m);  // acknowledged while connected: not sent again
        EXPECT_EQ(m->to_string(), "before");
        dev.disconnect();
        // Missed while offline (in Kafka once acknowledged).
        for (int i = 1; i <= 3; ++i)
            ASSERT_EQ(pub.publish("telemetry/pers/x", "missed-" + std::to_string(i), 1), 0);
    }
    // B has read A's record of the session going offline.
    ASSERT_FALSE(
        b.router->process()
            .wait_for_line(
                std::regex("MQTT sessions: 'kpers' at instance 'A' \\(generation \\d+, offline\\)"),
                10s)
            .empty());
    Paho dev(b.mqtt_port, "kpers");
    EXPECT_TRUE(dev.connect(false, 60, 300).is_session_present());
    for (int i = 1; i <= 3; ++i) {
        auto m = dev.receive(10s);
        ASSERT_TRUE(m) << "missed message " << i;
        EXPECT_EQ(m->get_topic(), "telemetry/pers/x");
        EXPECT_EQ(m->to_string(), "missed-" + std::to_string(i));
    }
    // Its subscription is live at B too, after what it missed.
    Paho pub(a.mqtt_port, "kpers-pub2");
    pub.connect();
    ASSERT_EQ(pub.publish("telemetry/pers/x", "live", 1), 0);
    auto m = dev.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->to_string(), "live");
    // A let its copy go (it no longer queues for the client).
    EXPECT_FALSE(
        a.router->process()
            .wait_for_line(std::regex("MQTT session 'kpers' taken over by instance 'B'"), 10s)
            .empty());
}

// The sum of the offsets in a session record's positions, or -1 for another record.
int64_t positions_sum(const std::string& json) {
    if (json.find("\"disconnectedAt\":0") == std::string::npos) return -1;
    int64_t sum = 0;
    static const std::regex offset("\"offset\":(\\d+)");
    for (std::sregex_iterator it(json.begin(), json.end(), offset), end; it != end; ++it)
        sum += std::stoll((*it)[1]);
    return sum;
}

TEST_F(Kafka, AConnectedSessionsPositionsFollowWhatItAcknowledged) {
    // Refreshed every instanceTimeout while connected: a crash later costs it no repeats.
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    ASSERT_TRUE(a->consuming("telemetry"));
    auto dev = std::make_unique<Paho>(a->mqtt_port, "kpos");
    dev->connect(false, 60, 300);
    dev->subscribe("telemetry/pos/#", 1);
    int64_t at_subscribe = -1;
    ASSERT_TRUE(poll_until(
        [&] {
            for (const auto& r : kcat_consume(kafka->bootstrap(), "trestle.sessions"))
                if (r.key == "kpos" && positions_sum(r.value) >= 0) {
                    at_subscribe = positions_sum(r.value);
                    return true;
                }
            return false;
        },
        10s));
    for (int i = 1; i <= 3; ++i)
        kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/pos/x",
                     "seen-" + std::to_string(i));
    for (int i = 1; i <= 3; ++i) {
        auto m = dev->receive(10s);
        ASSERT_TRUE(m) << "message " << i;  // acknowledged by Paho on arrival
    }
    // The stored positions move past the three acknowledged records while it stays connected.
    ASSERT_TRUE(poll_until(
        [&] {
            int64_t latest = -1;
            for (const auto& r : kcat_consume(kafka->bootstrap(), "trestle.sessions"))
                if (r.key == "kpos") latest = positions_sum(r.value);
            return latest == at_subscribe + 3;
        },
        10s));
    kill(a->router->process().pid(), SIGKILL);
    dev.reset();
    a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    ASSERT_TRUE(a->consuming("telemetry"));
    Paho again(a->mqtt_port, "kpos");
    EXPECT_TRUE(again.connect(false, 60, 300).is_session_present());
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/pos/x", "after");
    auto m = again.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->to_string(), "after") << "acknowledged before the crash: not sent again";
}

TEST_F(Kafka, APersistentSessionSurvivesAKillDashNineOfItsInstanceAndCatchesUp) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    ASSERT_TRUE(a->consuming("telemetry"));
    {
        Paho dev(a->mqtt_port, "kres");
        dev.connect(false, 60, 300);
        dev.subscribe("telemetry/res/#", 1);
        dev.disconnect();
    }
    // The session's record (offline, with its positions) is in Kafka before the kill; only
    // observable by reading the topic.
    ASSERT_TRUE(poll_until(
        [&] {
            for (const auto& r : kcat_consume(kafka->bootstrap(), "trestle.sessions"))
                if (r.key == "kres" && !r.value.empty() &&
                    r.value.find("\"disconnectedAt\":0") == std::string::npos &&
                    r.value.find("\"positions\":[{") != std::string::npos)
                    return true;
            return false;
        },
        10s));
    kill(a->router->process().pid(), SIGKILL);
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/res/x", "while-down-1");
    kcat_produce(kafka->bootstrap(), "telemetry", "telemetry/res/x", "while-down-2");
    a = std::make_unique<Instance>("A", kafka->bootstrap());
    Paho dev(a->mqtt_port, "kres");
    EXPECT_TRUE(dev.connect(false, 60, 300).is_session_present());
    std::vector<std::string> got;
    while (auto m = dev.receive(got.size() < 2 ? 10s : 1s)) got.push_back(m->to_string());
    ASSERT_GE(got.size(), 2u);
    // At least once: the missed ones, in order (a duplicate may follow from the live feed).
    EXPECT_EQ(got[0], "while-down-1");
    EXPECT_EQ(got[1], "while-down-2");
}

TEST_F(Kafka, TheWillOfAClientAtAIsPublishedAtBWhenAIsKilled) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    Paho dev(a->mqtt_port, "kwill");
    ::mqtt::connect_options opts =
        ::mqtt::connect_options_builder()
            .mqtt_version(MQTTVERSION_5)
            .clean_start(true)
            .will(::mqtt::message("telemetry/wills/kwill", "gone", 1, false))
            .finalize();
    dev.connect(opts);
    // B knows the will (from Kafka) before A dies.
    ASSERT_FALSE(b.router->process()
                     .wait_for_line(
                         std::regex("MQTT wills: will of 'kwill' at instance 'A' \\(held\\)"), 10s)
                     .empty());
    kill(a->router->process().pid(), SIGKILL);
    auto m = watcher.receive(15s);
    ASSERT_TRUE(m) << "the will was not published";
    EXPECT_EQ(m->get_topic(), "telemetry/wills/kwill");
    EXPECT_EQ(m->to_string(), "gone");
    EXPECT_TRUE(b.router->process().has_line(std::regex("instance 'A' is gone, claiming it")));
}

TEST_F(Kafka, TheAmqpWillOfAClientAtAIsPublishedAtBWhenAIsKilled) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch4");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    AmqpClient amqp(a->amqp_url);
    LinkConfig named;
    named.name = "amqp-dev";  // EnMasse: the $lwt link is named by the client id
    int w = amqp.open_sender("$lwt", named);
    ASSERT_TRUE(amqp.wait_credit(w, 1));
    proton::message will;
    will.to("telemetry/wills/amqp-dev");
    will.durable(true);
    will.body(std::string("amqp gone"));
    ASSERT_EQ(amqp.wait_outcome(w, amqp.send(w, will)).state, transfer::ACCEPTED);
    ASSERT_FALSE(
        b.router->process()
            .wait_for_line(std::regex("MQTT wills: will of 'amqp-dev' at instance 'A' \\(held\\)"),
                           10s)
            .empty());
    kill(a->router->process().pid(), SIGKILL);
    auto m = watcher.receive(15s);
    ASSERT_TRUE(m) << "the AMQP client's will was not published";
    EXPECT_EQ(m->get_topic(), "telemetry/wills/amqp-dev");
    EXPECT_EQ(m->to_string(), "amqp gone");
}

TEST_F(Kafka, AKafkaOutageLongerThanTheInstanceTimeoutPublishesNoWill) {
    Instance a("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch3");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    Paho dev(a.mqtt_port, "kwill3");
    dev.connect(::mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .will(::mqtt::message("telemetry/wills/kwill3", "gone", 1, false))
                    .finalize());
    ASSERT_FALSE(b.router->process()
                     .wait_for_line(
                         std::regex("MQTT wills: will of 'kwill3' at instance 'A' \\(held\\)"), 10s)
                     .empty());
    kafka->command("down 1");
    // The outage lasts twice the instance timeout: nobody hears anybody's heartbeat.
    EXPECT_FALSE(watcher.receive(4s));
    kafka->command("up 1");
    ASSERT_FALSE(
        b.router->process().wait_for_line(std::regex("brokers answer again"), 20s).empty());
    // Past B's own heartbeats flowing again for the timeout, and its next checks: no will.
    EXPECT_FALSE(watcher.receive(5s)) << "a will was published after a Kafka outage";
    EXPECT_FALSE(b.router->process().has_line(std::regex("claiming")));
    EXPECT_TRUE(dev.connected());
}

TEST_F(Kafka, AnOrderlyShutdownOfAPublishesNoWillOfItsConnectedClients) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap(), "", "    instanceTimeout: 2\n");
    Instance b("B", kafka->bootstrap(), "", "    instanceTimeout: 2\n", {"--log-level", "debug"});
    ASSERT_TRUE(b.consuming("telemetry"));
    Paho watcher(b.mqtt_port, "kwill-watch2");
    watcher.connect();
    watcher.subscribe("telemetry/wills/#", 1);
    Paho dev(a->mqtt_port, "kwill2");
    dev.connect(::mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .will(::mqtt::message("telemetry/wills/kwill2", "gone", 1, false))
                    .finalize());
    ASSERT_FALSE(b.router->process()
                     .wait_for_line(
                         std::regex("MQTT wills: will of 'kwill2' at instance 'A' \\(held\\)"), 10s)
                     .empty());
    ASSERT_EQ(a->router->terminate(), 0);
    ASSERT_FALSE(b.router->process().wait_for_line(std::regex("instance 'A' left"), 10s).empty());
    // Past the instance timeout (2 s) and B's next check: no will.
    EXPECT_FALSE(watcher.receive(3500ms)) << "a will was published after an orderly shutdown";
    EXPECT_FALSE(b.router->process().has_line(std::regex("claiming")));
}

TEST_F(Kafka, ARetainedMessageSetAtAReachesANewSubscriberAtB) {
    Instance a("A", kafka->bootstrap());
    Instance b("B", kafka->bootstrap());
    Paho pub(a.mqtt_port, "kret-a");
    pub.connect();
    ASSERT_EQ(pub.publish("status/door", "open", 1, /*retain=*/true), 0);
    // B follows the retained topic: poll B with new subscribers until the message is there.
    ::mqtt::const_message_ptr got;
    for (int i = 0; i < 50 && !got; ++i) {
        Paho sub(b.mqtt_port, "kret-b" + std::to_string(i));
        sub.connect();
        sub.subscribe("status/#", 1);
        got = sub.receive(200ms);
    }
    ASSERT_TRUE(got) << "B never had A's retained message";
    EXPECT_EQ(got->get_topic(), "status/door");
    EXPECT_EQ(got->to_string(), "open");
    EXPECT_TRUE(got->is_retained());

    // Deleted at B (empty payload): gone at A too.
    Paho del(b.mqtt_port, "kret-del");
    del.connect();
    ASSERT_EQ(del.publish("status/door", "", 1, true), 0);
    bool gone = false;
    for (int i = 0; i < 50 && !gone; ++i) {
        Paho sub(a.mqtt_port, "kret-a" + std::to_string(i));
        sub.connect();
        sub.subscribe("status/#", 1);
        gone = !sub.receive(200ms);
    }
    EXPECT_TRUE(gone);
}

TEST_F(Kafka, RetainedMessagesSurviveARestartAndAreLoadedBeforeClientsConnect) {
    auto a = std::make_unique<Instance>("A", kafka->bootstrap());
    {
        Paho pub(a->mqtt_port, "kret-pub");
        pub.connect();
        ASSERT_EQ(pub.publish("status/fan", "on", 1, true), 0);
        ASSERT_EQ(pub.publish("status/light", "off", 0, true), 0);
        // The QoS 0 one: wait until it is in Kafka before the restart.
        ASSERT_EQ(kcat_wait(kafka->bootstrap(), "trestle.retained", 2).size(), 2u);
    }
    ASSERT_EQ(a->router->terminate(), 0);
    a = std::make_unique<Instance>("A", kafka->bootstrap());
    EXPECT_TRUE(a->router->process().has_line(std::regex("retained messages: 2 loaded")));
    Paho sub(a->mqtt_port, "kret-sub");
    sub.connect();
    sub.subscribe("status/+", 1);
    std::map<std::string, std::string> got;
    for (int i = 0; i < 2; ++i)
        if (auto m = sub.receive(5s)) got[m->get_topic()] = m->to_string();
    EXPECT_EQ(got["status/fan"], "on");
    EXPECT_EQ(got["status/light"], "off");
}

TEST_F(Kafka, AnAmqpRetainedMessageSetAtAReachesANewAmqpReceiverAtB) {
    // Retained messages go to new receivers of multicast addresses (and MQTT filters).
    const std::string mc = "address {\n    prefix: status\n    distribution: multicast\n}\n";
    Instance a("A", kafka->bootstrap(), mc);
    Instance b("B", kafka->bootstrap(), mc);
    AmqpClient ca(a.amqp_url);
    int s = ca.open_sender("");
    ASSERT_TRUE(ca.wait_credit(s, 1));
    proton::message m;
    m.to("status/valve");
    m.body(std::string("closed"));
    m.message_annotations().put(proton::symbol("x-opt-retain-message"), true);
    ASSERT_EQ(ca.wait_outcome(s, ca.send(s, m)).state, transfer::RELEASED)
        << "nobody subscribed yet";
    std::optional<Received> got;
    for (int i = 0; i < 50 && !got; ++i) {
        AmqpClient cb(b.amqp_url);
        LinkConfig acc;
        acc.auto_accept = true;
        int r = cb.open_receiver("status/valve", acc);
        got = cb.receive(r, 200ms);
    }
    ASSERT_TRUE(got) << "B never had A's retained message";
    EXPECT_EQ(body_text(got->message), "closed");
    EXPECT_TRUE(proton::get<bool>(
        got->message.message_annotations().get(proton::symbol("x-opt-retain-message"))));
}

}  // namespace
