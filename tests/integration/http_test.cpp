// The HTTP listener against a live router: /healthz, /readyz following Kafka's brokers (the
// mock cluster in its own process, brokers taken down and brought back), /metrics counters
// matching the AMQP, MQTT and Kafka traffic sent, and HTTP-level errors.
#include <gtest/gtest.h>

#include <proton/message.hpp>

#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "amqp_client.hpp"
#include "kafka_helpers.hpp"
#include "mqtt_helpers.hpp"
#include "raw_socket.hpp"
#include "router_process.hpp"

using namespace trestle::test;

namespace {

struct HttpReply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    bool closed = false;
};

// Parses one response from `raw` (the whole of it, as read until the server closed).
HttpReply parse_reply(const std::string& raw) {
    HttpReply r;
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string::npos) return r;
    std::istringstream head(raw.substr(0, end));
    std::string line;
    std::getline(head, line);
    std::smatch m;
    if (std::regex_search(line, m, std::regex("^HTTP/1\\.[01] (\\d{3})")))
        r.status = std::stoi(m[1]);
    while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    r.body = raw.substr(end + 4);
    return r;
}

HttpReply request(int port, const std::string& bytes) {
    RawSocket s(port);
    s.write(bytes);
    bool closed = false;
    std::string raw = s.read_until_closed(5s, &closed);
    HttpReply r = parse_reply(raw);
    r.closed = closed;
    return r;
}

HttpReply get(int port, const std::string& path) {
    return request(port,
                   "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

// The value of one sample ("name{labels}") in a Prometheus text page; -1 if absent.
double sample(const std::string& page, const std::string& series) {
    std::istringstream in(page);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

std::string config(const std::string& extra = "", const std::string& http_extra = "") {
    return "router {\n    id: http-router\n}\n"
           "listener {\n    name: amqp\n    host: 127.0.0.1\n    port: 0\n}\n"
           "mqttListener {\n    name: mqtt\n    host: 127.0.0.1\n    port: 0\n}\n"
           "httpListener {\n    name: http\n    host: 127.0.0.1\n    port: 0\n" +
           http_extra +
           "}\n"
           "address {\n    prefix: multicast\n    distribution: multicast\n}\n" +
           extra;
}

TEST(Http, HealthzAndReadyzAnswerOnARouterWithoutKafka) {
    RouterProcess router(config());
    int port = router.port("http");
    HttpReply h = get(port, "/healthz");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.body, "ok\n");
    HttpReply r = get(port, "/readyz");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_NE(r.body.find("\"ready\""), std::string::npos) << r.body;
    HttpReply m = get(port, "/metrics");
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(sample(m.body, "trestle_ready"), 1) << m.body;
    EXPECT_EQ(sample(m.body, "trestle_info{router_id=\"http-router\",version=\"0.1.0\"}"), 1)
        << m.body;
    EXPECT_EQ(m.body.find("trestle_kafka_up"), std::string::npos) << "no Kafka, no Kafka series";
}

TEST(Http, MetricsCountTheAmqpAndMqttTrafficSent) {
    RouterProcess router(config());
    int port = router.port("http");

    AmqpClient amqp(router.url("amqp"));
    LinkConfig acc;
    acc.auto_accept = true;
    int rcv = amqp.open_receiver("orders", acc);
    ASSERT_TRUE(amqp.wait_link_open(rcv));
    int snd = amqp.open_sender("orders");
    ASSERT_TRUE(amqp.wait_credit(snd, 1));
    for (int i = 0; i < 5; ++i) {
        int d = amqp.send(snd, proton::message("order " + std::to_string(i)));
        ASSERT_EQ(amqp.wait_outcome(snd, d).state, proton::transfer::ACCEPTED);
    }
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(amqp.receive(rcv));
    int none = amqp.open_sender("multicast/nobody");
    ASSERT_TRUE(amqp.wait_link_open(none));

    Paho sub(router.port("mqtt"), "metrics-sub");
    sub.connect();
    sub.subscribe("sensors/#", 1);
    Paho pub(router.port("mqtt"), "metrics-pub");
    pub.connect();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(pub.publish("sensors/t1", "v" + std::to_string(i), 1), 0);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sub.receive());

    std::string page;
    // MQTT subscribers' acknowledgements settle asynchronously: wait for the counts to land.
    ASSERT_TRUE(poll_until([&] {
        page = get(port, "/metrics").body;
        return sample(page, "trestle_deliveries_ingress_total") == 8 &&
               sample(page, "trestle_deliveries_egress_total") == 8;
    })) << page;
    EXPECT_EQ(sample(page, "qdr_deliveries_ingress_total"), 8) << "qdrouterd's names too: " << page;
    EXPECT_EQ(sample(page, "qdr_connections_total"), 3) << page;
    EXPECT_EQ(sample(page, "trestle_deliveries_stuck"), 0) << page;
    EXPECT_EQ(sample(page, "trestle_address_deliveries_ingress_total{address=\"orders\"}"), 5)
        << page;
    EXPECT_EQ(sample(page, "trestle_address_deliveries_egress_total{address=\"orders\"}"), 5)
        << page;
    EXPECT_EQ(sample(page, "trestle_address_consumers{address=\"orders\"}"), 1) << page;
    EXPECT_EQ(sample(page, "trestle_address_producers{address=\"orders\"}"), 1) << page;
    EXPECT_EQ(sample(page, "trestle_address_producers{address=\"multicast/nobody\"}"), 1) << page;
    EXPECT_GE(sample(page, "trestle_deliveries_settled_total{outcome=\"accepted\"}"), 5) << page;
    EXPECT_EQ(sample(page, "trestle_connections{protocol=\"amqp\"}"), 1) << page;
    EXPECT_EQ(sample(page, "trestle_connections{protocol=\"mqtt\"}"), 2) << page;
    EXPECT_EQ(sample(page, "trestle_listener_connections{listener=\"amqp\",protocol=\"amqp\"}"), 1)
        << page;
    EXPECT_EQ(sample(page, "trestle_listener_connections{listener=\"mqtt\",protocol=\"mqtt\"}"), 2)
        << page;
    EXPECT_EQ(sample(page, "trestle_listener_up{listener=\"mqtt\",protocol=\"mqtt\"}"), 1) << page;
    EXPECT_EQ(sample(page, "trestle_mqtt_sessions{state=\"connected\"}"), 2) << page;

    ASSERT_EQ(pub.publish("sensors/last", "r", 1, true), 0);
    ASSERT_TRUE(poll_until([&] {
        page = get(port, "/metrics").body;
        return sample(page, "trestle_retained_messages") == 1;
    })) << page;
}

TEST(Http, MetricsBoundThePerAddressSeries) {
    RouterProcess router(config("", "    metricsMaxAddresses: 2\n"));
    int port = router.port("http");
    AmqpClient amqp(router.url("amqp"));
    for (const char* a : {"q1", "q2", "q3", "q4"})
        ASSERT_TRUE(amqp.wait_link_open(amqp.open_receiver(a)));
    std::string page = get(port, "/metrics").body;
    std::regex series("\ntrestle_address_consumers\\{");
    auto n = std::distance(std::sregex_iterator(page.begin(), page.end(), series),
                           std::sregex_iterator());
    EXPECT_EQ(n, 2) << page;
    // q1..q4 and $management: three left out.
    EXPECT_EQ(sample(page, "trestle_address_series_omitted"), 3) << page;
}

TEST(Http, BadRequestsGetSpecificStatusCodes) {
    RouterProcess router(config());
    int port = router.port("http");
    EXPECT_EQ(get(port, "/nothing-here").status, 404);
    HttpReply post = request(
        port,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(post.headers["allow"], "GET, HEAD");
    HttpReply body =
        request(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_EQ(body.status, 400) << "requests carry no body";
    EXPECT_TRUE(body.closed);
    HttpReply garbage = request(port, "this is not HTTP\r\n\r\n");
    EXPECT_EQ(garbage.status, 400);
    EXPECT_TRUE(garbage.closed);
    HttpReply huge =
        request(port, "GET /" + std::string(10000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(huge.status, 431);
    HttpReply head =
        request(port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.headers["content-length"], "3");
    EXPECT_EQ(head.body, "");

    // Keep-alive: two requests on one connection, both answered.
    RawSocket s(port);
    s.write(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: "
        "close\r\n\r\n");
    bool closed = false;
    std::string raw = s.read_until_closed(5s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_NE(raw.find("ok\n"), std::string::npos) << raw;
    EXPECT_NE(raw.find("\"ready\""), std::string::npos) << raw;

    // The router still serves.
    EXPECT_EQ(get(port, "/healthz").status, 200);
}

TEST(Http, ReadyzTurns503WhileKafkasBrokersAreDownAnd200WhenTheyReturn) {
    KafkaMock kafka;
    kafka.topic("telemetry", 2);
    RouterProcess router(config(kafka_section(kafka.bootstrap()) +
                                "kafkaRoute {\n    name: telemetry\n    pattern: telemetry/#\n"
                                "    topic: telemetry\n}\n"));
    int port = router.port("http");
    ASSERT_TRUE(poll_until([&] { return get(port, "/readyz").status == 200; }))
        << get(port, "/readyz").body;

    // Traffic through Kafka shows in the Kafka series.
    Paho pub(router.port("mqtt"), "kafka-pub");
    pub.connect();
    for (int i = 0; i < 4; ++i)
        ASSERT_EQ(pub.publish("telemetry/dev1", "t" + std::to_string(i), 1), 0);
    std::string page = get(port, "/metrics").body;
    EXPECT_EQ(sample(page, "trestle_kafka_produced_total{route=\"telemetry\",topic=\"telemetry\"}"),
              4)
        << page;
    EXPECT_EQ(sample(page, "trestle_kafka_produce_latency_seconds_count"), 4) << page;
    EXPECT_EQ(sample(page, "trestle_kafka_up"), 1) << page;
    pub.disconnect();

    kafka.command("down 1");
    // The probe says when it found no broker; /readyz must say so from then on.
    ASSERT_FALSE(
        router.process().wait_for_line(std::regex("kafka: no broker answers"), 20s).empty());
    HttpReply r = get(port, "/readyz");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_NE(r.body.find("\"not ready\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("no broker answers"), std::string::npos) << r.body;
    EXPECT_EQ(get(port, "/healthz").status, 200) << "alive while Kafka is away";
    page = get(port, "/metrics").body;
    EXPECT_EQ(sample(page, "trestle_kafka_up"), 0) << page;
    EXPECT_EQ(sample(page, "trestle_ready"), 0) << page;

    kafka.command("up 1");
    ASSERT_FALSE(
        router.process().wait_for_line(std::regex("kafka: brokers answer again"), 30s).empty());
    r = get(port, "/readyz");
    EXPECT_EQ(r.status, 200) << r.body;
}

TEST(Http, ConsumerLagCountsRecordsNotYetSettledAndFallsToZeroOnceConsumed) {
    KafkaMock kafka;
    kafka.topic("jobs", 2);
    RouterProcess router(
        config(kafka_section(kafka.bootstrap()) +
               "address {\n    prefix: jobs\n    distribution: balanced\n}\n"
               "kafkaRoute {\n    name: jobs\n    prefix: jobs\n    topic: jobs\n}\n"));
    int port = router.port("http");
    ASSERT_FALSE(router.process()
                     .wait_for_line(std::regex("kafkaRoute 'jobs': assigned topic"), 20s)
                     .empty());
    for (int i = 0; i < 5; ++i)
        kcat_produce(kafka.bootstrap(), "jobs", "jobs", "job " + std::to_string(i));

    // Nobody consumes: the five records are lag, in /metrics and in trestle-stat --kafka.
    auto total_lag = [&](const std::string& page) {
        double sum = 0;
        std::istringstream in(page);
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("trestle_kafka_consumer_lag{route=\"jobs\"", 0) == 0)
                sum += std::stod(line.substr(line.rfind(' ') + 1));
        return sum;
    };
    std::string page;
    ASSERT_TRUE(poll_until([&] {
        page = get(port, "/metrics").body;
        return total_lag(page) == 5;
    })) << page;
    std::string out;
    ASSERT_EQ(run_command({TRESTLE_STAT_PATH, "-b", router.url("amqp"), "--kafka", "--csv"}, &out),
              0)
        << out;
    EXPECT_NE(out.find("\"jobs\",\"jobs\",\"jobs\",\"both\""), std::string::npos) << out;
    EXPECT_TRUE(std::regex_search(out, std::regex("\"jobs\",\"jobs\",\"both\",.*\"5\"\n")))
        << "route lag 5: " << out;
    EXPECT_NE(out.find("Consumer Partitions"), std::string::npos) << out;

    AmqpClient amqp(router.url("amqp"));
    LinkConfig acc;
    acc.auto_accept = true;
    int r = amqp.open_receiver("jobs", acc);
    ASSERT_TRUE(amqp.wait_link_open(r));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(amqp.receive(r, 20s)) << i;
    ASSERT_TRUE(poll_until([&] {
        page = get(port, "/metrics").body;
        return total_lag(page) == 0 &&
               sample(page, "trestle_kafka_consumed_total{route=\"jobs\",topic=\"jobs\"}") == 5;
    })) << page;
}

}  // namespace
