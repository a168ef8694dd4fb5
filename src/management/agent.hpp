// The `$management` node: AMQP Management (draft) requests as qdrouterd answers them, so stock
// qdstat/qdmanage and trestle-stat/trestle-manage work. Answers from the schema and from the
// entity providers the app registers; bound to the core as an in-process consumer.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "management/config.hpp"
#include "management/schema.hpp"
#include "trestle/core/ports.hpp"
#include "trestle/core/router.hpp"
#include "util/json.hpp"

namespace trestle::management {

// AMQP Management status codes (the HTTP ones, as the draft and qdrouterd use them).
namespace status {
inline constexpr int ok = 200, created = 201, no_content = 204, bad_request = 400, forbidden = 403,
                     not_found = 404, internal_error = 500, not_implemented = 501;
}

struct Status {
    int code = status::ok;
    std::string description;  // empty on success
    bool ok() const { return code < 300; }
    static Status error(int c, std::string d) { return {c, std::move(d)}; }
};

// What the app supplies for one entity type. Rows hold "identity" and "name"; the agent adds
// "type". A missing function means the operation is not available for the type.
struct Provider {
    std::function<std::vector<json::Object>()> query;
    // CREATE: `e` is validated against the schema. Fills `row` on success.
    std::function<Status(const Entity& e, json::Object& row)> create;
    // UPDATE of writable attributes, already type-checked.
    std::function<Status(const json::Object& row, const json::Object& changes)> update;
    std::function<Status(const json::Object& row)> remove;
};

struct Request {
    std::string operation;
    std::string type;  // entity operations: type, or QUERY's entityType
    std::string name, identity;
    bool has_offset = false, has_count = false;
    int64_t offset = 0, count = 0;
    std::vector<std::string> attribute_names;  // QUERY
    json::Object arguments;                    // every application property, as JSON
    json::Value body;                          // the amqp-value body (CREATE/UPDATE attributes)
};

struct Response {
    int code = status::ok;
    std::string description = "OK";
    json::Value body = json::Object{};
};

// Decodes a request message. Returns an error description (the request is malformed), or
// empty. `reply_to` and the encoded `correlation_id` are filled whenever they could be read.
std::string decode_request(std::string_view message, Request& out, std::string& reply_to,
                           std::string& correlation_id);
// The response message: `to` = the request's reply-to, its correlation-id copied unchanged.
std::string encode_response(const Response& r, std::string_view to,
                            std::string_view correlation_id);

class Agent {
  public:
    void set_provider(const std::string& short_name, Provider p) {
        providers_[short_name] = std::move(p);
    }
    // GET-LOG: the newest `limit` log records, oldest first.
    std::function<json::Array(size_t limit)> log_records;

    Response handle(const Request& r);

  private:
    Response query(const Request& r);
    Response entity_operation(const Request& r);
    Response node_listing(const Request& r,
                          const std::function<json::Value(const EntityTypeSchema&)>& per_type,
                          const json::Value& node_value);
    const EntityTypeSchema* type_of(const std::string& name, Response& err) const;
    json::Object complete(const EntityTypeSchema& t, json::Object row) const;

    std::map<std::string, Provider> providers_;
};

// The agent as a consumer of `$management` in the routing core: requests arrive as deliveries,
// are settled accepted, and each response is routed, settled, to the request's reply-to.
class AgentEndpoint final : public core::ConnectionPort, public core::LinkPort {
  public:
    using Post = std::function<void(std::function<void()>)>;
    AgentEndpoint(core::Router& router, Agent& agent, Post post);
    ~AgentEndpoint() override;
    void start();
    void stop();

    // core::LinkPort
    void deliver(core::Delivery& d) override;
    void update(core::Delivery& d, const core::DeliveryState&, bool settle) override;
    void flow(uint32_t, bool) override {}
    void drained() override {}
    void opened(const core::Terminus&, const core::Terminus&) override {}
    void detach(const core::ErrorCondition*) override { link_ = nullptr; }
    // core::ConnectionPort
    core::LinkPort* open_link(core::Link&, const core::AttachRequest&,
                              core::ErrorCondition&) override {
        return nullptr;
    }
    void close(const core::ErrorCondition&) override {}

  private:
    struct Pending {
        core::Delivery* delivery;  // null: arrived settled
        core::MessageRef message;
        // Its sender's policy group has no allowManagementWrite: CREATE/UPDATE/DELETE get 403.
        bool read_only = false;
    };
    void process();

    core::Router& router_;
    Agent& agent_;
    Post post_;
    core::Connection* conn_ = nullptr;
    core::Link* link_ = nullptr;
    std::deque<Pending> pending_;
    bool posted_ = false;
    static constexpr int32_t k_credit = 250;
};

}  // namespace trestle::management
