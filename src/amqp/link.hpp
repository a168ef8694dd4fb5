// One Proton link bound to one core link, and the Proton helpers the AMQP adapter's files
// share (connection.cpp, links.cpp, transfers.cpp). Included by src/amqp only.
#pragma once

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/transport.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "amqp/codec.hpp"
#include "amqp/connection.hpp"
#include "amqp/terminus.hpp"
#include "mapping/mqtt_amqp.hpp"
#include "trestle/version.hpp"
#include "util/log.hpp"

namespace trestle::amqp {

// This module's logger (its level is set through the management `log` entity).
inline spdlog::logger& logger() {
    return logs::get(logs::Module::AMQP);
}

inline core::ErrorCondition condition_of(pn_condition_t* c) {
    core::ErrorCondition e;
    if (c && pn_condition_is_set(c)) {
        const char* n = pn_condition_get_name(c);
        const char* d = pn_condition_get_description(c);
        e.name = n ? n : "";
        e.description = d ? d : "";
    }
    return e;
}

inline void set_condition(pn_condition_t* c, const core::ErrorCondition& e) {
    pn_condition_set_name(c, e.name.c_str());
    if (!e.description.empty()) pn_condition_set_description(c, e.description.c_str());
}

inline pn_bytes_t bytes_of(const char* s) {
    return pn_bytes(std::strlen(s), s);
}

inline std::string describe(const core::ErrorCondition& e) {
    if (e.empty()) return "normal close";
    return e.name + (e.description.empty() ? "" : ": " + e.description);
}

// ---------------------------------------------------------------------------------------------
// One Proton link bound to one core link.

class AmqpLink final : public core::LinkPort {
  public:
    AmqpLink(AmqpConnection& c, pn_link_t* l) : conn(c), pn(l) { pn_link_set_context(l, this); }

    AmqpConnection& conn;
    pn_link_t* pn;
    core::Link* core = nullptr;
    pn_link_t* attach_after = nullptr;  // open once this same-named link's detach is echoed
    bool anonymous = false;             // incoming link routed by each message's `to`
    uint8_t policy_counted = 0;         // 1: counted as a sender, 2: as a receiver
    std::string partial;                // bytes of a multi-frame message received so far
    uint64_t next_tag = 0;
    // A sender link to `$lwt` (EnMasse's MQTT-over-AMQP wills): named by the client id, its
    // last message is the client's will, published if the link or connection ends abnormally.
    bool lwt = false;
    core::MessageRef will;
    std::string will_topic;

    void deliver(core::Delivery& d) override {
        // A message from another protocol is converted once (cached on the message).
        const core::Message* m = mapping::as_amqp(*d.message, conn.router_.now_ms());
        if (!m) m = d.message.get();
        // The delivery tag carries the core delivery's address, so a disposition finds it
        // without Proton's per-delivery attachment records (a measurable share of the cost per
        // message). Tags stay unique among a link's unsettled deliveries because a core delivery
        // lives until it is settled.
        core::Delivery* self = &d;
        pn_delivery_t* pd =
            pn_delivery(pn, pn_dtag(reinterpret_cast<const char*>(&self), sizeof self));
        pn_link_send(pn, m->data(), m->size());
        pn_link_advance(pn);
        if (d.presettled)
            pn_delivery_settle(pd);
        else
            d.handle = pd;
        conn.wake();
    }

    void update(core::Delivery& d, const core::DeliveryState& s, bool settle) override {
        auto* pd = static_cast<pn_delivery_t*>(d.handle);
        if (!pd) return;
        apply_state(pd, s);
        if (settle) {
            pn_delivery_settle(pd);
            d.handle = nullptr;
        }
        conn.wake();
    }

    void flow(uint32_t credit, bool drain) override {
        int have = pn_link_credit(pn);
        int want = static_cast<int>(credit);
        if (drain) {
            if (!pn_link_get_drain(pn) || want > have)
                pn_link_drain(pn, want > have ? want - have : 0);
        } else {
            if (pn_link_get_drain(pn)) pn_link_set_drain(pn, false);
            if (want > have) pn_link_flow(pn, want - have);
        }
        conn.wake();
    }

    void drained() override {
        pn_link_drained(pn);
        conn.wake();
    }

    void opened(const core::Terminus& source, const core::Terminus& target) override {
        to_pn(source, pn_link_source(pn), PN_SOURCE);
        to_pn(target, pn_link_target(pn), PN_TARGET);
        pn_link_open(pn);
        conn.wake();
    }

    void detach(const core::ErrorCondition* error) override {
        core = nullptr;  // the core forgets this link once this returns
        if (attach_after) {
            // Never attached on the wire (waiting for its name to be free): nothing to detach.
            attach_after = nullptr;
            pn_link_free(pn);
            return;
        }
        if (pn_link_state(pn) & PN_LOCAL_CLOSED) return;
        if (pn_link_state(pn) & PN_LOCAL_UNINIT) pn_link_open(pn);  // answer the attach first
        if (error && !error->empty()) set_condition(pn_link_condition(pn), *error);
        pn_link_close(pn);
        conn.wake();
    }
};

}  // namespace trestle::amqp
