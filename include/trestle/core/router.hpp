// The routing core: connections, links, addresses, deliveries; distribution (closest, balanced,
// multicast), link routing, credit and settlement. Single-writer: one thread calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <map>
#include <optional>

#include "trestle/core/address_pattern.hpp"
#include "trestle/core/message.hpp"
#include "trestle/core/policy.hpp"
#include "trestle/core/ports.hpp"
#include "trestle/core/stores.hpp"
#include "trestle/core/topic_filter.hpp"
#include "trestle/core/types.hpp"
#include "trestle/core/wills.hpp"

namespace trestle::core {

class Address;
class Connection;
class Link;
class Router;

// Hash for string-keyed maps looked up by string_view (heterogeneous lookup).
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

// One message in flight on one link. Incoming deliveries (from a producer) and outgoing copies
// (to consumers) are linked so that outcomes and settlement travel back.
struct Delivery {
    enum class Where : uint8_t { nowhere, undelivered, in_flight };

    Delivery* prev = nullptr;  // membership in the link's undelivered or in-flight list
    Delivery* next = nullptr;
    Link* link = nullptr;  // null once its link is gone (orphaned incoming delivery)
    MessageRef message;
    void* handle = nullptr;      // the adapter's own object (e.g. a pn_delivery_t)
    Delivery* in = nullptr;      // outgoing copy -> the incoming delivery awaiting its outcome
    Delivery* out = nullptr;     // incoming -> its only copy (anycast, link routed)
    Address* address = nullptr;  // where it was routed (re-routing; a copy's topic)
    DeliveryState state;         // outgoing: consumer's state; incoming: aggregate so far
    uint32_t copies = 0;         // incoming: outgoing copies whose outcome is still pending
    uint64_t arrival_ms = 0;     // router clock when it arrived (delayed/stuck counters)
    Where where = Where::nowhere;
    bool presettled = false;        // arrived settled (incoming) / sent settled (outgoing)
    bool multicast = false;         // incoming: fanned out to several copies
    bool settled_upstream = false;  // incoming: the producer settled it already
    bool retained = false;          // outgoing: a stored retained message sent to a new consumer
    // Set by a port that takes responsibility but cannot take this one yet: the core keeps
    // it, first in line, and sends nothing more on the link until the port gives credit.
    bool deferred = false;
};

class DeliveryList {
  public:
    void push_back(Delivery* d);
    void push_front(Delivery* d);
    void remove(Delivery* d);
    Delivery* front() const { return head_; }
    Delivery* pop_front();
    bool empty() const { return head_ == nullptr; }
    size_t size() const { return size_; }

  private:
    Delivery* head_ = nullptr;
    Delivery* tail_ = nullptr;
    size_t size_ = 0;
};

struct LinkCounters {
    uint64_t delivery_count = 0;  // deliveries that crossed the link
    uint64_t presettled = 0;
    uint64_t dropped_presettled = 0;
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    uint64_t released = 0;
    uint64_t modified = 0;
};

struct ConnectionInfo {
    std::string protocol = "amqp";  // amqp, mqtt, ...
    bool inbound = true;            // accepted on a listener (true) or opened by a connector
    std::string host;               // remote address:port
    std::string container_id;       // the peer's container id (or MQTT client id)
    std::string role = "normal";    // normal, route-container
    std::string user;
    std::string sasl_mechanism;
    bool authenticated = false;
    bool encrypted = false;
    std::string ssl_protocol, ssl_cipher;  // TLS: e.g. TLSv1.3, TLS_AES_256_GCM_SHA384
    int ssl_ssf = 0;                       // the cipher's key bits
    std::string listener;                  // name of the listener that accepted it
    std::string connector;                 // name of the connector that opened it
    uint32_t link_capacity = 250;
    // The policy ticket it was admitted with (owned by the adapter; null: not a user
    // connection, or no policy): management asks it about writes.
    const PolicyTicket* policy = nullptr;
};

class Connection {
  public:
    uint64_t id() const { return id_; }
    const ConnectionInfo& info() const { return info_; }
    ConnectionPort* port() const { return port_; }
    const std::vector<Link*>& links() const { return links_; }
    uint64_t opened_ms() const { return opened_ms_; }
    uint64_t deliveries_in = 0;   // messages received from the peer
    uint64_t deliveries_out = 0;  // messages sent to the peer
    uint64_t last_delivery_ms = 0;

  private:
    friend class Router;
    uint64_t id_ = 0;
    ConnectionInfo info_;
    ConnectionPort* port_ = nullptr;
    std::vector<Link*> links_;
    uint64_t opened_ms_ = 0;
};

class Link {
  public:
    uint64_t id() const { return id_; }
    Direction direction() const { return dir_; }
    const std::string& name() const { return name_; }
    const std::string& terminus_address() const { return terminus_address_; }
    Connection* connection() const { return conn_; }
    Address* address() const { return addr_; }
    Link* routed_peer() const { return routed_peer_; }
    bool link_routed() const { return link_routed_; }
    uint32_t capacity() const { return capacity_; }
    size_t undelivered_count() const { return undelivered_.size(); }
    size_t unsettled_count() const { return unsettled_; }
    // Outgoing: credit the consumer has given; incoming: credit the core wants the producer to
    // have (after the last flow() it issued).
    int32_t credit() const { return credit_; }
    bool blocked() const { return blocked_; }
    const LinkCounters& counters() const { return counters_; }
    uint64_t zero_credit_since_ms() const { return zero_credit_since_ms_; }
    LinkPort* port() const { return port_; }
    bool subscriber() const { return subscriber_; }
    // Waypoint link: the pattern it is bound to (empty: none).
    const std::string& waypoint() const { return waypoint_; }
    bool from_waypoint() const { return from_waypoint_; }
    // MQTT-syntax filters this link subscribed to ("$share/g/f" for shared ones).
    const std::vector<std::string>& subscriptions() const { return subscriptions_; }
    // The held (incoming) or sent-unsettled (outgoing) delivery with this adapter handle.
    // Linear: for rare events only (e.g. a producer settling before the router did).
    Delivery* find_in_flight(const void* handle) const {
        for (Delivery* d = in_flight_.front(); d; d = d->next)
            if (d->handle == handle) return d;
        return nullptr;
    }

  private:
    friend class Router;
    uint64_t id_ = 0;
    Direction dir_ = Direction::incoming;
    std::string name_;
    std::string terminus_address_;
    Connection* conn_ = nullptr;
    LinkPort* port_ = nullptr;
    Address* addr_ = nullptr;      // owning address (null: anonymous or link routed)
    Link* routed_peer_ = nullptr;  // link routing: the link on the route container side
    bool link_routed_ = false;
    bool subscriber_ = false;  // outgoing, fed by subscriptions only
    bool takes_responsibility_ = false;
    bool from_waypoint_ = false;  // incoming: messages coming back out of a waypoint
    std::string waypoint_;        // outgoing: the address pattern it is the waypoint of
    std::optional<Distribution> unconfigured_distribution_;
    // Anonymous producers: how the last topic without an Address object resolved (MQTT
    // publishers repeat topics; pattern tables are not matched per message). Made on first use.
    struct TopicRoute {
        std::string topic;
        uint64_t generation = 0;  // Router::rules_generation_ it was resolved under
        Link* waypoint = nullptr;
        std::optional<Distribution> configured;
    };
    std::unique_ptr<TopicRoute> last_topic_;
    std::vector<std::string> subscriptions_;
    uint64_t owner_ = 0;
    bool peer_pending_ = false;     // link routing: waiting for the remote attach
    bool presettled_only_ = false;  // outgoing: the consumer asked for settled deliveries
    bool blocked_ = false;          // incoming: credit withheld (no destination)
    bool drain_ = false;            // outgoing: the consumer asked to drain
    bool peer_drained_ = false;     // link routing: the producer side completed a drain
    bool detached_ = false;
    uint32_t capacity_ = 250;
    int32_t credit_ = 0;
    size_t unsettled_ = 0;      // deliveries awaiting settlement (either direction)
    DeliveryList undelivered_;  // outgoing: waiting for credit
    DeliveryList in_flight_;    // incoming: held; outgoing: sent, awaiting settlement
    LinkCounters counters_;
    uint64_t zero_credit_since_ms_ = 0;
};

struct AddressCounters {
    uint64_t deliveries_ingress = 0;         // from local producers
    uint64_t deliveries_egress = 0;          // to local consumers
    uint64_t deliveries_to_container = 0;    // link routed towards a route container
    uint64_t deliveries_from_container = 0;  // link routed from a route container
    uint64_t dropped_presettled = 0;
};

class Address {
  public:
    const std::string& name() const { return name_; }
    Distribution distribution() const { return distribution_; }
    const std::vector<Link*>& consumers() const { return consumers_; }
    const std::vector<Link*>& producers() const { return producers_; }
    // A consumer attached to it, a subscription whose filter matches it, or a waypoint.
    bool has_destinations() const {
        return !consumers_.empty() || filter_matches_ > 0 || waypoint_;
    }
    // The waypoint (Kafka) that takes producers' messages to this address, if any.
    Link* waypoint() const { return waypoint_; }
    // Subscriptions (shared groups counted once) whose filters match this address.
    uint32_t filter_matches() const { return filter_matches_; }
    // An address entity chose its distribution (else each sender's default applies).
    bool configured() const { return configured_; }
    bool dynamic() const { return dynamic_; }
    const AddressCounters& counters() const { return counters_; }

  private:
    friend class Router;
    std::string name_;
    Distribution distribution_ = Distribution::balanced;
    bool configured_ = false;
    uint32_t filter_matches_ = 0;
    Link* waypoint_ = nullptr;
    bool dynamic_ = false;
    std::vector<Link*> consumers_;
    std::vector<Link*> producers_;
    size_t next_ = 0;  // round-robin position (closest, balanced tie-break)
    // Links whose address it is and deliveries routed to it: it lives while this is above 0.
    uint32_t refs_ = 0;
    AddressCounters counters_;
};

struct AddressRule {
    std::string name;
    std::string prefix;  // one of prefix / pattern
    std::string pattern;
    Distribution distribution = Distribution::balanced;
    int priority = -1;
};

struct LinkRouteRule {
    std::string name;
    std::string prefix;  // one of prefix / pattern
    std::string pattern;
    Direction direction = Direction::incoming;  // in = client senders, out = client receivers
    std::string connection;                     // connector name, or
    std::string container_id;                   // the remote container id
    std::string add_external_prefix;
    std::string del_external_prefix;
};

struct RouterSettings {
    std::string id = "Trestle";
    Distribution default_distribution = Distribution::balanced;
};

struct RouterCounters {
    uint64_t deliveries_ingress = 0;
    uint64_t deliveries_egress = 0;
    uint64_t deliveries_ingress_route_container = 0;
    uint64_t deliveries_egress_route_container = 0;
    uint64_t presettled = 0;
    uint64_t dropped_presettled = 0;
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    uint64_t released = 0;
    uint64_t modified = 0;
    // Unsettled deliveries settled 1-10 s / over 10 s after they arrived (qdrouterd's).
    uint64_t delayed_1sec = 0;
    uint64_t delayed_10sec = 0;
};

class Router {
  public:
    explicit Router(RouterSettings settings);
    ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

    const RouterSettings& settings() const { return settings_; }
    // Authorization: adapters admit connections and ask tickets about addresses.
    Policy& policy() { return policy_; }
    const Policy& policy() const { return policy_; }

    // --- configuration (also runtime management) ---
    // Returns an error description, or empty on success.
    std::string add_address_rule(const AddressRule& rule);
    bool remove_address_rule(const std::string& name);
    const std::vector<AddressRule>& address_rules() const { return address_rules_; }
    std::string add_link_route(const LinkRouteRule& rule);
    bool remove_link_route(const std::string& name);
    const std::vector<LinkRouteRule>& link_routes() const { return link_routes_; }
    // The distribution an address would get (rules, then the default).
    Distribution distribution_for(std::string_view address) const;
    std::optional<Distribution> configured_distribution(std::string_view address) const;

    // --- subscriptions (MQTT topic filters) ---
    // Adds a subscription feeding `link` with messages whose address the MQTT filter matches;
    // "$share/<group>/<filter>" joins a shared group (one member gets each message). With
    // `no_local`, messages published on the link's own connection are not delivered.
    // Returns an error description, or empty on success.
    std::string subscribe(Link* link, std::string_view filter, bool no_local = false);
    bool unsubscribe(Link* link, std::string_view filter);

    // --- in-process publishing and retained messages ---
    // Routes a message as an MQTT publisher would (wills, management): presettled for QoS 0,
    // unsettled otherwise (the outcome is dropped).
    void publish(std::string_view address, MessageRef message);
    // nullptr: back to the router's own in-memory store.
    void set_retained_store(RetainedStore* store) { retained_ = store ? store : &memory_retained_; }
    // The will rule every adapter uses (MQTT wills, AMQP `$lwt`); its store is the router's
    // memory until a shared one (Kafka) is set with wills().use_store().
    Wills& wills() { return wills_; }
    RetainedStore& retained() { return *retained_; }
    const RetainedStore& retained() const { return *retained_; }
    // Queues the retained messages the filter matches to `link`, marked `retained`.
    size_t send_retained(Link* link, std::string_view filter);

    // --- connections ---
    Connection* connection_opened(ConnectionInfo info, ConnectionPort& port);
    // The connection is gone; its links are detached without calling their ports.
    void connection_closed(Connection* conn, const ErrorCondition* why = nullptr);

    // --- links ---
    // A peer attached a link. On `open` and `pending`, *link is the new core link.
    AttachResult attach(Connection& conn, const AttachRequest& req, LinkPort& port, Link** link);
    // The peer detached (or the adapter gave up on) the link. The core forgets it.
    void detach(Link* link, const ErrorCondition* error);
    // Link routing: the remote container answered the attach of a link the core opened.
    // `refused` when it answered without a terminus (a detach follows).
    void peer_attached(Link* link, const Terminus& source, const Terminus& target);

    // --- messages ---
    // A complete message arrived on an incoming link. `to` is its `to` field (used by
    // anonymous links). Returns the delivery the adapter should associate with its own handle,
    // or nullptr when the core already completed it (the adapter was told through update()).
    Delivery* transfer(Link* link, MessageRef message, std::string_view to, bool settled,
                       void* handle);
    // The peer reported a state (and maybe settled) for a delivery on one of its links.
    void disposition(Delivery* d, const DeliveryState& state, bool settled);
    // The port holding outgoing delivery `d` took all it needs from the message (a Kafka route
    // copied it into a record) and never sends it again: the message goes now, while still in
    // cache, not thousands of messages later with the outcome. Its producer's delivery lets
    // it go too when `d` is its only copy: after a copy is handed over, the core re-routes
    // nothing (an outcome, even released, goes back to the producer as it is).
    void release_message(Delivery& d);
    // Outgoing link: the consumer's credit is now `credit`; `drain` = it asked to drain.
    void credit(Link* link, int32_t credit, bool drain);
    // Incoming link: the producer reported its credit (e.g. after a drain).
    void producer_flow(Link* link, int32_t credit);

    // --- introspection (management) ---
    const std::unordered_map<uint64_t, std::unique_ptr<Connection>>& connections() const {
        return connections_;
    }
    const std::unordered_map<uint64_t, std::unique_ptr<Link>>& links() const { return links_; }
    using AddressMap =
        std::unordered_map<std::string, std::unique_ptr<Address>, StringHash, std::equal_to<>>;
    const AddressMap& addresses() const { return addresses_; }
    const RouterCounters& counters() const { return counters_; }
    // The core's coarse clock (monotonic ms), advanced by the event loop once per batch so the
    // per-message path never reads a clock.
    uint64_t now_ms() const { return now_ms_; }
    void set_now_ms(uint64_t ms) { now_ms_ = ms; }
    Address* find_address(std::string_view name);

    // Address names as the router keys them: strips "amqp:/" and "_topo/0/<router-id>/".
    std::string_view normalize(std::string_view address) const;

  private:
    struct RouteEntry {
        size_t index;  // into link_routes_
    };

    Address* address_for(std::string_view name);
    void hold(Address* a);
    void let_go(Address* a);
    // Erases an address nothing refers to (one just made by address_for() and not kept).
    void maybe_delete_address(Address* a);
    void erase_address(Address* a);
    void add_consumer(Address* a, Link* l);
    void remove_consumer(Address* a, Link* l);
    void destinations_changed(Address* a, bool had);
    Link* waypoint_for(std::string_view address) const;
    void rebind_waypoints();
    const Link::TopicRoute& resolve_topic(Link* from, std::string_view topic);

    const LinkRouteRule* find_link_route(std::string_view address, Direction dir) const;
    Connection* route_container_for(const LinkRouteRule& r) const;
    AttachResult attach_link_routed(Connection& conn, const AttachRequest& req,
                                    const LinkRouteRule& route, LinkPort& port, Link** out);

    Link* new_link(Connection& conn, const AttachRequest& req, LinkPort* port);
    void destroy_link(Link* l);
    void cleanup_outgoing(Link* l);
    void cleanup_incoming(Link* l);

    Delivery* new_delivery();
    void free_delivery(Delivery* d);

    struct SharedGroup {
        std::string name, filter;
        std::vector<Link*> members;
        size_t next = 0;
    };
    struct FilterEntry {
        Link* link = nullptr;
        SharedGroup* group = nullptr;
        bool no_local = false;
        bool operator==(const FilterEntry& o) const { return link == o.link && group == o.group; }
    };
    using Candidates = std::vector<Link*>;

    void route_to(Delivery* in, Distribution d, const Candidates& c, size_t& next);
    bool collect(Address* a, std::string_view topic, uint64_t origin_owner, Candidates& out);
    Distribution effective_distribution(const Address* a, std::string_view topic,
                                        const Link* from) const;
    void no_route(Delivery* in);
    void reroute(Delivery* in);
    void filters_changed(std::string_view filter, int delta);
    void remove_subscriptions(Link* l);
    void forward_to(Delivery* in, Link* out);
    Link* pick_closest(const Candidates& c, size_t& next);
    Link* pick_balanced(const Candidates& c, size_t& next);
    void enqueue(Link* out, Delivery* d);
    void pump(Link* out);
    void drop_oldest_presettled(Link* out);

    void settle_in(Delivery* in, const DeliveryState& s);
    void release_in(Delivery* in);
    void copy_done_for(Delivery* in, const DeliveryState& s);
    void count_outcome(Link* l, const DeliveryState& s);
    void update_credit(Link* in);

    RouterSettings settings_;
    Policy policy_;
    uint64_t now_ms_ = 0;
    std::vector<AddressRule> address_rules_;
    AddressPatternTable<size_t> address_table_;  // pattern -> index in address_rules_
    std::vector<LinkRouteRule> link_routes_;
    AddressPatternTable<size_t> link_route_in_;   // client senders
    AddressPatternTable<size_t> link_route_out_;  // client receivers
    AddressPatternTable<Link*> waypoints_;        // pattern -> waypoint link
    uint64_t rules_generation_ = 1;               // bumped when address rules or waypoints change

    std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
    std::unordered_map<uint64_t, std::unique_ptr<Link>> links_;
    AddressMap addresses_;  // looked up by string_view: no key string per message
    TopicFilterIndex<FilterEntry> filters_;
    std::map<std::pair<std::string, std::string>, std::unique_ptr<SharedGroup>> groups_;
    size_t transient_next_ = 0;  // round-robin position for topics without an address object
    MemoryRetainedStore memory_retained_;
    RetainedStore* retained_ = &memory_retained_;
    MemoryWillStore memory_wills_;
    Wills wills_{*this, memory_wills_};
    std::unique_ptr<Connection> internal_conn_;  // owns the in-process publisher
    Link* publisher_ = nullptr;
    Candidates scratch_;  // collect() output on the per-message path (no allocation)
    uint64_t next_connection_id_ = 1;
    uint64_t next_link_id_ = 1;
    uint64_t next_dynamic_ = 1;
    std::string topo_prefix_;  // "_topo/0/<id>/"
    RouterCounters counters_;

    Delivery* transfer_current_ = nullptr;  // lets transfer() tell whether it completed
    bool transfer_current_freed_ = false;
    std::vector<Delivery*> delivery_pool_;
    size_t live_deliveries_ = 0;
    size_t peak_deliveries_ = 0;  // since the pool last shrank

  public:
    size_t live_deliveries() const { return live_deliveries_; }
    // Walks every structure and describes each broken ownership or count (empty: none): links
    // and connections list each other, every live delivery sits in exactly one link list or is
    // an orphan its copies point at, copy counts match, credit is never negative, and an
    // address exists exactly while a link or delivery refers to it. Slow: for tests and fuzzing.
    std::string check_invariants() const;
    // Deliveries held unsettled for longer than `older_than_ms` now (qdrouterd's "stuck").
    size_t stuck_deliveries(uint64_t older_than_ms = 10000) const;
};

}  // namespace trestle::core
