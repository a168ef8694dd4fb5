#include "kafka/eventhubs_nodes.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>

#include "kafka/probe.hpp"
#include "mapping/eventhubs.hpp"
#include "mapping/strimzi.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

namespace asio = boost::asio;
namespace eh = mapping::eventhubs;

namespace {
spdlog::logger& logger() {
    return logs::get(logs::Module::KAFKA);
}

constexpr int32_t k_request_credit = 50;
// Responses waiting for the receiver's credit beyond which requests are refused (the
// lookups already under way, at most one request credit's worth, still add theirs).
constexpr size_t k_max_queued_responses = 256;

// Status codes and conditions as Event Hubs answers them (the SDKs map them to their errors).
constexpr int32_t accepted = 202, ok = 200, bad_request = 400, not_found = 404, server_error = 500;
constexpr std::string_view not_implemented = "amqp:not-implemented";
constexpr std::string_view argument_error = "com.microsoft:argument-error";
constexpr std::string_view entity_not_found = "com.microsoft:messaging-entity-not-found";
constexpr std::string_view internal_error = "amqp:internal-error";
}  // namespace

// One client link to or from a node. Requests arrive on the client's sender (an outgoing link
// of the core to us); responses leave on the client's receiver whose name or target address is
// the request's reply-to, on the same connection.
class Adapter::EventHubsNodes::NodeLink final : public core::LinkPort {
  public:
    NodeLink(EventHubsNodes& n, std::string node, bool requests, uint64_t connection,
             std::string name, std::string reply_address)
        : n_(n),
          node(std::move(node)),
          requests(requests),
          connection(connection),
          name(std::move(name)),
          reply_address(std::move(reply_address)) {}

    void deliver(core::Delivery& d) override {
        pending.push_back({d.presettled ? nullptr : &d, core::MessageRef::share(d.message.get())});
        if (!posted) {
            posted = true;
            asio::post(n_.a_.loop_.io(),
                       [&n = n_, self = this, token = std::weak_ptr<bool>(n_.alive_)] {
                           if (token.expired() || !n.alive(self)) return;
                           self->posted = false;
                           n.process(*self);
                       });
        }
    }
    void update(core::Delivery& d, const core::DeliveryState&, bool settle) override {
        if (!settle) return;
        for (auto& p : pending)
            if (p.delivery == &d) p.delivery = nullptr;  // the client settled first
    }
    void flow(uint32_t c, bool drain) override {
        credit = drain ? 0 : static_cast<int32_t>(c);
        if (credit > 0 && !out.empty()) post_send();
    }
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override {
        link = nullptr;
        n_.drop(this);
    }

    // Responses go out while the client's receiver has credit; the rest wait (bounded by the
    // requests in flight, which the request link's credit bounds).
    void send() {
        while (link && credit > 0 && !out.empty()) {
            core::MessageRef m = std::move(out.front());
            out.pop_front();
            --credit;
            n_.a_.router_.transfer(link, std::move(m), node, true, nullptr);
        }
    }
    void post_send() {
        asio::post(n_.a_.loop_.io(),
                   [&n = n_, self = this, token = std::weak_ptr<bool>(n_.alive_)] {
                       if (!token.expired() && n.alive(self)) self->send();
                   });
    }

    struct Pending {
        core::Delivery* delivery;  // null: presettled, or settled by the client meanwhile
        core::MessageRef message;
    };
    EventHubsNodes& n_;
    const std::string node;  // $cbs or $management
    const bool requests;     // the client's sender
    const uint64_t connection;
    const std::string name;
    const std::string reply_address;  // the client receiver's target address
    core::Link* link = nullptr;
    std::deque<Pending> pending;
    std::deque<core::MessageRef> out;
    int32_t credit = 0;
    bool posted = false;
};

Adapter::EventHubsNodes::EventHubsNodes(Adapter& a) : a_(a) {}
Adapter::EventHubsNodes::~EventHubsNodes() = default;

bool Adapter::EventHubsNodes::is_node(std::string_view address) {
    return address == eh::cbs_node || address == eh::management_node;
}

bool Adapter::EventHubsNodes::alive(const NodeLink* l) const {
    return std::any_of(links_.begin(), links_.end(),
                       [l](const std::unique_ptr<NodeLink>& x) { return x.get() == l; });
}

core::LinkPort* Adapter::EventHubsNodes::open(core::Link& link, const core::AttachRequest& req,
                                              const core::Terminus& source,
                                              const core::Terminus& target) {
    bool requests = req.direction == core::Direction::outgoing;  // the client's sender
    const core::Link* client = link.routed_peer();
    uint64_t connection = client && client->connection() ? client->connection()->id() : 0;
    auto l =
        std::make_unique<NodeLink>(*this, requests ? target.address : source.address, requests,
                                   connection, req.name, requests ? std::string() : target.address);
    NodeLink* port = l.get();
    port->link = &link;
    links_.push_back(std::move(l));
    // Answered after this port call (ports do not call into the core from inside one).
    asio::post(a_.loop_.io(), [this, port, source, target, token = std::weak_ptr<bool>(alive_)] {
        if (token.expired() || !alive(port) || !port->link) return;
        a_.router_.peer_attached(port->link, source, target);
        if (port->requests) a_.router_.credit(port->link, k_request_credit, false);
    });
    logger().debug("Event Hubs {} link '{}' to {}", requests ? "request" : "response", req.name,
                   port->node);
    return port;
}

void Adapter::EventHubsNodes::drop(NodeLink* l) {
    // Not from inside the port call that reported the detach: the port is still on the stack.
    asio::post(a_.loop_.io(), [this, l, token = std::weak_ptr<bool>(alive_)] {
        if (token.expired()) return;
        std::erase_if(links_, [l](const std::unique_ptr<NodeLink>& x) { return x.get() == l; });
    });
}

void Adapter::EventHubsNodes::close() {
    for (auto& l : links_) l->link = nullptr;
    links_.clear();
}

void Adapter::EventHubsNodes::process(NodeLink& from) {
    size_t done = 0;
    while (!from.pending.empty() && from.link) {
        NodeLink::Pending p = std::move(from.pending.front());
        from.pending.pop_front();
        ++done;
        eh::NodeRequest req;
        std::string err;
        bool readable = eh::read_node_request(*p.message, req, err);
        // A request that cannot be answered is rejected, never accepted and left unanswered;
        // any other is accepted whatever its status: the status code is the answer.
        core::ErrorCondition refusal;
        NodeLink* to = req.reply_to.empty() ? nullptr : receiver(from.connection, req.reply_to);
        if (req.reply_to.empty())
            refusal = {"amqp:invalid-field", readable ? "a request needs a reply-to" : err};
        else if (!to)
            refusal = {"amqp:precondition-failed", "no receiver from " + from.node +
                                                       " named or addressed '" + req.reply_to +
                                                       "' on this connection"};
        else if (to->out.size() >= k_max_queued_responses)
            refusal = {"amqp:resource-limit-exceeded",
                       "the receiver '" + to->name + "' takes no responses"};
        if (p.delivery)
            a_.router_.disposition(p.delivery,
                                   refusal.empty() ? core::DeliveryState::accepted()
                                                   : core::DeliveryState::rejected(refusal),
                                   true);
        if (!refusal.empty()) {
            logger().debug("Event Hubs: request to {} refused: {}", from.node, refusal.description);
            continue;
        }
        uint64_t conn = from.connection;
        std::string reply_to = req.reply_to, id = req.message_id;
        auto reply = [this, conn, reply_to, id](int32_t status, std::string_view description,
                                                std::string_view condition = {},
                                                std::string_view body = {}) {
            answer(conn, reply_to,
                   eh::node_response(reply_to, id, status, description, condition, body));
        };
        if (!readable) {
            reply(bad_request, "malformed request: " + err, argument_error);
            continue;
        }
        if (from.node == eh::cbs_node) {
            // Trestle checks no tokens: the listener's SASL and TLS are what admit a client
            // (README, Event Hubs dialect). The SDKs need the claim accepted to go on.
            if (req.operation == "put-token")
                reply(accepted, "Accepted");
            else
                reply(bad_request, "$cbs supports put-token only, not '" + req.operation + "'",
                      not_implemented);
            continue;
        }
        if (req.operation != "READ") {
            reply(bad_request, "$management supports READ only, not '" + req.operation + "'",
                  not_implemented);
            continue;
        }
        if (req.name.empty()) {
            reply(bad_request, "no 'name' (the event hub) in the request", argument_error);
            continue;
        }
        if (!a_.probe_) {
            reply(server_error, "Kafka is not started", internal_error);
            continue;
        }
        // The answers need Kafka's metadata: asked on the probe's thread, answered on the loop
        // (`body` makes the answer from a successful description).
        auto answered = [this, reply, token = std::weak_ptr<bool>(alive_),
                         hub = req.name](auto body) {
            return [this, reply, token, hub, body](auto info) {
                asio::post(a_.loop_.io(), [reply, token, hub, body, info = std::move(info)] {
                    if (token.expired()) return;
                    if (info.not_found)
                        reply(not_found, "event hub (Kafka topic) '" + hub + "': " + info.error,
                              entity_not_found);
                    else if (!info.error.empty())
                        reply(server_error, "Kafka: " + info.error, internal_error);
                    else
                        reply(ok, "OK", {}, body(info));
                });
            };
        };
        if (req.type == "com.microsoft:eventhub") {
            a_.probe_->describe_topic(req.name,
                                      answered([hub = req.name](const Probe::TopicInfo& i) {
                                          return eh::encode(eh::HubProperties{hub, i.partitions});
                                      }));
        } else if (req.type == "com.microsoft:partition") {
            int32_t partition = -1;
            auto [end, ec] = std::from_chars(
                req.partition.data(), req.partition.data() + req.partition.size(), partition);
            if (ec != std::errc() || end != req.partition.data() + req.partition.size() ||
                partition < 0) {
                reply(bad_request, "'partition' must be a partition number", argument_error);
                continue;
            }
            a_.probe_->describe_partition(
                req.name, partition,
                answered([hub = req.name, partition](const Probe::PartitionInfo& i) {
                    return eh::encode(
                        eh::PartitionProperties{hub, partition, i.low, i.high, i.last_time_ms});
                }));
        } else {
            reply(bad_request, "unknown type '" + req.type + "'", not_implemented);
        }
    }
    if (done && from.link) a_.router_.credit(from.link, k_request_credit, false);
}

Adapter::EventHubsNodes::NodeLink* Adapter::EventHubsNodes::receiver(
    uint64_t connection, const std::string& reply_to) const {
    for (const auto& l : links_)
        if (!l->requests && l->link && l->connection == connection &&
            (l->name == reply_to || l->reply_address == reply_to))
            return l.get();
    return nullptr;
}

// The receiver was there when the request was accepted; one that detached since has no one to
// answer (its client is gone or closed it).
void Adapter::EventHubsNodes::answer(uint64_t connection, const std::string& reply_to,
                                     core::MessageRef response) {
    if (NodeLink* l = receiver(connection, reply_to)) {
        l->out.push_back(std::move(response));
        l->send();
    } else {
        logger().debug("Event Hubs: the receiver '{}' left before its response", reply_to);
    }
}

}  // namespace trestle::kafka
