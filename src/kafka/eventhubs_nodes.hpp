// Event Hubs' request-response nodes on an `eventhubs` listener: `$cbs` (claims-based
// security) and `$management` (hub and partition properties), which every Azure SDK client
// talks to before it attaches to a hub. The messages' layout is mapping/eventhubs.hpp's.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "kafka/adapter.hpp"

namespace trestle::kafka {

class Adapter::EventHubsNodes {
  public:
    explicit EventHubsNodes(Adapter& a);
    ~EventHubsNodes();
    EventHubsNodes(const EventHubsNodes&) = delete;
    EventHubsNodes& operator=(const EventHubsNodes&) = delete;

    static bool is_node(std::string_view address);
    // A client's link to (sender) or from (receiver) a node, link routed to the adapter.
    core::LinkPort* open(core::Link& link, const core::AttachRequest& req,
                         const core::Terminus& source, const core::Terminus& target);
    // The adapter stops: forget every link (the core forgets them with the connection).
    void close();

  private:
    class NodeLink;
    bool alive(const NodeLink* l) const;
    void process(NodeLink& requests);
    // The client's receiver for responses to `reply_to` on that connection (null: none).
    NodeLink* receiver(uint64_t connection, const std::string& reply_to) const;
    void answer(uint64_t connection, const std::string& reply_to, core::MessageRef response);
    void drop(NodeLink* l);

    Adapter& a_;
    std::vector<std::unique_ptr<NodeLink>> links_;
    // Probe answers arrive on the loop after a hop through the probe's thread: they check it.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace trestle::kafka
