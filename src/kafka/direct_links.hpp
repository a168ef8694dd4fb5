// Direct topic access: links of a listener with a kafkaDialect are link routed to the Kafka
// adapter (prefixes "$strimzi/" and "$eventhubs/"), to a core connection of the adapter's own
// acting as their route container; direct_links.cpp opens them (kafka/direct_access.hpp).
#pragma once

#include "kafka/adapter.hpp"

namespace trestle::kafka {

class Adapter::DirectPort final : public core::ConnectionPort {
  public:
    explicit DirectPort(Adapter& a) : a_(a) {}
    core::LinkPort* open_link(core::Link& link, const core::AttachRequest& req,
                              core::ErrorCondition& refusal) override {
        return a_.open_direct(link, req, refusal);
    }
    void close(const core::ErrorCondition&) override {}

  private:
    Adapter& a_;
};

}  // namespace trestle::kafka
