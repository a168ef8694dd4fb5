// A blocking AMQP Management client for the CLIs: one connection, a dynamic reply address,
// requests sent in order to $management, responses matched by correlation id.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/json.hpp"

namespace trestle::tools {

struct MgmtRequest {
    std::map<std::string, json::Value> properties;  // operation, entityType, type, name, ...
    json::Value body = json::Object{};
};

struct MgmtResponse {
    int status = 0;
    std::string description;
    json::Value body;
};

struct MgmtOptions {
    std::string url = "127.0.0.1:5672";
    double timeout_s = 5;
    std::string sasl_mechanisms;  // empty: no SASL layer (bare AMQP header, as qdstat)
    std::string user, password;
    bool tls = false;
};

// Sends every request and returns the responses in order. Throws std::runtime_error on
// connection failure or timeout (message says which).
std::vector<MgmtResponse> management_call(const MgmtOptions& o, const std::vector<MgmtRequest>& reqs);

// QUERY with paging (offset/count) until a short page: {attributeNames, results}.
MgmtResponse management_query(const MgmtOptions& o, const std::string& type,
                              const std::vector<std::string>& attributes, int64_t limit);

}  // namespace trestle::tools
