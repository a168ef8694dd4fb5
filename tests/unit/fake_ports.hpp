// Test doubles for the core's ports: they record what the core asked the adapter to do.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trestle/core/router.hpp"

namespace trestle::test {

using namespace trestle::core;

struct FakeLink : LinkPort {
    Link* link = nullptr;
    std::vector<Delivery*> delivered;  // outgoing: what was sent (pointers valid until settled)
    std::vector<std::string> delivered_bodies;
    std::vector<bool> delivered_settled;
    struct Update {
        Delivery* d;
        DeliveryState state;
        bool settle;
    };
    std::vector<Update> updates;  // dispositions reported to the peer
    uint32_t credit = 0;          // last flow() target
    bool drain = false;
    int flows = 0;
    int drained_calls = 0;
    bool opened_called = false;
    Terminus opened_source, opened_target;
    bool detached = false;
    ErrorCondition detach_error;

    void deliver(Delivery& d) override {
        delivered.push_back(&d);
        delivered_bodies.emplace_back(d.message->bytes());
        delivered_settled.push_back(d.presettled);
    }
    void update(Delivery& d, const DeliveryState& s, bool settle) override {
        updates.push_back({&d, s, settle});
    }
    void flow(uint32_t c, bool dr) override {
        credit = c;
        drain = dr;
        ++flows;
    }
    void drained() override { ++drained_calls; }
    void opened(const Terminus& s, const Terminus& t) override {
        opened_called = true;
        opened_source = s;
        opened_target = t;
    }
    void detach(const ErrorCondition* e) override {
        detached = true;
        if (e) detach_error = *e;
    }
    // Outcomes reported for incoming deliveries, in order (settled ones only).
    std::vector<Outcome> settled_outcomes() const {
        std::vector<Outcome> v;
        for (auto& u : updates)
            if (u.settle) v.push_back(u.state.outcome);
        return v;
    }
};

struct FakeConnection : ConnectionPort {
    Router& router;
    Connection* conn = nullptr;
    std::deque<std::unique_ptr<FakeLink>> links;
    std::vector<AttachRequest> opened_requests;
    std::vector<FakeLink*> opened_ports;
    bool closed = false;
    std::optional<ErrorCondition> refuse_with;  // route container: refuse every link so

    FakeConnection(Router& r, ConnectionInfo info = {}) : router(r) {
        conn = router.connection_opened(std::move(info), *this);
    }
    LinkPort* open_link(Link& l, const AttachRequest& req, ErrorCondition& refusal) override {
        if (refuse_with) {
            refusal = *refuse_with;
            return nullptr;
        }
        links.push_back(std::make_unique<FakeLink>());
        links.back()->link = &l;
        opened_requests.push_back(req);
        opened_ports.push_back(links.back().get());
        return links.back().get();
    }
    void close(const ErrorCondition&) override { closed = true; }

    FakeLink* attach(Direction dir, std::string address, AttachResult* result = nullptr,
                     SenderSettleMode snd = SenderSettleMode::mixed, bool dynamic = false) {
        AttachRequest req;
        req.direction = dir;
        req.name = "link-" + std::to_string(links.size());
        Terminus& t = dir == Direction::incoming ? req.target : req.source;
        t.address = std::move(address);
        t.has_address = !t.address.empty();
        t.dynamic = dynamic;
        req.snd_settle_mode = snd;
        links.push_back(std::make_unique<FakeLink>());
        FakeLink* fl = links.back().get();
        AttachResult r = router.attach(*conn, req, *fl, &fl->link);
        if (result) *result = r;
        return fl;
    }
    FakeLink* sender(std::string address) {
        return attach(Direction::incoming, std::move(address));
    }
    FakeLink* receiver(std::string address, SenderSettleMode snd = SenderSettleMode::mixed) {
        return attach(Direction::outgoing, std::move(address), nullptr, snd);
    }
    void gone() {
        router.connection_closed(conn);
        conn = nullptr;
    }
};

// A router's settings for the core's tests: router id R1, defaults otherwise.
inline RouterSettings settings() {
    RouterSettings s;
    s.id = "R1";
    return s;
}

inline MessageRef msg(std::string_view body) {
    return MessageRef::adopt(Message::copy_of(body));
}

}  // namespace trestle::test
