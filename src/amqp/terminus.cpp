#include "amqp/terminus.hpp"

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/disposition.h>

#include <vector>

namespace trestle::amqp {

namespace {

std::string encode(pn_data_t* data) {
    if (!data || pn_data_size(data) == 0) return {};
    pn_data_rewind(data);
    std::vector<char> buf(256);
    while (true) {
        ssize_t n = pn_data_encode(data, buf.data(), buf.size());
        if (n >= 0) return std::string(buf.data(), static_cast<size_t>(n));
        if (n != PN_OVERFLOW || buf.size() > (1u << 24)) return {};
        buf.resize(buf.size() * 2);
    }
}

void decode(const std::string& bytes, pn_data_t* into) {
    pn_data_clear(into);
    if (!bytes.empty()) pn_data_decode(into, bytes.data(), bytes.size());
}

}  // namespace

core::Terminus from_pn(pn_terminus_t* t) {
    core::Terminus out;
    if (!t || pn_terminus_get_type(t) == PN_UNSPECIFIED) {
        out.present = false;
        return out;
    }
    const char* addr = pn_terminus_get_address(t);
    // An empty address is as anonymous as a null one (clients differ in which they send).
    out.has_address = addr != nullptr && *addr != '\0';
    if (addr) out.address = addr;
    out.dynamic = pn_terminus_is_dynamic(t);
    out.durability = static_cast<uint32_t>(pn_terminus_get_durability(t));
    out.expiry_policy = static_cast<uint8_t>(pn_terminus_get_expiry_policy(t));
    out.timeout = static_cast<uint32_t>(pn_terminus_get_timeout(t));
    out.distribution_mode = static_cast<uint8_t>(pn_terminus_get_distribution_mode(t));
    pn_data_t* caps = pn_terminus_capabilities(t);
    pn_data_rewind(caps);
    if (pn_data_next(caps)) {
        if (pn_data_type(caps) == PN_ARRAY) {
            size_t n = pn_data_get_array(caps);
            pn_data_enter(caps);
            for (size_t i = 0; i < n && pn_data_next(caps); ++i)
                if (pn_data_type(caps) == PN_SYMBOL) {
                    pn_bytes_t b = pn_data_get_symbol(caps);
                    out.capabilities.emplace_back(b.start, b.size);
                }
            pn_data_exit(caps);
        } else if (pn_data_type(caps) == PN_SYMBOL) {
            pn_bytes_t b = pn_data_get_symbol(caps);
            out.capabilities.emplace_back(b.start, b.size);
        }
    }
    out.filter = encode(pn_terminus_filter(t));
    out.properties = encode(pn_terminus_properties(t));
    out.outcomes = encode(pn_terminus_outcomes(t));
    return out;
}

void to_pn(const core::Terminus& from, pn_terminus_t* to, pn_terminus_type_t type) {
    if (!from.present) {
        pn_terminus_set_type(to, PN_UNSPECIFIED);
        return;
    }
    pn_terminus_set_type(to, type);
    pn_terminus_set_address(to, from.has_address ? from.address.c_str() : nullptr);
    pn_terminus_set_dynamic(to, from.dynamic);
    pn_terminus_set_durability(to, static_cast<pn_durability_t>(from.durability));
    pn_terminus_set_expiry_policy(to, static_cast<pn_expiry_policy_t>(from.expiry_policy));
    pn_terminus_set_timeout(to, from.timeout);
    pn_terminus_set_distribution_mode(to,
                                      static_cast<pn_distribution_mode_t>(from.distribution_mode));
    pn_data_t* caps = pn_terminus_capabilities(to);
    pn_data_clear(caps);
    if (!from.capabilities.empty()) {
        pn_data_put_array(caps, false, PN_SYMBOL);
        pn_data_enter(caps);
        for (const auto& c : from.capabilities)
            pn_data_put_symbol(caps, pn_bytes(c.size(), c.data()));
        pn_data_exit(caps);
    }
    decode(from.filter, pn_terminus_filter(to));
    decode(from.properties, pn_terminus_properties(to));
    decode(from.outcomes, pn_terminus_outcomes(to));
}

core::DeliveryState remote_state(pn_delivery_t* d) {
    core::DeliveryState s;
    pn_disposition_t* disp = pn_delivery_remote(d);
    switch (pn_delivery_remote_state(d)) {
        case PN_ACCEPTED:
            s.outcome = core::Outcome::accepted;
            break;
        case PN_REJECTED: {
            s.outcome = core::Outcome::rejected;
            pn_condition_t* c = pn_disposition_condition(disp);
            if (c && pn_condition_is_set(c)) {
                const char* name = pn_condition_get_name(c);
                const char* desc = pn_condition_get_description(c);
                s.error = std::make_shared<core::ErrorCondition>(
                    core::ErrorCondition{name ? name : "", desc ? desc : ""});
            }
            break;
        }
        case PN_RELEASED:
            s.outcome = core::Outcome::released;
            break;
        case PN_MODIFIED:
            s.outcome = core::Outcome::modified;
            s.delivery_failed = pn_disposition_is_failed(disp);
            s.undeliverable_here = pn_disposition_is_undeliverable(disp);
            break;
        default:
            break;
    }
    return s;
}

void apply_state(pn_delivery_t* d, const core::DeliveryState& s) {
    pn_disposition_t* disp = pn_delivery_local(d);
    uint64_t type = 0;
    switch (s.outcome) {
        case core::Outcome::accepted:
            type = PN_ACCEPTED;
            break;
        case core::Outcome::rejected:
            type = PN_REJECTED;
            if (s.error) {
                pn_condition_t* c = pn_disposition_condition(disp);
                pn_condition_set_name(c, s.error->name.c_str());
                pn_condition_set_description(c, s.error->description.c_str());
            }
            break;
        case core::Outcome::released:
            type = PN_RELEASED;
            break;
        case core::Outcome::modified:
            type = PN_MODIFIED;
            pn_disposition_set_failed(disp, s.delivery_failed);
            pn_disposition_set_undeliverable(disp, s.undeliverable_here);
            break;
        case core::Outcome::none:
            return;
    }
    pn_delivery_update(d, type);
}

}  // namespace trestle::amqp
