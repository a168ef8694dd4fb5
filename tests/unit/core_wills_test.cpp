// The will rule (core/wills.cpp) that MQTT wills and AMQP `$lwt` links share: held, armed with
// a delay, cancelled on a normal end or a reconnect, published when due or when the session ends.
#include <gtest/gtest.h>

#include "fake_ports.hpp"

using namespace trestle::core;
using namespace trestle::test;

namespace {

// A subscriber to "wills/#" that records what reaches it.
FakeLink* watcher(FakeConnection& c) {
    AttachRequest req;
    req.direction = Direction::outgoing;
    req.name = "watcher";
    req.subscriber = true;
    req.takes_responsibility = true;
    c.links.push_back(std::make_unique<FakeLink>());
    FakeLink* fl = c.links.back().get();
    c.router.attach(*c.conn, req, *fl, &fl->link);
    c.router.credit(fl->link, 1000, false);
    c.router.subscribe(fl->link, "wills/#");
    return fl;
}

WillRecord will(const std::string& client, uint64_t delay_ms) {
    WillRecord w;
    w.client_id = client;
    w.topic = "wills/" + client;
    w.message = msg("gone:" + client);
    w.due_ms = delay_ms;
    return w;
}

// Records what the rule asks of its store (a shared store must see hold and cancel too).
struct RecordingStore final : WillStore {
    MemoryWillStore inner;
    std::vector<std::string> calls;
    void hold(const WillRecord& w) override { calls.push_back("hold " + w.client_id); }
    void arm(WillRecord w) override {
        calls.push_back("arm " + w.client_id);
        inner.arm(std::move(w));
    }
    bool cancel(std::string_view id) override {
        calls.push_back("cancel " + std::string(id));
        return inner.cancel(id);
    }
    std::optional<WillRecord> take(std::string_view id) override { return inner.take(id); }
    std::vector<WillRecord> take_due(uint64_t now) override { return inner.take_due(now); }
    size_t size() const override { return inner.size(); }
};

}  // namespace

TEST(Wills, WithoutADelayAWillIsPublishedAtOnceAndNoLongerHeld) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* w = watcher(c);
    RecordingStore store;
    r.wills().use_store(&store);
    r.wills().hold(will("a", 0));
    EXPECT_TRUE(r.wills().arm(will("a", 0)));
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"gone:a"});
    EXPECT_EQ(store.calls, (std::vector<std::string>{"hold a", "cancel a"}));
    EXPECT_EQ(store.size(), 0u);
    r.wills().use_store(nullptr);
}

TEST(Wills, ADelayedWillWaitsForItsDelay) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* w = watcher(c);
    r.set_now_ms(1000);
    EXPECT_FALSE(r.wills().arm(will("a", 5000)));
    EXPECT_TRUE(r.wills().check(5999).empty());
    EXPECT_TRUE(w->delivered_bodies.empty());
    auto due = r.wills().check(6000);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].client_id, "a");
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"gone:a"});
    EXPECT_TRUE(r.wills().check(100000).empty()) << "published once";
}

TEST(Wills, AReconnectInTimeCancelsTheWillUnlessTheSessionEnds) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* w = watcher(c);
    r.wills().arm(will("a", 5000));
    r.wills().arm(will("b", 5000));
    EXPECT_FALSE(r.wills().reconnected("a", false));
    auto published = r.wills().reconnected("b", true);
    ASSERT_TRUE(published);
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"gone:b"});
    EXPECT_TRUE(r.wills().check(UINT64_MAX).empty()) << "neither is left armed";
}

TEST(Wills, ASessionEndingPublishesAWaitingWillNow) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* w = watcher(c);
    r.wills().arm(will("a", 60000));
    EXPECT_TRUE(r.wills().fire_now("a"));
    EXPECT_FALSE(r.wills().fire_now("a")) << "only once";
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"gone:a"});
}

TEST(Wills, ANormalEndCancelsAndAWillWithoutAClientGoesAtOnce) {
    Router r(settings());
    FakeConnection c(r);
    FakeLink* w = watcher(c);
    r.wills().arm(will("a", 60000));
    r.wills().cancel("a");
    EXPECT_FALSE(r.wills().fire_now("a"));
    EXPECT_TRUE(r.wills().arm(will("", 60000))) << "nothing could cancel it later";
    EXPECT_EQ(w->delivered_bodies, std::vector<std::string>{"gone:"});
}
