#include "security/policy_config.hpp"

#include <cstring>

namespace trestle::security {

namespace {

// qdrouterd takes a string of names separated by commas and/or spaces; a JSON list too.
std::string names(const json::Value& v, std::vector<std::string>& out) {
    auto split = [&](const std::string& s) {
        std::string cur;
        for (char c : s) {
            if (c == ',' || c == ' ' || c == '\t' || c == '\n') {
                if (!cur.empty()) out.push_back(std::move(cur));
                cur.clear();
            } else {
                cur += c;
            }
        }
        if (!cur.empty()) out.push_back(std::move(cur));
    };
    if (v.is_string()) {
        split(v.as_string());
        return {};
    }
    if (v.is_array()) {
        for (const auto& e : v.as_array()) {
            if (!e.is_string()) return "expected a list of strings";
            split(e.as_string());
        }
        return {};
    }
    return "expected a string or a list of strings";
}

std::string number(const json::Value& v, uint64_t max, uint64_t& out) {
    int64_t n;
    if (v.is_int()) {
        n = v.as_int();
    } else if (v.is_string()) {
        const std::string& s = v.as_string();
        if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != s.npos)
            return "expected a number";
        n = std::stoll(s);
    } else {
        return "expected a number";
    }
    if (n < 0 || uint64_t(n) > max) return "must be between 0 and " + std::to_string(max);
    out = uint64_t(n);
    return {};
}

std::string flag(const json::Value& v, bool& out) {
    if (v.is_bool()) {
        out = v.as_bool();
        return {};
    }
    if (v.is_string() && (v.as_string() == "true" || v.as_string() == "yes")) {
        out = true;
        return {};
    }
    if (v.is_string() && (v.as_string() == "false" || v.as_string() == "no")) {
        out = false;
        return {};
    }
    return "expected true or false";
}

std::string one_group(const std::string& name, const json::Value& v, core::PolicyGroup& g) {
    if (!v.is_object()) return "expected an object of settings";
    g.name = name;
    g.remote_hosts.clear();
    bool hosts = false, sources = false, targets = false;
    for (const auto& member : v.as_object()) {
        // Named, not a structured binding: clang 14 (the fuzz build) cannot capture those.
        const std::string& key = member.first;
        const json::Value& val = member.second;
        std::string err;
        uint64_t n = 0;
        auto u32 = [&](uint32_t& out) {
            err = number(val, UINT32_MAX, n);
            out = uint32_t(n);
        };
        if (key == "users") {
            err = names(val, g.users);
        } else if (key == "remoteHosts") {
            hosts = true;
            err = names(val, g.remote_hosts);
            for (const auto& h : g.remote_hosts)
                if (err.empty()) err = core::policy_host_check(h);
        } else if (key == "sources" || key == "sourcePattern") {
            if (sources) return "give sources or sourcePattern, not both";
            sources = true;
            g.source_pattern = key == "sourcePattern";
            err = names(val, g.sources);
        } else if (key == "targets" || key == "targetPattern") {
            if (targets) return "give targets or targetPattern, not both";
            targets = true;
            g.target_pattern = key == "targetPattern";
            err = names(val, g.targets);
        } else if (key == "maxConnectionsPerUser") {
            u32(g.max_connections_per_user);
        } else if (key == "maxConnectionsPerHost") {
            u32(g.max_connections_per_host);
        } else if (key == "maxMessageSize") {
            err = number(val, INT64_MAX, g.max_message_size);
        } else if (key == "maxSessions") {
            u32(g.max_sessions);
        } else if (key == "maxSenders") {
            u32(g.max_senders);
        } else if (key == "maxReceivers") {
            u32(g.max_receivers);
        } else if (key == "allowDynamicSource") {
            err = flag(val, g.allow_dynamic_source);
        } else if (key == "allowAnonymousSender") {
            err = flag(val, g.allow_anonymous_sender);
        } else if (key == "allowUserIdProxy") {
            err = flag(val, g.allow_user_id_proxy);
        } else if (key == "allowManagementWrite") {
            err = flag(val, g.allow_management_write);
        } else if (key == "allowWaypointLinks" || key == "allowDynamicLinkRoutes" ||
                   key == "allowFallbackLinks" || key == "allowAdminStatusUpdate") {
            // They allow qdrouterd features Trestle does not have: nothing to grant.
            bool ignored;
            err = flag(val, ignored);
        } else if (key == "maxFrameSize" || key == "maxSessionWindow") {
            return "'" + key + "' is not supported by Trestle (set the listener's maxFrameSize)";
        } else {
            return "unknown setting '" + key + "'";
        }
        if (!err.empty()) return "'" + key + "': " + err;
    }
    // qdrouterd: a group without remoteHosts admits no host; say so instead of locking out.
    if (!hosts) return "needs remoteHosts (\"*\" for any host)";
    return {};
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

std::string parse_policy_groups(const json::Value& groups, std::vector<core::PolicyGroup>& out) {
    out.clear();
    if (!groups.is_object()) return "groups: expected a JSON object of groups";
    for (const auto& [name, v] : groups.as_object()) {
        if (name.empty()) return "groups: a group needs a name";
        for (const auto& g : out)
            if (g.name == name) return "groups: '" + name + "' is defined twice";
        core::PolicyGroup g;
        if (std::string err = one_group(name, v, g); !err.empty())
            return "group '" + name + "': " + err;
        for (const auto& u : g.users)
            for (const auto& other : out)
                for (const auto& ou : other.users)
                    if (ou == u)
                        return "user '" + u + "' is in groups '" + other.name + "' and '" + name +
                               "'";
        out.push_back(std::move(g));
    }
    return {};
}

json::Value policy_groups_json(const std::vector<core::PolicyGroup>& groups) {
    json::Object o;
    for (const auto& g : groups) {
        json::Object s;
        s.emplace_back("users", join(g.users));
        s.emplace_back("remoteHosts", join(g.remote_hosts));
        s.emplace_back(g.source_pattern ? "sourcePattern" : "sources", join(g.sources));
        s.emplace_back(g.target_pattern ? "targetPattern" : "targets", join(g.targets));
        if (g.max_connections_per_user)
            s.emplace_back("maxConnectionsPerUser", int64_t(g.max_connections_per_user));
        if (g.max_connections_per_host)
            s.emplace_back("maxConnectionsPerHost", int64_t(g.max_connections_per_host));
        if (g.max_message_size) s.emplace_back("maxMessageSize", int64_t(g.max_message_size));
        s.emplace_back("maxSessions", int64_t(g.max_sessions));
        s.emplace_back("maxSenders", int64_t(g.max_senders));
        s.emplace_back("maxReceivers", int64_t(g.max_receivers));
        s.emplace_back("allowDynamicSource", bool(g.allow_dynamic_source));
        s.emplace_back("allowAnonymousSender", bool(g.allow_anonymous_sender));
        s.emplace_back("allowUserIdProxy", bool(g.allow_user_id_proxy));
        s.emplace_back("allowManagementWrite", bool(g.allow_management_write));
        o.emplace_back(g.name, json::Value(std::move(s)));
    }
    return json::Value(std::move(o));
}

}  // namespace trestle::security
