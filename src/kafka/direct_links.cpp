#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "kafka/adapter.hpp"
#include "kafka/direct_access.hpp"
#include "kafka/direct_links.hpp"
#include "kafka/eventhubs_nodes.hpp"
#include "kafka/records.hpp"
#include "kafka/route_in.hpp"
#include "kafka/route_out.hpp"

namespace trestle::kafka {

namespace asio = boost::asio;

namespace {
core::Terminus without_prefix(core::Terminus t) {
    if (DirectAccess* d = direct_access_for(t.address)) t.address.erase(0, d->prefix().size());
    return t;
}
}  // namespace

void Adapter::start_direct() {
    core::ConnectionInfo info;
    info.protocol = "kafka";
    info.role = "route-container";
    info.container_id = "$kafka-direct/" + settings_.name;
    info.host = bootstrap_;
    info.link_capacity = 1000;
    direct_port_ = std::make_unique<DirectPort>(*this);
    direct_core_ = router_.connection_opened(std::move(info), *direct_port_);
    for (DirectAccess* dialect : direct_dialects())
        for (auto dir : {core::Direction::incoming, core::Direction::outgoing}) {
            core::LinkRouteRule r;
            r.name = "$" + std::string(dialect->id()) +
                     (dir == core::Direction::incoming ? "-in" : "-out");
            r.prefix = dialect->prefix();
            r.direction = dir;
            r.container_id = "$kafka-direct/" + settings_.name;
            if (std::string err = router_.add_link_route(r); !err.empty())
                logger().error("kafka '{}': direct topic access unavailable: {}", settings_.name,
                               err);
        }
}

core::LinkPort* Adapter::open_direct(core::Link& link, const core::AttachRequest& req,
                                     core::ErrorCondition& err) {
    const core::Terminus& routed =
        req.direction == core::Direction::outgoing ? req.target : req.source;
    DirectAccess* dialect = direct_access_for(routed.address);
    if (!dialect) {  // the link routes cover the dialects' prefixes only
        err = {core::condition::not_found, "no such direct topic access"};
        return nullptr;
    }
    core::Terminus source = without_prefix(req.source), target = without_prefix(req.target);
    bool sender = req.direction == core::Direction::outgoing;  // the client's sender
    if (dialect->is_node(sender ? target.address : source.address)) {
        if (!eventhubs_nodes_) eventhubs_nodes_ = std::make_unique<EventHubsNodes>(*this);
        return eventhubs_nodes_->open(link, req, source, target);
    }
    // Opened after this port call (ports do not call into the core from inside one).
    auto answer = [this, source, target](core::Link* l, auto* port) {
        asio::post(loop_.io(), [this, l, port, source, target] {
            if (!has_direct(port) || port->link != l) return;  // the client detached meanwhile
            router_.peer_attached(l, source, target);
            refill_credit();
        });
    };
    RouteSettings s;
    s.name = std::string(dialect->id()) + "/" + req.name;
    if (sender) {
        DirectTarget t;
        if (dialect->read_target(target.address, t, err)) {
            s.topic = t.topic;
            auto in = std::make_unique<RouteIn>(*this, s);
            in->direct = dialect;
            in->partition = t.partition;
            in->link = &link;
            RouteIn* port = in.get();
            ins_.push_back(std::move(in));
            answer(&link, port);
            logger().info("{} sender '{}' to topic '{}'", dialect->title(), req.name,
                          s.topic.empty() ? "(per message)" : s.topic);
            return port;
        }
    } else {
        DirectConsume c;
        if (dialect->read_source(source.address, req.source.filter, c, err)) {
            s.topic = c.topic;
            auto out = std::make_unique<RouteOut>(*this, s);
            RouteOut* port = out.get();
            outs_.push_back(std::move(out));
            std::string error = port->start_direct(&link, *dialect, c);
            if (error.empty()) {
                answer(&link, port);
                return port;
            }
            port->link = nullptr;
            port->shutdown();
            outs_.pop_back();
            err = {std::string(dialect->subscribe_condition()), error};
        }
    }
    logger().info("{} {} '{}' on '{}' refused: {} {}", dialect->title(),
                  sender ? "sender" : "receiver", req.name,
                  sender ? target.address : source.address, err.name, err.description);
    return nullptr;
}

bool Adapter::has_direct(const void* port) const {
    for (const auto& r : ins_)
        if (r.get() == port) return true;
    for (const auto& o : outs_)
        if (o.get() == port) return true;
    return false;
}

// The client detached a direct link: its producer slots forget it, its consumer commits and
// leaves the group (after the port call).
void Adapter::drop_direct(RouteIn* r) {
    asio::post(loop_.io(), [this, r] {
        for (auto& s : slots_)
            if (s.route == r) s.route = nullptr;  // its delivery reports find no route
        std::erase_if(ins_, [r](const std::unique_ptr<RouteIn>& x) { return x.get() == r; });
    });
}

void Adapter::drop_direct(RouteOut* o) {
    asio::post(loop_.io(), [this, o] {
        for (auto it = outs_.begin(); it != outs_.end(); ++it)
            if (it->get() == o) {
                (*it)->shutdown();
                outs_.erase(it);
                return;
            }
    });
}
}  // namespace trestle::kafka
