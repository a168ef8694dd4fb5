// Vocabulary of the routing core: outcomes, delivery states, error conditions, distributions.
// Pure C++; shared by every adapter.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace trestle::core {

// Direction of a link as the router sees it (qdrouterd's linkDir): `incoming` carries messages
// into the router (the peer is a sender), `outgoing` carries them out (the peer is a receiver).
enum class Direction : uint8_t { incoming, outgoing };

enum class Distribution : uint8_t { closest, balanced, multicast, unavailable };

std::string_view to_string(Distribution d);
std::optional<Distribution> parse_distribution(std::string_view s);

// Terminal outcomes of AMQP 1.0 (plus `none` = no outcome yet / settled without one).
enum class Outcome : uint8_t { none = 0, accepted, rejected, released, modified };

std::string_view to_string(Outcome o);

struct ErrorCondition {
    std::string name;
    std::string description;
    bool empty() const { return name.empty(); }
};

// Conditions the router itself raises; names as qdrouterd uses them where it has one.
namespace condition {
inline constexpr const char* no_route = "qd:no-route-to-dest";
inline constexpr const char* routed_link_lost = "qd:routed-link-lost";
inline constexpr const char* not_found = "amqp:not-found";
inline constexpr const char* resource_limit = "amqp:resource-limit-exceeded";
inline constexpr const char* precondition_failed = "amqp:precondition-failed";
inline constexpr const char* not_implemented = "amqp:not-implemented";
inline constexpr const char* invalid_field = "amqp:invalid-field";
inline constexpr const char* connection_forced = "amqp:connection:forced";
inline constexpr const char* detach_forced = "amqp:link:detach-forced";
inline constexpr const char* internal_error = "amqp:internal-error";
}  // namespace condition

// The delivery state a consumer reported or the router reports to a producer.
struct DeliveryState {
    Outcome outcome = Outcome::none;
    bool delivery_failed = false;                 // modified
    bool undeliverable_here = false;              // modified
    std::shared_ptr<const ErrorCondition> error;  // rejected; passed through unchanged

    static DeliveryState of(Outcome o) {
        DeliveryState s;
        s.outcome = o;
        return s;
    }
    static DeliveryState accepted() { return of(Outcome::accepted); }
    static DeliveryState released() { return of(Outcome::released); }
    static DeliveryState modified(bool failed, bool undeliverable = false) {
        return {Outcome::modified, failed, undeliverable, nullptr};
    }
    static DeliveryState rejected(ErrorCondition e) {
        return {Outcome::rejected, false, false, std::make_shared<ErrorCondition>(std::move(e))};
    }
    bool terminal() const { return outcome != Outcome::none; }
};

// Multicast aggregation priority: REJECTED > ACCEPTED > MODIFIED > RELEASED (qdrouterd).
int aggregation_rank(Outcome o);

// AMQP sender settle mode requested on attach.
enum class SenderSettleMode : uint8_t { unsettled = 0, settled = 1, mixed = 2 };
enum class ReceiverSettleMode : uint8_t { first = 0, second = 1 };

}  // namespace trestle::core
