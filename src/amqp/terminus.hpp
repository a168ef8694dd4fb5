// Conversions between Proton's termini/dispositions and the core's vocabulary.
#pragma once

#include <proton/delivery.h>
#include <proton/terminus.h>

#include "trestle/core/ports.hpp"
#include "trestle/core/types.hpp"

namespace trestle::amqp {

core::Terminus from_pn(pn_terminus_t* t);
// `type` is PN_SOURCE or PN_TARGET: a present terminus is always encoded.
void to_pn(const core::Terminus& from, pn_terminus_t* to, pn_terminus_type_t type);

// The peer's state of a delivery (remote disposition).
core::DeliveryState remote_state(pn_delivery_t* d);
// Sets our disposition of a delivery (does not settle).
void apply_state(pn_delivery_t* d, const core::DeliveryState& s);

}  // namespace trestle::amqp
