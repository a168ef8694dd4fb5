// trestled's command line and configuration handling, as an operator meets them.
#include <gtest/gtest.h>

#include <proton/message.hpp>

#include <fstream>

#include "amqp_client.hpp"
#include "router_process.hpp"

using namespace trestle::test;

namespace {

std::string write_temp(const std::string& text, const std::string& suffix) {
    char tmpl[] = "/tmp/trestle-cfg-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    std::string path = std::string(tmpl) + suffix;
    std::rename(tmpl, path.c_str());
    std::ofstream(path) << text;
    return path;
}

TEST(Cli, HelpAndVersion) {
    std::string out;
    EXPECT_EQ(run_command({trestled_path(), "--help"}, &out), 0);
    EXPECT_NE(out.find("--config"), std::string::npos);
    EXPECT_NE(out.find("--log-level"), std::string::npos);
    EXPECT_EQ(run_command({trestled_path(), "--version"}, &out), 0);
    EXPECT_EQ(out.rfind("trestle ", 0), 0u) << out;
    EXPECT_EQ(run_command({trestled_path(), "--bogus"}, &out), 2);
    EXPECT_NE(out.find("unknown option"), std::string::npos);
    EXPECT_EQ(run_command({trestled_path(), "--log-level", "loud"}, &out), 2);
}

TEST(Cli, BadConfigExitsWithFileAndLine) {
    std::string path =
        write_temp("router {\n    id: X\n}\nlistener {\n    port: nope\n}\n", ".conf");
    std::string out;
    EXPECT_EQ(run_command({trestled_path(), "--config", path, "--check"}, &out), 1);
    EXPECT_NE(out.find(path + ":5: bad value for listener 'port'"), std::string::npos) << out;
    std::remove(path.c_str());

    EXPECT_EQ(run_command({trestled_path(), "--config", "/nonexistent/trestle.conf"}, &out), 1);
    EXPECT_NE(out.find("cannot open"), std::string::npos) << out;
}

TEST(Cli, SemanticErrorsNameTheLineToo) {
    std::string path = write_temp(
        "linkRoute {\n    prefix: q\n    direction: in\n    connection: missing\n}\n", ".conf");
    std::string out;
    EXPECT_EQ(run_command({trestled_path(), "--config", path, "--check"}, &out), 1);
    EXPECT_NE(out.find(path + ":4: linkRoute refers to connector 'missing'"), std::string::npos)
        << out;
    std::remove(path.c_str());

    path = write_temp("router {\n    mode: interior\n}\n", ".conf");
    EXPECT_EQ(run_command({trestled_path(), "--config", path, "--check"}, &out), 1);
    EXPECT_NE(out.find(path + ":2: router mode 'interior' is not supported"), std::string::npos)
        << out;
    std::remove(path.c_str());
}

TEST(Cli, KafkaConfigErrorsNameTheLine) {
    std::string out;
    std::string path = write_temp("kafkaRoute {\n    prefix: t\n    topic: t\n}\n", ".conf");
    EXPECT_EQ(run_command({trestled_path(), "--config", path, "--check"}, &out), 1);
    EXPECT_NE(out.find(path + ":1: kafkaRoute needs a kafka entity"), std::string::npos) << out;
    std::remove(path.c_str());

    path = write_temp("kafka {\n    properties: {\"group.id\": \"g\"}\n}\n", ".conf");
    EXPECT_EQ(run_command({trestled_path(), "--config", path, "--check"}, &out), 1);
    EXPECT_NE(out.find(path + ":2: property 'group.id' is set by Trestle"), std::string::npos)
        << out;
    std::remove(path.c_str());

    path = write_temp("kafka {\n}\nkafkaRoute {\n    prefix: a\n    pattern: b\n    topic: t\n}\n",
                      ".conf");
    EXPECT_EQ(run_command({trestled_path(), "--config", path, "--check"}, &out), 1);
    EXPECT_NE(out.find(path + ":3: kafkaRoute needs exactly one of 'prefix' or 'pattern'"),
              std::string::npos)
        << out;
    std::remove(path.c_str());

    // A librdkafka property librdkafka does not know fails at start-up, naming it.
    path = write_temp("kafka {\n    properties: {\"no.such.thing\": \"1\"}\n}\n", ".conf");
    EXPECT_EQ(run_command({trestled_path(), "--config", path}, &out), 1);
    EXPECT_NE(out.find("no.such.thing"), std::string::npos) << out;
    std::remove(path.c_str());
}

TEST(Cli, BuiltInDefaultConfigIsValid) {
    std::string out;
    EXPECT_EQ(run_command({trestled_path(), "--check"}, &out), 0) << out;
}

TEST(Cli, JsonConfigRunsARouter) {
    RouterProcess r(R"([
  ["router", {"id": "Rjson"}],
  ["listener", {"name": "j", "host": "127.0.0.1", "port": 0}],
  ["address", {"prefix": "mc", "distribution": "multicast"}]
])",
                    {}, /*json=*/true);
    AmqpClient c(r.url("j"));
    ASSERT_TRUE(c.wait_open()) << c.error();
    LinkConfig acc;
    acc.auto_accept = true;
    int a = c.open_receiver("mc/x", acc);
    int b = c.open_receiver("mc/x", acc);
    ASSERT_TRUE(c.wait_link_open(a) && c.wait_link_open(b));
    int s = c.open_sender("mc/x");
    ASSERT_TRUE(c.wait_credit(s, 1));
    proton::message m;
    m.body(std::string("both"));
    c.send(s, m);
    EXPECT_TRUE(c.receive(a));
    EXPECT_TRUE(c.receive(b)) << "the JSON address entity made mc/x multicast";
}

}  // namespace
