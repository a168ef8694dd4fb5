// Direct topic access: the Strimzi AMQP bridge's and Azure Event Hubs' dialects (docs/kafka.md).
#include "kafka_fixture.hpp"

using namespace trestle::test;
using proton::transfer;

namespace {

// --- Direct topic access in the Strimzi AMQP bridge's dialect (docs/kafka.md) ---------------

const std::string strimzi_listener =
    "listener {\n    name: strimzi\n    host: 127.0.0.1\n    port: 0\n    kafkaDialect: "
    "strimzi\n}\n";

proton::value annotation(const proton::message& m, const std::string& key) {
    auto ma = m.message_annotations();
    return ma.exists(proton::symbol(key)) ? ma.get(proton::symbol(key)) : proton::value();
}

TEST_F(Kafka, StrimziSenderProducesRecordsWithItsPartitionKeyAndTopic) {
    kafka->topic("orders", 3);
    kafka->topic("audit.log", 1);
    Instance a("A", kafka->bootstrap(), strimzi_listener);
    AmqpClient c(a.router->url("strimzi"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("orders");
    ASSERT_TRUE(c.wait_credit(s, 1));
    proton::message m1;
    m1.body(proton::binary("o-1"));
    m1.message_annotations().put(proton::symbol("x-opt-bridge.partition"), int32_t(2));
    m1.message_annotations().put(proton::symbol("x-opt-bridge.key"), std::string("cust-7"));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, m1)).state, proton::transfer::ACCEPTED);
    proton::message m2;  // `to` wins over the link's target; '/' becomes '.'
    m2.to("audit/log");
    m2.body(std::string("audited"));
    EXPECT_EQ(c.wait_outcome(s, c.send(s, m2)).state, proton::transfer::ACCEPTED);
    auto orders = kcat_consume(kafka->bootstrap(), "orders");
    ASSERT_EQ(orders.size(), 1u);
    EXPECT_EQ(orders[0].partition, 2);
    EXPECT_EQ(orders[0].key, "cust-7");
    EXPECT_EQ(orders[0].value, "o-1");
    EXPECT_TRUE(orders[0].headers.empty()) << "the Strimzi record is the body alone";
    auto audit = kcat_consume(kafka->bootstrap(), "audit.log");
    ASSERT_EQ(audit.size(), 1u);
    EXPECT_EQ(audit[0].value, "audited");
    // A partition that does not exist: rejected with Strimzi's condition.
    proton::message m3;
    m3.body(proton::binary("x"));
    m3.message_annotations().put(proton::symbol("x-opt-bridge.partition"), int32_t(7));
    Outcome o = c.wait_outcome(s, c.send(s, m3));
    EXPECT_EQ(o.state, proton::transfer::REJECTED);
    EXPECT_EQ(o.condition, "io.strimzi:error-to-kafka") << o.description;
}

TEST_F(Kafka, StrimziReceiverConsumesInItsGroupWithTheBridgeAnnotations) {
    kafka->topic("orders", 3);
    Instance a("A", kafka->bootstrap(), strimzi_listener);
    kcat_produce(kafka->bootstrap(), "orders", "k1", "v1");
    kcat_produce(kafka->bootstrap(), "orders", "k1", "v2");
    AmqpClient c(a.router->url("strimzi"));
    ASSERT_TRUE(c.wait_open());
    LinkConfig accepting;
    accepting.auto_accept = true;
    int r = c.open_receiver("orders/group.id/billing", accepting);
    ASSERT_TRUE(c.wait_link_open(r));
    EXPECT_EQ(c.link_remote_address(r), "orders/group.id/billing");
    for (const char* want : {"v1", "v2"}) {
        auto got = c.receive(r, 15s);
        ASSERT_TRUE(got) << want;
        EXPECT_EQ(std::string(proton::get<proton::binary>(got->message.body())), want);
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-bridge.topic")),
                  "orders");
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-bridge.key")), "k1");
        EXPECT_GE(proton::get<int32_t>(annotation(got->message, "x-opt-bridge.partition")), 0);
        EXPECT_GE(proton::get<int64_t>(annotation(got->message, "x-opt-bridge.offset")), 0);
    }
}

TEST_F(Kafka, StrimziReceiverReadsOnePartitionFromAnOffsetAndBadRequestsGetStrimziErrors) {
    kafka->topic("orders", 3);
    Instance a("A", kafka->bootstrap(), strimzi_listener);
    AmqpClient c(a.router->url("strimzi"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("orders");
    ASSERT_TRUE(c.wait_credit(s, 1));
    for (int i = 0; i < 3; ++i) {
        proton::message m;
        m.body(proton::binary("p1-" + std::to_string(i)));
        m.message_annotations().put(proton::symbol("x-opt-bridge.partition"), int32_t(1));
        ASSERT_EQ(c.wait_outcome(s, c.send(s, m)).state, proton::transfer::ACCEPTED);
    }
    LinkConfig from_offset;
    from_offset.auto_accept = true;
    from_offset.filters = {{"io.strimzi:partition-filter:int", proton::value(int32_t(1))},
                           {"io.strimzi:offset-filter:long", proton::value(int64_t(1))}};
    int r = c.open_receiver("orders/group.id/replayer", from_offset);
    for (const char* want : {"p1-1", "p1-2"}) {
        auto got = c.receive(r, 15s);
        ASSERT_TRUE(got) << want;
        EXPECT_EQ(std::string(proton::get<proton::binary>(got->message.body())), want);
        EXPECT_EQ(proton::get<int32_t>(annotation(got->message, "x-opt-bridge.partition")), 1);
    }

    int no_group = c.open_receiver("orders");
    ASSERT_TRUE(c.wait_link_closed(no_group));
    EXPECT_EQ(c.link_error(no_group), "io.strimzi:no-group-id");
    LinkConfig offset_only;
    offset_only.filters = {{"io.strimzi:offset-filter:long", proton::value(int64_t(5))}};
    int bad = c.open_receiver("orders/group.id/g", offset_only);
    ASSERT_TRUE(c.wait_link_closed(bad));
    EXPECT_EQ(c.link_error(bad), "io.strimzi:no-partition-filter");
    LinkConfig negative;
    negative.filters = {{"io.strimzi:partition-filter:int", proton::value(int32_t(-1))}};
    int neg = c.open_receiver("orders/group.id/g", negative);
    ASSERT_TRUE(c.wait_link_closed(neg));
    EXPECT_EQ(c.link_error(neg), "io.strimzi:wrong-partition-filter");
}

// --- Direct topic access in Azure Event Hubs' dialect (docs/kafka.md) ----------------------

const std::string eventhubs_listener =
    "listener {\n    name: eventhubs\n    host: 127.0.0.1\n    port: 0\n    kafkaDialect: "
    "eventhubs\n}\n";

LinkConfig selector(const std::string& expr) {
    LinkConfig cfg;
    cfg.auto_accept = true;
    cfg.filters = {{"apache.org:selector-filter:string", proton::value(std::string(expr))}};
    return cfg;
}

TEST_F(Kafka, EventHubsPartitionSenderAndPartitionReceiversWithSelectorFilters) {
    kafka->topic("hub1", 2);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    AmqpClient c(a.router->url("eventhubs"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("hub1/Partitions/1");
    ASSERT_TRUE(c.wait_credit(s, 1));
    for (int i = 0; i < 3; ++i) {
        proton::message m;
        m.body(proton::binary("e" + std::to_string(i)));
        m.message_annotations().put(proton::symbol("x-opt-partition-key"), std::string("dev-1"));
        ASSERT_EQ(c.wait_outcome(s, c.send(s, m)).state, proton::transfer::ACCEPTED);
    }
    auto recs = kcat_consume(kafka->bootstrap(), "hub1");
    ASSERT_EQ(recs.size(), 3u);
    for (const auto& r : recs) {
        EXPECT_EQ(r.partition, 1);
        EXPECT_EQ(r.key, "dev-1");
    }

    // After offset 0 (exclusive), with Event Hubs' annotations.
    int r = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/1",
                            selector("amqp.annotation.x-opt-offset > '0'"));
    ASSERT_TRUE(c.wait_link_open(r));
    for (int i = 1; i <= 2; ++i) {
        auto got = c.receive(r, 15s);
        ASSERT_TRUE(got) << i;
        EXPECT_EQ(std::string(proton::get<proton::binary>(got->message.body())),
                  "e" + std::to_string(i));
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-offset")),
                  std::to_string(i));
        EXPECT_EQ(proton::get<int64_t>(annotation(got->message, "x-opt-sequence-number")), i);
        EXPECT_EQ(proton::get<std::string>(annotation(got->message, "x-opt-partition-key")),
                  "dev-1");
        EXPECT_GT(proton::get<proton::timestamp>(annotation(got->message, "x-opt-enqueued-time"))
                      .milliseconds(),
                  0);
    }
    // From the start ('-1'), inclusive of nothing before it: everything.
    int all = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/1",
                              selector("amqp.annotation.x-opt-sequence-number > '-1'"));
    auto first = c.receive(all, 15s);
    ASSERT_TRUE(first);
    EXPECT_EQ(std::string(proton::get<proton::binary>(first->message.body())), "e0");
    // A start time is accepted (the mock cluster cannot look offsets up by time — it answers
    // -1, "nothing at or after", for any time — so where it starts is not checked here).
    int t = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/1",
                            selector("amqp.annotation.x-opt-enqueued-time >= '1700000000000'"));
    EXPECT_TRUE(c.wait_link_open(t));
    EXPECT_FALSE(c.link_closed(t));

    // Errors in Event Hubs' terms.
    int no_partition = c.open_receiver("hub1/ConsumerGroups/$Default");
    ASSERT_TRUE(c.wait_link_closed(no_partition));
    EXPECT_EQ(c.link_error(no_partition), "amqp:not-found");
    int bad = c.open_receiver("hub1/ConsumerGroups/$Default/Partitions/0",
                              selector("amqp.annotation.x-opt-offset < '5'"));
    ASSERT_TRUE(c.wait_link_closed(bad));
    EXPECT_EQ(c.link_error(bad), "com.microsoft:argument-error");
    int bad_target = c.open_sender("hub1/Partitions/x");
    ASSERT_TRUE(c.wait_link_closed(bad_target));
    EXPECT_EQ(c.link_error(bad_target), "com.microsoft:argument-out-of-range");
}

// Event Hubs' request-response nodes, as an Azure SDK uses them before it attaches to a hub:
// a sender to the node, a receiver from it named by the requests' reply-to.
struct NodeClient {
    NodeClient(AmqpClient& c, const std::string& node, const std::string& reply_to)
        : c(c), reply_to(reply_to) {
        LinkConfig rc;
        rc.name = reply_to;
        rc.auto_accept = true;
        receiver = c.open_receiver(node, rc);
        sender = c.open_sender(node);
    }
    // Sends a request naming `to` as its reply-to (empty: none); returns its outcome.
    DeliveryOutcome send(const std::map<std::string, std::string>& props, const std::string& id,
                         const std::string& to) {
        proton::message m;
        m.id(proton::message_id(id));
        if (!to.empty()) m.reply_to(to);
        for (auto& [k, v] : props) m.properties().put(k, v);
        m.body(std::string("SharedAccessSignature sr=x&sig=y"));
        return c.wait_outcome(sender, c.send(sender, m)).state;
    }
    // Sends a request; returns its response (none: a failed assertion).
    std::optional<proton::message> ask(const std::map<std::string, std::string>& props,
                                       const std::string& id) {
        last_outcome = send(props, id, reply_to);
        auto got = c.receive(receiver, 15s);
        if (!got) return std::nullopt;
        return got->message;
    }
    AmqpClient& c;
    std::string reply_to;
    int receiver = -1, sender = -1;
    DeliveryOutcome last_outcome = proton::transfer::NONE;
};

int32_t status_of(const proton::message& m) {
    return proton::get<int32_t>(m.properties().get("status-code"));
}
std::string condition_of(const proton::message& m) {
    proton::value v = m.properties().get("error-condition");
    return v.empty() ? std::string() : std::string(proton::get<proton::symbol>(v));
}

TEST_F(Kafka, EventHubsCbsAndManagementNodesAnswerAsTheServiceDoes) {
    kafka->topic("hub2", 3);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    AmqpClient c(a.router->url("eventhubs"));
    ASSERT_TRUE(c.wait_open());

    // $cbs: a put-token is accepted (202), the answer correlated to the request's message-id.
    NodeClient cbs(c, "$cbs", "cbs-replies");
    auto put = cbs.ask({{"operation", "put-token"},
                        {"type", "servicebus.windows.net:sastoken"},
                        {"name", "amqp://127.0.0.1/hub2"}},
                       "req-1");
    ASSERT_TRUE(put);
    EXPECT_EQ(cbs.last_outcome, transfer::ACCEPTED);
    EXPECT_EQ(proton::get<std::string>(put->correlation_id()), "req-1");
    EXPECT_EQ(status_of(*put), 202);
    auto odd = cbs.ask({{"operation", "delete-token"}}, "req-2");
    ASSERT_TRUE(odd);
    EXPECT_EQ(status_of(*odd), 400);
    EXPECT_EQ(condition_of(*odd), "amqp:not-implemented");
    // Requests that cannot be answered are rejected, not accepted and left unanswered: no
    // reply-to, or a reply-to no receiver of this connection is named or addressed by.
    EXPECT_EQ(cbs.send({{"operation", "put-token"}}, "req-3", ""), transfer::REJECTED);
    EXPECT_EQ(cbs.send({{"operation", "put-token"}}, "req-4", "nobody-listens"),
              transfer::REJECTED);
    AmqpClient other(a.router->url("eventhubs"));  // the same name on another connection
    ASSERT_TRUE(other.wait_open());
    NodeClient elsewhere(other, "$cbs", "elsewhere-replies");
    EXPECT_EQ(elsewhere.send({{"operation", "put-token"}}, "req-5", "cbs-replies"),
              transfer::REJECTED);
    EXPECT_EQ(c.pending(cbs.receiver), 0u);  // nothing crossed over to the first connection

    // $management READ com.microsoft:eventhub: the topic's partitions.
    NodeClient mgmt(c, "$management", "mgmt-replies");
    auto hub = mgmt.ask(
        {{"operation", "READ"}, {"type", "com.microsoft:eventhub"}, {"name", "hub2"}}, "m-1");
    ASSERT_TRUE(hub);
    ASSERT_EQ(status_of(*hub), 200)
        << proton::get<std::string>(hub->properties().get("status-description"));
    EXPECT_EQ(proton::get<std::string>(hub->correlation_id()), "m-1");
    std::map<std::string, proton::value> info;
    proton::get(hub->body(), info);
    EXPECT_EQ(proton::get<std::string>(info["name"]), "hub2");
    EXPECT_EQ(proton::get<int32_t>(info["partition_count"]), 3);
    std::vector<std::string> ids;
    proton::get(info["partition_ids"], ids);
    EXPECT_EQ(ids, (std::vector<std::string>{"0", "1", "2"}));

    // READ com.microsoft:partition, before and after two events in partition 2.
    auto partition = [&](const std::string& n, const std::string& id) {
        return mgmt.ask({{"operation", "READ"},
                         {"type", "com.microsoft:partition"},
                         {"name", "hub2"},
                         {"partition", n}},
                        id);
    };
    auto empty = partition("2", "m-2");
    ASSERT_TRUE(empty);
    ASSERT_EQ(status_of(*empty), 200);
    proton::get(empty->body(), info);
    EXPECT_TRUE(proton::get<bool>(info["is_partition_empty"]));
    EXPECT_EQ(proton::get<int64_t>(info["last_enqueued_sequence_number"]), -1);
    int s = c.open_sender("hub2/Partitions/2");
    ASSERT_TRUE(c.wait_credit(s, 1));
    for (int i = 0; i < 2; ++i) {
        proton::message m;
        m.body(proton::binary("e" + std::to_string(i)));
        ASSERT_EQ(c.wait_outcome(s, c.send(s, m)).state, transfer::ACCEPTED);
    }
    auto two = partition("2", "m-3");
    ASSERT_TRUE(two);
    ASSERT_EQ(status_of(*two), 200);
    proton::get(two->body(), info);
    EXPECT_FALSE(proton::get<bool>(info["is_partition_empty"]));
    EXPECT_EQ(proton::get<std::string>(info["partition"]), "2");
    EXPECT_EQ(proton::get<int64_t>(info["begin_sequence_number"]), 0);
    EXPECT_EQ(proton::get<int64_t>(info["last_enqueued_sequence_number"]), 1);
    EXPECT_EQ(proton::get<std::string>(info["last_enqueued_offset"]), "1");
    // The last record's own timestamp (read back from Kafka), not a placeholder.
    EXPECT_GT(proton::get<proton::timestamp>(info["last_enqueued_time_utc"]).milliseconds(),
              1700000000000);

    // Errors in the service's terms.
    auto none = partition("7", "m-4");
    ASSERT_TRUE(none);
    EXPECT_EQ(status_of(*none), 404);
    EXPECT_EQ(condition_of(*none), "com.microsoft:messaging-entity-not-found");
    auto nan = partition("x", "m-5");
    ASSERT_TRUE(nan);
    EXPECT_EQ(status_of(*nan), 400);
    EXPECT_EQ(condition_of(*nan), "com.microsoft:argument-error");
    auto unnamed = mgmt.ask({{"operation", "READ"}, {"type", "com.microsoft:eventhub"}}, "m-6");
    ASSERT_TRUE(unnamed);
    EXPECT_EQ(status_of(*unnamed), 400);
}

TEST_F(Kafka, EventHubsListenerAdvertisesAndEnforcesItsMaxMessageSize) {
    kafka->topic("hub3", 1);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    AmqpClient c(a.router->url("eventhubs"));
    ASSERT_TRUE(c.wait_open());
    int s = c.open_sender("hub3");
    ASSERT_TRUE(c.wait_credit(s, 1));
    // (The advertised max-message-size is checked by the SDK test: Proton C++ 0.37 cannot read
    // it, the SDK sizes its batches by it.)
    proton::message big;
    big.body(proton::binary(std::string(1100000, 'x')));
    c.send(s, big);
    ASSERT_TRUE(c.wait_link_closed(s));
    EXPECT_EQ(c.link_error(s), "amqp:link:message-size-exceeded");
    // The connection and other links go on; a message within the limit lands.
    int s2 = c.open_sender("hub3");
    ASSERT_TRUE(c.wait_credit(s2, 1));
    proton::message ok;
    ok.body(proton::binary(std::string(1000, 'y')));
    ASSERT_EQ(c.wait_outcome(s2, c.send(s2, ok)).state, transfer::ACCEPTED);
    auto recs = kcat_consume(kafka->bootstrap(), "hub3");
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].value.size(), 1000u);
    // A will link ($lwt) too: its message is not buffered either.
    LinkConfig will_cfg;
    will_cfg.name = "client-with-a-big-will";
    int w = c.open_sender("$lwt", will_cfg);
    ASSERT_TRUE(c.wait_credit(w, 1));
    proton::message will;
    will.to("status/client");
    will.body(proton::binary(std::string(1100000, 'w')));
    c.send(w, will);
    ASSERT_TRUE(c.wait_link_closed(w));
    EXPECT_EQ(c.link_error(w), "amqp:link:message-size-exceeded");
}

// The real Azure SDK (@azure/event-hubs from npm, pinned in tests/integration/node): $cbs,
// $management, batches (one transfer, one record per event), properties, receiving.
TEST_F(Kafka, AzureEventHubsSdkSendsReadsPropertiesAndReceives) {
    ASSERT_TRUE(std::string(NODE_PATH).size() > 0) << "node not found at configure time";
    ASSERT_EQ(
        ::access((std::string(NODE_TESTS_DIR) + "/node_modules/@azure/event-hubs").c_str(), F_OK),
        0)
        << "run `npm ci` in " << NODE_TESTS_DIR << " (scripts/test.sh does)";
    kafka->topic("hub4", 3);
    Instance a("A", kafka->bootstrap(), eventhubs_listener);
    std::string out;
    int rc = run_command({NODE_PATH, std::string(NODE_TESTS_DIR) + "/eventhubs_sdk.js",
                          std::to_string(a.router->port("eventhubs")), "hub4"},
                         &out, 90s);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
    // What Kafka holds, read independently of Trestle.
    auto recs = kcat_consume(kafka->bootstrap(), "hub4");
    std::vector<Record> p1, keyed;
    for (const auto& r : recs) {
        if (r.partition == 1 && r.key.empty()) p1.push_back(r);
        if (r.key == "dev-7") keyed.push_back(r);
    }
    ASSERT_EQ(p1.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(p1[i].value, "ev-" + std::to_string(i));
        EXPECT_EQ(p1[i].headers["n"], std::to_string(i));
        EXPECT_EQ(p1[i].headers["kind"], "sdk");
    }
    ASSERT_EQ(keyed.size(), 2u);
    EXPECT_EQ(keyed[0].value, "k-0");
    EXPECT_EQ(keyed[1].value, "k-1");
    EXPECT_EQ(keyed[0].partition, keyed[1].partition);  // one key, one partition
}

}  // namespace
