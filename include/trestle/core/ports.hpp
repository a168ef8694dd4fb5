// Ports: the interfaces the routing core calls out through. Protocol adapters (AMQP, MQTT,
// in-process endpoints, Kafka) implement them; the core never sees sockets or libraries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trestle/core/types.hpp"

namespace trestle::core {

struct Delivery;
class Link;

// A link terminus as attach carries it. The AMQP-encoded fields (filter, properties, outcomes)
// stay opaque to the core; link routing hands them to the other side unchanged.
struct Terminus {
    std::string address;
    bool has_address = false;  // false = null address (anonymous target / dynamic source)
    bool dynamic = false;
    bool present = true;  // false = no source/target at all on the attach
    uint32_t durability = 0;
    uint8_t expiry_policy = 0;  // 0 session-end, 1 link-detach, 2 connection-close, 3 never
    uint32_t timeout = 0;
    uint8_t distribution_mode = 0;  // 0 unspecified, 1 move, 2 copy
    std::vector<std::string> capabilities;
    std::string filter;      // encoded AMQP map, or empty
    std::string properties;  // encoded AMQP map (dynamic-node-properties), or empty
    std::string outcomes;    // encoded AMQP array, or empty
};

struct AttachRequest {
    Direction direction = Direction::incoming;
    std::string name;
    Terminus source;
    Terminus target;
    SenderSettleMode snd_settle_mode = SenderSettleMode::mixed;
    ReceiverSettleMode rcv_settle_mode = ReceiverSettleMode::first;

    // Outgoing link fed only by subscriptions (an MQTT session): no address of its own.
    bool subscriber = false;
    // Takes over each delivery when handed one: the core settles it at once, ACCEPTED unless
    // the port put another outcome in the delivery's state (an MQTT session owns what it
    // queued; its publishers are acknowledged when the router has the message).
    bool takes_responsibility = false;
    // Distribution for messages from this link to addresses no address entity matches
    // (default: the router's; MQTT publishers: multicast).
    std::optional<Distribution> unconfigured_distribution;
    // Identity for MQTT's no-local: a subscription with no-local skips messages from links
    // with the same owner (0 = the link's connection).
    uint64_t owner = 0;

    // Waypoints (Kafka): an outgoing link with `waypoint` set (a qdrouterd-syntax address
    // pattern) is the external destination of every address the pattern matches: producers'
    // messages to those addresses go to it alone. An incoming link with `from_waypoint` carries
    // what comes back out of the waypoint: its messages reach the address's consumers and
    // subscriptions, never the waypoint again.
    std::string waypoint;
    bool from_waypoint = false;

    // The address that routes this link: the target of an incoming link, the source of an
    // outgoing one.
    const Terminus& routed_terminus() const {
        return direction == Direction::incoming ? target : source;
    }
};

struct AttachResult {
    enum class Kind : uint8_t { open, pending, refused };
    Kind kind = Kind::open;
    ErrorCondition error;         // refused
    std::string dynamic_address;  // open: the generated address of a dynamic terminus
};

// Implemented by an adapter for every link it has attached to the core.
class LinkPort {
  public:
    virtual ~LinkPort() = default;

    // Outgoing link: transmit `d` now (the core has checked there is credit). When the
    // delivery is presettled, or the link takes responsibility, the core releases it right
    // after this returns (a port that must keep the message holds its own reference).
    // Ports never call back into the core from inside a port call.
    virtual void deliver(Delivery& d) = 0;

    // Report `state` for `d` to the peer; `settle` also settles it. After a settle the core
    // frees the delivery as soon as this returns, so the adapter must forget it.
    virtual void update(Delivery& d, const DeliveryState& state, bool settle) = 0;

    // Incoming link: make the peer sender's available credit at least `credit`. With `drain`,
    // ask the sender to use up or return what it has (credit is then 0).
    virtual void flow(uint32_t credit, bool drain) = 0;

    // Outgoing link: the peer asked to drain and there is nothing left to send.
    virtual void drained() = 0;

    // A pending attach (link routing) completed: answer the peer's attach with these termini.
    virtual void opened(const Terminus& source, const Terminus& target) = 0;

    // The router ends the link (detach with close). The core forgets the link after this call.
    virtual void detach(const ErrorCondition* error) = 0;
};

// Implemented by an adapter for every connection it has registered with the core.
class ConnectionPort {
  public:
    virtual ~ConnectionPort() = default;

    // Link routing: attach a new link on this connection towards the remote container.
    // Returns the port of the new link, or nullptr if the connection cannot take it; then
    // `refusal`, if the port set it, is what the client's attach is refused with (else
    // amqp:not-found "No route to the destination node").
    virtual LinkPort* open_link(Link& link, const AttachRequest& request,
                                ErrorCondition& refusal) = 0;

    // Management: close the connection with this error.
    virtual void close(const ErrorCondition& error) = 0;
};

}  // namespace trestle::core
