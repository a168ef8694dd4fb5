// The policy's rules (trestle/core/policy.hpp) and the vhost groups parser: matching, MQTT
// filter covering, hosts and ranges, ${user}, admission limits, and the counts that follow
// connections.
#include <gtest/gtest.h>

#include "security/policy_config.hpp"
#include "trestle/core/policy.hpp"

using namespace trestle;
using namespace trestle::core;

TEST(PolicyRules, ListEntries) {
    EXPECT_TRUE(policy_list_match("*", "anything"));
    EXPECT_TRUE(policy_list_match("a.b", "a.b"));
    EXPECT_FALSE(policy_list_match("a.b", "a.bc"));
    EXPECT_TRUE(policy_list_match("pub*", "public.x"));
    EXPECT_FALSE(policy_list_match("pub*", "pu"));
}

TEST(PolicyRules, Patterns) {
    EXPECT_TRUE(policy_pattern_match("a/*/c", "a/b/c"));
    EXPECT_TRUE(policy_pattern_match("a.*.c", "a/b/c"));  // '.' and '/' both separate
    EXPECT_FALSE(policy_pattern_match("a/*/c", "a/b/x/c"));
    EXPECT_TRUE(policy_pattern_match("a/#", "a"));
    EXPECT_TRUE(policy_pattern_match("a/#/z", "a/b/c/z"));
    EXPECT_FALSE(policy_pattern_match("a/#/z", "a/b/c"));
    EXPECT_TRUE(policy_pattern_match("#", "x/y"));
}

TEST(PolicyRules, FiltersCoveredOnlyWhenEveryTopicIs) {
    EXPECT_TRUE(policy_pattern_covers("cmd/bob/#", "cmd/bob/#"));
    EXPECT_TRUE(policy_pattern_covers("cmd/bob/#", "cmd/bob/+/x"));
    EXPECT_TRUE(policy_pattern_covers("cmd/*/x", "cmd/+/x"));
    EXPECT_FALSE(policy_pattern_covers("cmd/bob/#", "cmd/+/x"));
    EXPECT_FALSE(policy_pattern_covers("cmd/*", "cmd/#"));
    EXPECT_FALSE(policy_pattern_covers("cmd/bob", "#"));
    EXPECT_TRUE(policy_pattern_covers("#", "#"));
    EXPECT_TRUE(policy_pattern_covers("a/#", "$share/g/a/b"));  // the group is not a topic
    EXPECT_TRUE(policy_list_covers("cmd/bob/*", "cmd/bob/x/+"));
    EXPECT_FALSE(policy_list_covers("cmd/bob/*", "cmd/+/x"));
    EXPECT_FALSE(policy_list_covers("cmd/bob", "cmd/bob/#"));
    EXPECT_TRUE(policy_list_covers("cmd/bob", "cmd/bob"));
    EXPECT_TRUE(policy_list_covers("*", "#"));
}

TEST(PolicyRules, Hosts) {
    EXPECT_TRUE(policy_host_match("*", "10.1.2.3"));
    EXPECT_TRUE(policy_host_match("10.0.0.0-10.255.255.255", "10.1.2.3"));
    EXPECT_FALSE(policy_host_match("10.0.0.0-10.255.255.255", "127.0.0.1"));
    EXPECT_TRUE(policy_host_match("::1", "::1"));
    EXPECT_TRUE(policy_host_match("127.0.0.1", "127.0.0.1"));
    EXPECT_FALSE(policy_host_match("127.0.0.1", "not an ip"));
    EXPECT_EQ(policy_host_check("10.0.0.9-10.0.0.1"),
              "range '10.0.0.9-10.0.0.1' ends before it starts");
    EXPECT_NE(policy_host_check("1.2.3"), "");
    EXPECT_EQ(policy_host_of("127.0.0.1:5672"), "127.0.0.1");
    EXPECT_EQ(policy_host_of("[::1]:5672"), "::1");
}

namespace {

Policy make_policy(const char* groups_json, uint32_t per_user = 2) {
    json::Value v;
    json::ParseError e;
    EXPECT_TRUE(json::parse(groups_json, v, e)) << e.message;
    VhostSettings vs;
    vs.hostname = "$default";
    vs.max_connections_per_user = per_user;
    vs.allow_unknown_user = true;
    EXPECT_EQ(security::parse_policy_groups(v, vs.groups), "");
    Policy p;
    PolicySettings ps;
    ps.enable_vhost_policy = true;
    p.configure(ps);
    EXPECT_EQ(p.set_vhost(vs), "");
    return p;
}

}  // namespace

TEST(Policy, AdmitsGroupsSubstitutesUserAndCounts) {
    Policy p = make_policy(R"({"dev": {"users": "bob, eve", "remoteHosts": "*",
                                        "sourcePattern": "cmd/${user}/#",
                                        "targets": "telemetry/${user}/*"},
                               "$default": {"remoteHosts": "127.0.0.1", "sources": "pub*"}})");
    auto bob = p.admit("bob", "10.0.0.1", "whatever");  // unknown vhost: the default
    ASSERT_TRUE(bob.ticket);
    EXPECT_EQ(bob.ticket->group(), "dev");
    EXPECT_TRUE(bob.ticket->allow_source("cmd/bob/1"));
    EXPECT_FALSE(bob.ticket->allow_source("cmd/eve/1"));
    EXPECT_TRUE(bob.ticket->allow_target("telemetry/bob/x"));
    EXPECT_FALSE(bob.ticket->allow_target("telemetry/eve/x"));
    EXPECT_TRUE(bob.ticket->allow_filter("cmd/bob/+"));
    EXPECT_FALSE(bob.ticket->allow_dynamic_source());

    auto anon = p.admit("", "10.0.0.1", "");  // $default group allows 127.0.0.1 only
    EXPECT_TRUE(anon.refused);
    EXPECT_EQ(anon.error.name, "amqp:unauthorized-access");
    EXPECT_NE(anon.error.description.find("host 10.0.0.1"), std::string::npos);

    auto bob2 = p.admit("bob", "10.0.0.1", "");
    auto bob3 = p.admit("bob", "10.0.0.1", "");
    EXPECT_TRUE(bob3.refused);
    EXPECT_TRUE(bob3.limit);
    EXPECT_EQ(bob3.error.name, "amqp:resource-limit-exceeded");
    EXPECT_EQ(p.stats("$default")->connections_current, 2u);
    bob2.ticket.reset();
    EXPECT_TRUE(p.admit("bob", "10.0.0.1", "").ticket);  // room again (freed at once)

    bob.ticket->deny(Denial::sender, "x");
    bob.ticket->deny(Denial::sender, "y");
    const VhostStats* st = p.stats("$default");
    EXPECT_EQ(st->denials.n[size_t(Denial::sender)], 2u);
    EXPECT_EQ(st->by_user.at("bob").n[size_t(Denial::sender)], 2u);
    EXPECT_EQ(st->connections_denied, 2u);
    bob.ticket.reset();
    EXPECT_EQ(p.connections_current(), 0u);
    EXPECT_TRUE(st->user_connections.empty());  // no entry stays for a user with none
}

TEST(Policy, ReplacedVhostAppliesToNewConnectionsOnly) {
    Policy p = make_policy(R"({"g": {"users": "a", "remoteHosts": "*", "sources": "x"}})");
    auto before = p.admit("a", "::1", "");
    VhostSettings vs = *p.vhost("$default");
    vs.groups[0].sources = {"y"};
    EXPECT_EQ(p.set_vhost(vs), "");
    auto after = p.admit("a", "::1", "");
    EXPECT_TRUE(before.ticket->allow_source("x"));
    EXPECT_FALSE(after.ticket->allow_source("x"));
    EXPECT_EQ(p.stats("$default")->connections_current, 2u);
    EXPECT_TRUE(p.remove_vhost("$default"));
    before.ticket.reset();  // its vhost is gone: still counted down safely
    after.ticket.reset();
    EXPECT_EQ(p.connections_current(), 0u);
}

TEST(Policy, TrackedUsersAreBounded) {
    Policy p = make_policy(R"({"g": {"users": "a", "remoteHosts": "*"}})", 65535);
    for (int i = 0; i < 1500; ++i) (void)p.admit("u" + std::to_string(i), "::1", "");
    const VhostStats* st = p.stats("$default");
    EXPECT_LE(st->by_user.size(), Policy::max_tracked_users + 1);
    EXPECT_GT(st->by_user.at("(other)").n[size_t(Denial::connection)], 0u);
}

TEST(PolicyGroups, Errors) {
    auto err = [](const char* text) {
        json::Value v;
        json::ParseError e;
        EXPECT_TRUE(json::parse(text, v, e));
        std::vector<PolicyGroup> g;
        return security::parse_policy_groups(v, g);
    };
    EXPECT_EQ(err(R"({"g": {"remoteHosts": "*", "maxSenders": "lots"}})"),
              "group 'g': 'maxSenders': expected a number");
    EXPECT_EQ(err(R"({"g": {"remoteHosts": "*", "nope": 1}})"),
              "group 'g': unknown setting 'nope'");
    EXPECT_EQ(
        err(R"({"a": {"users": "x", "remoteHosts": "*"}, "b": {"users": "x", "remoteHosts": "*"}})"),
        "user 'x' is in groups 'a' and 'b'");
    EXPECT_EQ(
        err(R"({"g": {"remoteHosts": "*", "maxFrameSize": 1}})"),
        "group 'g': 'maxFrameSize' is not supported by Trestle (set the listener's maxFrameSize)");
    EXPECT_EQ(err(R"({"g": {"users": "x"}})"), "group 'g': needs remoteHosts (\"*\" for any host)");
}
