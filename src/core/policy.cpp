#include "trestle/core/policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "trestle/core/address_pattern.hpp"

namespace trestle::core {

struct PolicyTotals {
    uint32_t current = 0;
    uint64_t denied = 0;
};

struct VhostState {
    VhostSettings settings;
    VhostStats stats;
};

std::string_view to_string(Denial d) {
    switch (d) {
        case Denial::connection:
            return "connection";
        case Denial::session:
            return "session";
        case Denial::sender:
            return "sender";
        case Denial::receiver:
            return "receiver";
        case Denial::message:
            return "message";
        case Denial::subscription:
            return "subscription";
        case Denial::message_size:
            return "messageSize";
        case Denial::management:
            return "management";
    }
    return "unknown";
}

uint64_t DenialCounts::total() const {
    uint64_t t = 0;
    for (uint64_t v : n) t += v;
    return t;
}

namespace {

void count(VhostStats& s, std::string_view user, Denial kind) {
    s.denials.n[size_t(kind)]++;
    auto it = s.by_user.find(user);
    if (it == s.by_user.end()) {
        std::string key =
            s.by_user.size() < Policy::max_tracked_users ? std::string(user) : "(other)";
        it = s.by_user.try_emplace(std::move(key)).first;
    }
    it->second.n[size_t(kind)]++;
}

// MQTT filter levels; the shared-subscription prefix names a group, not topics.
std::string_view strip_share(std::string_view filter) {
    if (filter.rfind("$share/", 0) == 0) {
        size_t slash = filter.find('/', 7);
        return slash == filter.npos ? std::string_view{} : filter.substr(slash + 1);
    }
    return filter;
}

std::vector<std::string_view> filter_levels(std::string_view f) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (size_t i = 0; i <= f.size(); ++i)
        if (i == f.size() || f[i] == '/') {
            out.push_back(f.substr(start, i - start));
            start = i + 1;
        }
    return out;
}

bool pattern_match(const std::vector<std::string_view>& p, size_t pi,
                   const std::vector<std::string_view>& a, size_t ai, int depth) {
    if (depth > 64) return false;  // bounded: patterns are short, '#' runs are collapsed
    while (pi < p.size()) {
        if (p[pi] == "#") {
            while (pi + 1 < p.size() && p[pi + 1] == "#") ++pi;
            if (pi + 1 == p.size()) return true;
            for (size_t k = ai; k <= a.size(); ++k)
                if (pattern_match(p, pi + 1, a, k, depth + 1)) return true;
            return false;
        }
        if (ai == a.size()) return false;
        if (p[pi] != "*" && p[pi] != a[ai]) return false;
        ++pi, ++ai;
    }
    return ai == a.size();
}

// Does pattern p[pi..] match every topic filter f[fi..] can match?
bool pattern_covers(const std::vector<std::string_view>& p, size_t pi,
                    const std::vector<std::string_view>& f, size_t fi, int depth) {
    if (depth > 64) return false;
    while (pi < p.size()) {
        if (p[pi] == "#") {
            while (pi + 1 < p.size() && p[pi + 1] == "#") ++pi;
            if (pi + 1 == p.size()) return true;
            // '#' absorbs k literal or '+' levels; a filter '#' can only be absorbed by a
            // final '#', handled above.
            for (size_t k = fi; k <= f.size(); ++k) {
                if (pattern_covers(p, pi + 1, f, k, depth + 1)) return true;
                if (k < f.size() && f[k] == "#") break;
            }
            return false;
        }
        if (fi == f.size() || f[fi] == "#") return false;
        if (p[pi] == "*") {
            ++pi, ++fi;
            continue;
        }
        if (f[fi] == "+" || f[fi] != p[pi]) return false;
        ++pi, ++fi;
    }
    return fi == f.size();
}

using Ip = std::array<unsigned char, 16>;

bool parse_ip(std::string_view s, Ip& out) {
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    if (s.empty() || s.size() > 45) return false;
    char buf[46];
    memcpy(buf, s.data(), s.size());
    buf[s.size()] = 0;
    in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        out.fill(0);
        out[10] = out[11] = 0xff;  // IPv4-mapped, so both families compare in one space
        memcpy(out.data() + 12, &v4, 4);
        return true;
    }
    in6_addr v6;
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        memcpy(out.data(), &v6, 16);
        return true;
    }
    return false;
}

}  // namespace

bool policy_list_match(std::string_view entry, std::string_view address) {
    if (entry == "*") return true;
    if (!entry.empty() && entry.back() == '*')
        return address.substr(0, entry.size() - 1) == entry.substr(0, entry.size() - 1);
    return entry == address;
}

bool policy_pattern_match(std::string_view pattern, std::string_view address) {
    auto p = address_tokens(pattern);
    auto a = address_tokens(address);
    return pattern_match(p, 0, a, 0, 0);
}

bool policy_list_covers(std::string_view entry, std::string_view filter) {
    filter = strip_share(filter);
    if (filter.empty()) return false;
    if (entry == "*") return true;
    size_t wild = filter.find_first_of("+#");
    if (!entry.empty() && entry.back() == '*') {
        std::string_view prefix = entry.substr(0, entry.size() - 1);
        // Every topic matched starts with the filter's text up to its first wildcard.
        std::string_view literal = filter.substr(0, wild);
        return literal.substr(0, prefix.size()) == prefix && literal.size() >= prefix.size();
    }
    return wild == filter.npos && entry == filter;
}

bool policy_pattern_covers(std::string_view pattern, std::string_view filter) {
    filter = strip_share(filter);
    if (filter.empty()) return false;
    auto p = address_tokens(pattern);
    auto f = filter_levels(filter);
    return pattern_covers(p, 0, f, 0, 0);
}

std::string policy_host_check(std::string_view entry) {
    if (entry == "*") return {};
    size_t dash = entry.find('-');
    Ip lo, hi;
    if (dash == entry.npos) {
        if (!parse_ip(entry, lo)) return "'" + std::string(entry) + "' is not an IP address";
        return {};
    }
    if (!parse_ip(entry.substr(0, dash), lo) || !parse_ip(entry.substr(dash + 1), hi))
        return "'" + std::string(entry) + "' is not an IP address range";
    if (hi < lo) return "range '" + std::string(entry) + "' ends before it starts";
    return {};
}

bool policy_host_match(std::string_view entry, std::string_view ip) {
    if (entry == "*") return true;
    Ip addr, lo, hi;
    if (!parse_ip(ip, addr)) return false;
    size_t dash = entry.find('-');
    if (dash == entry.npos) return parse_ip(entry, lo) && lo == addr;
    return parse_ip(entry.substr(0, dash), lo) && parse_ip(entry.substr(dash + 1), hi) &&
           lo <= addr && addr <= hi;
}

std::string_view policy_host_of(std::string_view hp) {
    if (!hp.empty() && hp.front() == '[') {
        size_t end = hp.find(']');
        return end == hp.npos ? hp : hp.substr(1, end - 1);
    }
    size_t colon = hp.find(':');
    if (colon != hp.npos && hp.find(':', colon + 1) == hp.npos) return hp.substr(0, colon);
    return hp;
}

std::string policy_substitute(std::string_view s, std::string_view user) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, 7, "${user}") == 0) {
            out += user;
            i += 7;
        } else {
            out += s[i++];
        }
    }
    return out;
}

// --- ticket ---

PolicyTicket::~PolicyTicket() {
    if (totals_) totals_->current--;
    if (!vhost_) return;
    auto& st = vhost_->stats;
    st.connections_current--;
    if (auto it = st.user_connections.find(user_); it != st.user_connections.end())
        if (--it->second == 0) st.user_connections.erase(it);
    if (auto it = st.host_connections.find(host_); it != st.host_connections.end())
        if (--it->second == 0) st.host_connections.erase(it);
}

const std::string& PolicyTicket::vhost() const {
    static const std::string none;
    return vhost_ ? vhost_->settings.hostname : none;
}

namespace {

// Does an entry of a group's sources or targets allow `s`: an address, or with `filter` an MQTT
// topic filter (every topic it can match)?
bool any_allows(const std::vector<std::string>& entries, bool patterns, std::string_view s,
                bool filter) {
    for (const auto& e : entries)
        if (filter ? (patterns ? policy_pattern_covers(e, s) : policy_list_covers(e, s))
                   : (patterns ? policy_pattern_match(e, s) : policy_list_match(e, s)))
            return true;
    return false;
}

}  // namespace

bool PolicyTicket::allow_source(std::string_view address) const {
    return !restricted_ || any_allows(rules_.sources, rules_.source_pattern, address, false);
}

bool PolicyTicket::allow_target(std::string_view address) const {
    return !restricted_ || any_allows(rules_.targets, rules_.target_pattern, address, false);
}

bool PolicyTicket::allow_filter(std::string_view filter) const {
    return !restricted_ || any_allows(rules_.sources, rules_.source_pattern, filter, true);
}

ErrorCondition PolicyTicket::deny(Denial kind, std::string description) const {
    if (vhost_) count(vhost_->stats, user_, kind);
    return {kind == Denial::message_size ? "amqp:link:message-size-exceeded"
                                         : "amqp:unauthorized-access",
            std::move(description)};
}

// --- policy ---

Policy::Policy() : totals_(std::make_shared<PolicyTotals>()) {}
Policy::~Policy() = default;

void Policy::configure(const PolicySettings& s) {
    settings_ = s;
    configured_ = true;
}

std::string Policy::set_vhost(VhostSettings v) {
    if (v.hostname.empty()) return "a vhost needs a hostname";
    for (const auto& g : v.groups) {
        for (const auto& h : g.remote_hosts)
            if (std::string err = policy_host_check(h); !err.empty())
                return "group '" + g.name + "' remoteHosts: " + err;
    }
    auto it = vhosts_.find(v.hostname);
    if (it != vhosts_.end()) {
        // Replaced: statistics and live counts go on; new connections get the new rules.
        it->second->settings = std::move(v);
        return {};
    }
    auto st = std::make_shared<VhostState>();
    std::string name = v.hostname;
    st->settings = std::move(v);
    vhosts_.emplace(std::move(name), std::move(st));
    return {};
}

bool Policy::remove_vhost(std::string_view hostname) {
    auto it = vhosts_.find(hostname);
    if (it == vhosts_.end()) return false;
    vhosts_.erase(it);  // admitted connections keep their state through their tickets
    return true;
}

const VhostSettings* Policy::vhost(std::string_view hostname) const {
    auto it = vhosts_.find(hostname);
    return it == vhosts_.end() ? nullptr : &it->second->settings;
}

std::vector<std::string> Policy::vhost_names() const {
    std::vector<std::string> out;
    for (const auto& [n, _] : vhosts_) out.push_back(n);
    return out;
}

const VhostStats* Policy::stats(std::string_view hostname) const {
    auto it = vhosts_.find(hostname);
    return it == vhosts_.end() ? nullptr : &it->second->stats;
}

uint32_t Policy::connections_current() const {
    return totals_->current;
}
uint64_t Policy::connections_denied() const {
    return totals_->denied;
}

Admission Policy::admit(std::string_view user_in, std::string_view remote_ip,
                        std::string_view vhost_name) {
    Admission a;
    if (!configured_) return a;
    std::string user = user_in.empty() ? "anonymous" : std::string(user_in);
    auto refuse = [&](VhostState* vh, const char* cond, std::string why, bool limit) {
        totals_->denied++;
        if (vh) {
            vh->stats.connections_denied++;
            count(vh->stats, user, Denial::connection);
        }
        a.refused = true;
        a.limit = limit;
        a.error = {cond, std::move(why)};
        return std::move(a);
    };
    if (totals_->current >= settings_.max_connections)
        return refuse(nullptr, condition::resource_limit,
                      "connection limit of the router reached (policy maxConnections " +
                          std::to_string(settings_.max_connections) + ")",
                      true);

    auto t = std::unique_ptr<PolicyTicket>(new PolicyTicket());
    t->user_ = user;
    t->host_ = remote_ip;
    t->max_message_size_ = settings_.max_message_size;
    if (settings_.enable_vhost_policy) {
        auto it = vhost_name.empty() ? vhosts_.end() : vhosts_.find(vhost_name);
        if (it == vhosts_.end()) it = vhosts_.find(settings_.default_vhost);
        if (it == vhosts_.end())
            return refuse(nullptr, "amqp:unauthorized-access",
                          "no policy for vhost '" + std::string(vhost_name) + "'", false);
        VhostState& vh = *it->second;
        const VhostSettings& vs = vh.settings;
        const PolicyGroup* group = nullptr;
        for (const auto& g : vs.groups)
            if (std::find(g.users.begin(), g.users.end(), user) != g.users.end()) {
                group = &g;
                break;
            }
        if (!group && vs.allow_unknown_user)
            for (const auto& g : vs.groups)
                if (g.name == "$default") group = &g;
        if (!group)
            return refuse(&vh, "amqp:unauthorized-access",
                          "user '" + user + "' is in no group of vhost '" + vs.hostname + "'",
                          false);
        bool host_ok = false;
        for (const auto& h : group->remote_hosts) host_ok |= policy_host_match(h, remote_ip);
        if (!host_ok)
            return refuse(&vh, "amqp:unauthorized-access",
                          "host " + std::string(remote_ip) + " is not allowed for group '" +
                              group->name + "' of vhost '" + vs.hostname + "'",
                          false);
        auto& st = vh.stats;
        uint32_t per_user = group->max_connections_per_user ? group->max_connections_per_user
                                                            : vs.max_connections_per_user;
        uint32_t per_host = group->max_connections_per_host ? group->max_connections_per_host
                                                            : vs.max_connections_per_host;
        auto used = [](const auto& m, const std::string& k) {
            auto i = m.find(k);
            return i == m.end() ? 0u : i->second;
        };
        if (st.connections_current >= vs.max_connections)
            return refuse(&vh, condition::resource_limit,
                          "connection limit of vhost '" + vs.hostname + "' reached (" +
                              std::to_string(vs.max_connections) + ")",
                          true);
        if (used(st.user_connections, user) >= per_user)
            return refuse(&vh, condition::resource_limit,
                          "connection limit for user '" + user + "' reached (" +
                              std::to_string(per_user) + ")",
                          true);
        if (used(st.host_connections, t->host_) >= per_host)
            return refuse(&vh, condition::resource_limit,
                          "connection limit for host " + t->host_ + " reached (" +
                              std::to_string(per_host) + ")",
                          true);
        t->vhost_ = it->second;
        t->group_name_ = group->name;
        t->restricted_ = true;
        t->rules_ = *group;
        for (auto& s : t->rules_.sources) s = policy_substitute(s, user);
        for (auto& s : t->rules_.targets) s = policy_substitute(s, user);
        uint64_t size = group->max_message_size ? group->max_message_size
                        : vs.max_message_size   ? vs.max_message_size
                                                : settings_.max_message_size;
        t->max_message_size_ = size;
        st.connections_approved++;
        st.connections_current++;
        st.user_connections[user]++;
        st.host_connections[t->host_]++;
    }
    t->totals_ = totals_;
    totals_->current++;
    a.ticket = std::move(t);
    return a;
}

}  // namespace trestle::core
