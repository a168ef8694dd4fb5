// The management plane against a live router: trestle-stat and trestle-manage (over
// $management) with AMQP and MQTT traffic, runtime CREATE/DELETE/UPDATE taking effect.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <proton/message.hpp>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>

#include "amqp_client.hpp"
#include "mqtt_helpers.hpp"
#include "router_process.hpp"

using namespace trestle::test;

namespace {

const char* kConfig = R"(
router {
    id: mgmt-router
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
}
)";

struct ToolRun {
    int status = -1;
    std::string out;
};

ToolRun tool(const char* path, std::vector<std::string> args) {
    args.insert(args.begin(), path);
    ToolRun r;
    r.status = run_command(args, &r.out);
    return r;
}

// Cells of one --csv line ("a","b",,"c"): empty cells stay empty.
std::vector<std::string> csv_cells(const std::string& line) {
    std::vector<std::string> v;
    std::string cur;
    bool quoted = false;
    for (char c : line) {
        if (c == '"')
            quoted = !quoted;
        else if (c == ',' && !quoted) {
            v.push_back(cur);
            cur.clear();
        } else
            cur += c;
    }
    v.push_back(cur);
    return v;
}

// A --csv table: the header line (the first one with quoted cells) and the rows after it.
struct Csv {
    std::vector<std::string> heads;
    std::vector<std::vector<std::string>> rows;
    // The first row whose cells include every needle.
    std::map<std::string, std::string> row_with(const std::vector<std::string>& needles) const {
        for (const auto& r : rows) {
            bool all = true;
            for (const auto& n : needles) all &= std::find(r.begin(), r.end(), n) != r.end();
            if (!all) continue;
            std::map<std::string, std::string> m;
            for (size_t i = 0; i < heads.size() && i < r.size(); ++i) m[heads[i]] = r[i];
            return m;
        }
        return {};
    }
};

Csv parse_csv(const std::string& out) {
    Csv t;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] != '"') continue;
        if (t.heads.empty())
            t.heads = csv_cells(line);
        else
            t.rows.push_back(csv_cells(line));
    }
    return t;
}

bool can_connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

class Management : public ::testing::Test {
  protected:
    void SetUp() override {
        router = std::make_unique<RouterProcess>(kConfig);
        url = router->url("amqp");
        mqtt_port = router->port("mqtt");
    }
    ToolRun stat(std::vector<std::string> a) {
        a.insert(a.begin(), {"-b", url});
        return tool(TRESTLE_STAT_PATH, a);
    }
    ToolRun manage(std::vector<std::string> a) {
        a.insert(a.begin(), {"-b", url});
        return tool(TRESTLE_MANAGE_PATH, a);
    }
    std::unique_ptr<RouterProcess> router;
    std::string url;
    int mqtt_port = 0;
};

TEST_F(Management, TrestleStatShowsTheConnectionsLinksAndAddressesOfLiveTraffic) {
    AmqpClient::Options opts;
    opts.container_id = "stat-amqp-client";
    AmqpClient amqp(url, opts);
    LinkConfig acc;
    acc.auto_accept = true;
    int r = amqp.open_receiver("orders", acc);
    ASSERT_TRUE(amqp.wait_link_open(r));
    int s = amqp.open_sender("orders");
    ASSERT_TRUE(amqp.wait_credit(s, 1));
    for (int i = 0; i < 3; ++i) {
        int d = amqp.send(s, proton::message("order " + std::to_string(i)));
        ASSERT_EQ(amqp.wait_outcome(s, d).state, proton::transfer::ACCEPTED);
    }
    Paho mq(mqtt_port, "stat-mqtt-client");
    mq.connect();
    mq.subscribe("sensors/#", 1);
    ASSERT_EQ(mq.publish("sensors/t1", "20", 1), 0);
    ASSERT_TRUE(mq.receive());

    ToolRun c = stat({"-c", "--csv"});
    ASSERT_EQ(c.status, 0) << c.out;
    EXPECT_NE(c.out.find("mgmt-router"), std::string::npos) << "the header names the router";
    Csv conns = parse_csv(c.out);
    auto amqp_row = conns.row_with({"stat-amqp-client"});
    ASSERT_FALSE(amqp_row.empty()) << c.out;
    EXPECT_EQ(amqp_row["proto"], "amqp");
    EXPECT_EQ(amqp_row["dir"], "in");
    EXPECT_EQ(amqp_row["security"], "no-security");
    auto mqtt_row = conns.row_with({"stat-mqtt-client"});
    ASSERT_FALSE(mqtt_row.empty()) << c.out;
    EXPECT_EQ(mqtt_row["proto"], "mqtt");

    ToolRun l = stat({"-l", "--csv"});
    ASSERT_EQ(l.status, 0) << l.out;
    Csv links = parse_csv(l.out);
    auto out_link = links.row_with({"out", "orders"});
    ASSERT_FALSE(out_link.empty()) << l.out;
    EXPECT_EQ(out_link["class"], "mobile");
    EXPECT_EQ(out_link["deliv"], "3") << l.out;
    EXPECT_EQ(out_link["acc"], "3") << l.out;
    EXPECT_EQ(out_link["conn id"], amqp_row["id"]) << "the link belongs to the AMQP connection";
    auto in_link = links.row_with({"in", "orders"});
    ASSERT_FALSE(in_link.empty()) << l.out;
    EXPECT_EQ(in_link["deliv"], "3") << l.out;
    EXPECT_EQ(in_link["cap"], "250");

    ToolRun a = stat({"-a", "--csv"});
    ASSERT_EQ(a.status, 0) << a.out;
    Csv addrs = parse_csv(a.out);
    auto orders = addrs.row_with({"mobile", "orders"});
    ASSERT_FALSE(orders.empty()) << a.out;
    EXPECT_EQ(orders["in"], "3") << a.out;
    EXPECT_EQ(orders["out"], "3") << a.out;
    EXPECT_EQ(orders["distrib"], "balanced") << a.out;
    EXPECT_EQ(orders["local"], "1") << a.out;
    EXPECT_FALSE(addrs.row_with({"local", "$management"}).empty()) << a.out;

    ToolRun table = stat({"-a"});
    ASSERT_EQ(table.status, 0);
    EXPECT_TRUE(std::regex_search(
        table.out,
        std::regex(
            "\n  class +addr +phs +distrib +pri +local +remote +in +out +thru +fallback\n  =+\n")))
        << "qdstat's layout: " << table.out;

    ToolRun g = stat({"-g"});
    ASSERT_EQ(g.status, 0) << g.out;
    EXPECT_TRUE(std::regex_search(g.out, std::regex("Router Id\\s+mgmt-router"))) << g.out;
    EXPECT_TRUE(std::regex_search(g.out, std::regex("Mode\\s+standalone"))) << g.out;
    EXPECT_TRUE(std::regex_search(g.out, std::regex("Accepted Count\\s+[1-9]"))) << g.out;

    ToolRun m = stat({"--mqtt", "--csv"});
    ASSERT_EQ(m.status, 0) << m.out;
    auto sess = parse_csv(m.out).row_with({"stat-mqtt-client"});
    ASSERT_FALSE(sess.empty()) << m.out;
    EXPECT_EQ(sess["connected"], "yes");
    EXPECT_EQ(sess["proto"], "5");
    EXPECT_EQ(sess["subscriptions"], "sensors/#(1)");
}

TEST_F(Management, CreatingAnAddressChangesHowTheNextMessagesAreDistributed) {
    AmqpClient amqp(url);
    LinkConfig acc;
    acc.auto_accept = true;
    int r1 = amqp.open_receiver("news/today", acc);
    int r2 = amqp.open_receiver("news/today", acc);
    ASSERT_TRUE(amqp.wait_link_open(r1));
    ASSERT_TRUE(amqp.wait_link_open(r2));
    int s = amqp.open_sender("news/today");
    ASSERT_TRUE(amqp.wait_credit(s, 1));
    int d = amqp.send(s, proton::message("before"));
    ASSERT_EQ(amqp.wait_outcome(s, d).state, proton::transfer::ACCEPTED);
    EXPECT_EQ(amqp.pending(r1) + amqp.pending(r2), 1u) << "balanced by default: one copy";

    ToolRun c = manage(
        {"create", "--type=address", "--name=news", "prefix=news", "distribution=multicast"});
    ASSERT_EQ(c.status, 0) << c.out;
    EXPECT_NE(c.out.find("\"distribution\": \"multicast\""), std::string::npos) << c.out;
    d = amqp.send(s, proton::message("after"));
    ASSERT_EQ(amqp.wait_outcome(s, d).state, proton::transfer::ACCEPTED);
    // Each receiver gets 'after' (one of them also holds 'before').
    size_t total = 0;
    for (int link : {r1, r2})
        while (auto m = amqp.receive(link, total < 3 ? 5s : 200ms)) ++total;
    EXPECT_EQ(total, 3u) << "multicast after CREATE: both receivers got 'after'";

    ToolRun q = manage({"query", "--type=address"});
    ASSERT_EQ(q.status, 0);
    EXPECT_NE(q.out.find("\"prefix\": \"news\""), std::string::npos) << q.out;
    ToolRun del = manage({"delete", "--type=address", "--name=news"});
    EXPECT_EQ(del.status, 0) << del.out;
    ToolRun q2 = manage({"read", "--type=address", "--name=news"});
    EXPECT_EQ(q2.status, 1);
    EXPECT_NE(q2.out.find("Status 404"), std::string::npos) << q2.out;
}

TEST_F(Management, ListenersCreatedAndDeletedAtRuntimeOpenAndCloseTheirPorts) {
    ToolRun c = manage({"create", "--type=listener", "--name=extra", "host=127.0.0.1", "port=0"});
    ASSERT_EQ(c.status, 0) << c.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(c.out, m, std::regex("\"boundPort\": (\\d+)"))) << c.out;
    int port = std::stoi(m[1]);
    AmqpClient extra("127.0.0.1:" + std::to_string(port));
    ASSERT_TRUE(extra.wait_open()) << "the new listener accepts AMQP";

    ToolRun d = manage({"delete", "--type=listener", "--name=extra"});
    ASSERT_EQ(d.status, 0) << d.out;
    EXPECT_FALSE(can_connect(port)) << "deleted listener's port is closed";
    EXPECT_FALSE(extra.is_closed()) << "connections it accepted stay open";

    ToolRun mq =
        manage({"create", "--type=mqttListener", "--name=mqtt2", "host=127.0.0.1", "port=0"});
    ASSERT_EQ(mq.status, 0) << mq.out;
    ASSERT_TRUE(std::regex_search(mq.out, m, std::regex("\"boundPort\": (\\d+)"))) << mq.out;
    Paho client(std::stoi(m[1]), "via-new-listener");
    EXPECT_NO_THROW(client.connect());
    ToolRun dup = manage({"create", "--type=listener", "--name=amqp", "host=127.0.0.1", "port=0"});
    EXPECT_EQ(dup.status, 1);
    EXPECT_NE(dup.out.find("Status 400"), std::string::npos) << dup.out;
}

TEST_F(Management, UpdatingAConnectionsAdminStatusToDeletedClosesIt) {
    AmqpClient::Options opts;
    opts.container_id = "doomed-client";
    AmqpClient victim(url, opts);
    ASSERT_TRUE(victim.wait_open());
    ToolRun q = manage({"query", "--type=connection", "identity", "container"});
    ASSERT_EQ(q.status, 0) << q.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        q.out, m, std::regex("\"identity\": \"(\\d+)\",\\s*\"container\": \"doomed-client\"")))
        << q.out;
    ToolRun u =
        manage({"update", "--type=connection", "--identity=" + m[1].str(), "adminStatus=deleted"});
    ASSERT_EQ(u.status, 0) << u.out;
    ASSERT_TRUE(victim.wait_closed());
    EXPECT_NE(victim.error().find("amqp:connection:forced"), std::string::npos) << victim.error();
}

TEST_F(Management, ErrorsComeBackWithStatusCodesAndDescriptions) {
    ToolRun bogus = manage({"query", "--type=bogus"});
    EXPECT_EQ(bogus.status, 1);
    EXPECT_NE(bogus.out.find("Status 400: No such entity type 'org.apache.qpid.dispatch.bogus'"),
              std::string::npos)
        << bogus.out;
    ToolRun attr = manage({"query", "--type=router", "nosuchattr"});
    EXPECT_NE(attr.out.find("Status 400: Unknown attribute 'nosuchattr'"), std::string::npos)
        << attr.out;
    ToolRun missing = manage({"read", "--type=listener", "--name=nope"});
    EXPECT_NE(missing.out.find("Status 404"), std::string::npos) << missing.out;
    ToolRun bad =
        manage({"create", "--type=address", "--name=b", "prefix=b", "distribution=sideways"});
    EXPECT_NE(bad.out.find("Status 400"), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find("sideways"), std::string::npos) << bad.out;
    ToolRun op = manage({"create", "--type=connection", "--name=c"});
    EXPECT_NE(op.out.find("Status 501"), std::string::npos) << op.out;
    ToolRun unreachable =
        tool(TRESTLE_STAT_PATH, {"-b", "127.0.0.1:" + std::to_string(free_port()), "-g"});
    EXPECT_EQ(unreachable.status, 1);
    EXPECT_NE(unreachable.out.find("failed"), std::string::npos) << unreachable.out;
}

TEST_F(Management, LogLevelsChangeAtRuntimeAndGetLogReturnsRecentLines) {
    ToolRun q = manage({"query", "--type=log"});
    ASSERT_EQ(q.status, 0) << q.out;
    EXPECT_NE(q.out.find("\"module\": \"DEFAULT\""), std::string::npos) << q.out;
    ToolRun u = manage({"update", "--type=log", "--name=log/DEFAULT", "enable=trace+"});
    ASSERT_EQ(u.status, 0) << u.out;
    EXPECT_NE(u.out.find("\"enable\": \"trace+\""), std::string::npos) << u.out;
    ToolRun log = stat({"--log", "--limit", "50"});
    ASSERT_EQ(log.status, 0) << log.out;
    EXPECT_NE(log.out.find("log level of DEFAULT set to trace+"), std::string::npos) << log.out;
    ToolRun bad = manage({"update", "--type=log", "--name=log/DEFAULT", "enable=loud"});
    EXPECT_NE(bad.out.find("Status 400"), std::string::npos) << bad.out;
    ToolRun nomod = manage({"update", "--type=log", "--name=log/NOSUCH", "enable=info+"});
    EXPECT_NE(nomod.out.find("Status 404"), std::string::npos) << nomod.out;
}

TEST_F(Management, EachLogModuleHasItsOwnLevel) {
    // The tests' routers log at debug: DEFAULT to info+ first (every module follows it).
    ASSERT_EQ(manage({"update", "--type=log", "--name=log/DEFAULT", "enable=info+"}).status, 0);
    ToolRun u = manage({"update", "--type=log", "--name=log/AMQP", "enable=debug+"});
    ASSERT_EQ(u.status, 0) << u.out;
    ToolRun q = manage({"query", "--type=log"});
    ASSERT_EQ(q.status, 0) << q.out;
    for (const char* m :
         {"DEFAULT", "ROUTER", "AMQP", "MQTT", "KAFKA", "MANAGEMENT", "HTTP", "SECURITY"})
        EXPECT_NE(q.out.find(std::string("\"module\": \"") + m + "\""), std::string::npos)
            << m << q.out;

    // AMQP's debug lines appear; MQTT's stay at DEFAULT's info.
    AmqpClient amqp(url);
    ASSERT_TRUE(amqp.wait_link_open(amqp.open_receiver("debug-visible")));
    EXPECT_FALSE(router->process()
                     .wait_for_line(std::regex(
                         "debug AMQP \\[C\\d+\\] link '[^']*' attached \\(.*'debug-visible'\\)"))
                     .empty())
        << router->process().output();
    {
        Paho mq(mqtt_port, "quiet-mqtt");
        mq.connect();
        mq.disconnect();
    }
    ASSERT_FALSE(router->process()
                     .wait_for_line(std::regex(
                         "info  MQTT \\[M\\d+\\] MQTT connection \\(client 'quiet-mqtt'\\) closed"))
                     .empty())
        << router->process().output();
    EXPECT_FALSE(router->process().has_line(std::regex("DISCONNECT from client 'quiet-mqtt'")))
        << "MQTT debug lines stay off: " << router->process().output();

    // Lowering DEFAULT leaves AMQP's own level alone.
    ASSERT_EQ(manage({"update", "--type=log", "--name=log/DEFAULT", "enable=warning+"}).status, 0);
    ToolRun q2 = manage({"read", "--type=log", "--name=log/AMQP"});
    EXPECT_NE(q2.out.find("\"enable\": \"debug+\""), std::string::npos) << q2.out;
}

}  // namespace

namespace {

TEST_F(Management, DeletingAnMqttSessionEndsItConnectedOrNot) {
    {
        Paho offline(mqtt_port, "kept-offline");
        offline.connect(false, 60, 3600);
        offline.subscribe("alerts/#", 1);
        offline.disconnect();
    }
    Paho online(mqtt_port, "kept-online");
    online.connect(false, 60, 3600);
    online.subscribe("alerts/#", 1);

    ToolRun q = manage({"query", "--type=mqttSession", "clientId"});
    ASSERT_NE(q.out.find("kept-offline"), std::string::npos) << q.out << router->process().output();
    ASSERT_NE(q.out.find("kept-online"), std::string::npos) << q.out;

    ToolRun d1 = manage({"delete", "--type=mqttSession", "--name=mqttSession/kept-offline"});
    EXPECT_EQ(d1.status, 0) << d1.out;
    ToolRun d2 = manage({"delete", "--type=mqttSession", "--name=mqttSession/kept-online"});
    EXPECT_EQ(d2.status, 0) << d2.out;
    EXPECT_TRUE(online.wait_lost()) << "its connection is closed";
    EXPECT_EQ(online.disconnect_reason(), 0x98) << "administrative action";

    ToolRun after = manage({"query", "--type=mqttSession", "clientId"});
    EXPECT_EQ(after.out.find("kept-offline"), std::string::npos) << after.out;
    EXPECT_EQ(after.out.find("kept-online"), std::string::npos) << after.out;
    ToolRun missing = manage({"delete", "--type=mqttSession", "--name=mqttSession/kept-offline"});
    EXPECT_NE(missing.out.find("Status 404"), std::string::npos) << missing.out;

    Paho back(mqtt_port, "kept-offline");
    EXPECT_FALSE(back.connect(false, 60, 3600).is_session_present()) << "the session is gone";
}

}  // namespace
