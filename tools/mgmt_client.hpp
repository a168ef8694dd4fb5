// A blocking AMQP Management client for the CLIs: one connection, a dynamic reply address,
// requests sent in order to $management, responses matched by correlation id.
#pragma once

#include <cstdint>
#include <functional>
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
    // TLS as qdstat takes it: trust store, client certificate and key (PEM), peer name check.
    std::string ssl_trustfile, ssl_certificate, ssl_key, ssl_password;
    bool ssl_verify_peer_name = true;
};

// qdstat's connection options, shared by the CLIs: -b/--bus, -t/--timeout, --ssl,
// --ssl-trustfile, --ssl-certificate, --ssl-key, --ssl-password, --ssl-password-file,
// --ssl-disable-peer-name-verify, --sasl-mechanisms, --sasl-username, --sasl-password,
// --sasl-password-file. `key` is `arg` up to any '='; `value()` reads the option's argument.
// Returns false if `arg` is none of them; an unreadable password file ends the program (2).
bool connection_option(const std::string& arg, const std::string& key,
                       const std::function<std::string()>& value, MgmtOptions& o);
// After parsing: amqp:// and amqps:// URLs; any --ssl-* option implies TLS.
void finish_connection_options(MgmtOptions& o);
extern const char* const connection_options_usage;

// Sends every request and returns the responses in order. Throws std::runtime_error on
// connection failure or timeout (message says which).
std::vector<MgmtResponse> management_call(const MgmtOptions& o,
                                          const std::vector<MgmtRequest>& reqs);

// QUERY with paging (offset/count) until a short page: {attributeNames, results}.
MgmtResponse management_query(const MgmtOptions& o, const std::string& type,
                              const std::vector<std::string>& attributes, int64_t limit);

}  // namespace trestle::tools
