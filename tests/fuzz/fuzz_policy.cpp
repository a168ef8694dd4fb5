// Fuzzes the vhost groups parser and the policy's matching rules. Input: a JSON groups object,
// then after a NUL byte, lines of "user host address filter" queries. Checks: no crash; an
// error names what is wrong; a literal MQTT filter is covered exactly when it matches; a
// ticket never allows what its group's lists do not.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "security/policy_config.hpp"

using namespace trestle;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    size_t nul = in.find('\0');
    std::string_view doc = in.substr(0, nul);
    std::string_view queries = nul == in.npos ? std::string_view{} : in.substr(nul + 1);

    json::Value v;
    json::ParseError perr;
    std::vector<core::PolicyGroup> groups;
    bool parsed = json::parse(doc, v, perr);
    if (parsed) {
        std::string err = security::parse_policy_groups(v, groups);
        if (!err.empty() && err.find('\'') == err.npos && err.rfind("groups:", 0) != 0)
            __builtin_trap();  // errors name the group or setting
        if (err.empty()) {
            // What management shows reads back the same.
            std::vector<core::PolicyGroup> again;
            if (!security::parse_policy_groups(security::policy_groups_json(groups), again)
                     .empty() ||
                again.size() != groups.size())
                __builtin_trap();
        }
    }
    core::Policy policy;
    core::PolicySettings ps;
    ps.enable_vhost_policy = true;
    ps.max_connections = 8;
    policy.configure(ps);
    core::VhostSettings vs;
    vs.hostname = "$default";
    vs.allow_unknown_user = true;
    vs.max_connections_per_user = 2;
    vs.groups = groups;
    (void)policy.set_vhost(vs);

    std::istringstream q{std::string(queries)};
    std::vector<std::unique_ptr<core::PolicyTicket>> held;
    for (std::string user, host, address, filter; q >> user >> host >> address >> filter;) {
        // The rules alone, on fuzzed patterns.
        bool literal = filter.find_first_of("+#") == filter.npos && filter.rfind("$share/", 0);
        if (literal &&
            core::policy_pattern_covers(address, filter) !=
                core::policy_pattern_match(address, filter) &&
            filter.find('.') == filter.npos)
            __builtin_trap();
        (void)core::policy_list_covers(address, filter);
        (void)core::policy_host_match(host, address);
        auto adm = policy.admit(user, host, "$default");
        if (!adm.ticket) {
            if (!adm.refused || adm.error.name.empty()) __builtin_trap();
            continue;
        }
        auto& t = *adm.ticket;
        bool src = t.allow_source(address), tgt = t.allow_target(address);
        (void)t.allow_filter(filter);
        if (t.restricted()) {
            const core::PolicyGroup* g = nullptr;
            for (const auto& gr : groups)
                if (gr.name == t.group()) g = &gr;
            if (!g) __builtin_trap();
            if ((src && g->sources.empty()) || (tgt && g->targets.empty())) __builtin_trap();
        }
        if (held.size() < 8) held.push_back(std::move(adm.ticket));
    }
    held.clear();
    if (policy.connections_current() != 0) __builtin_trap();
    return 0;
}
