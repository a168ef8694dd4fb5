// Authorization: qdrouterd's `policy` and `vhost` (research/anchors.md, "Policy"). The core
// decides; every adapter asks. A connection is admitted once (user, remote host, vhost) and gets
// a ticket: its group's rules with ${user} substituted, asked about each attach, subscription,
// publish and management operation. Denials are counted per vhost and per user.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trestle/core/types.hpp"

namespace trestle::core {

// Settings of one group of a vhost (qdrouterd's vhostUserGroupSettings).
struct PolicyGroup {
    std::string name;
    std::vector<std::string> users;         // exact user names
    std::vector<std::string> remote_hosts;  // "*", IP addresses, "low-high" ranges
    // qdrouterd lists: exact addresses, a trailing '*' for a prefix, "*" for all; or, with
    // the *_pattern flag, address patterns ('*' one token, '#' any). ${user} is substituted.
    std::vector<std::string> sources, targets;
    bool source_pattern = false, target_pattern = false;
    uint32_t max_connections_per_user = 0;  // 0: the vhost's
    uint32_t max_connections_per_host = 0;
    uint64_t max_message_size = 0;  // 0: the vhost's
    uint32_t max_sessions = 65536;
    uint32_t max_senders = 2147483647;
    uint32_t max_receivers = 2147483647;
    bool allow_dynamic_source = false;
    bool allow_anonymous_sender = false;
    bool allow_user_id_proxy = false;
    // Trestle's: CREATE / UPDATE / DELETE through $management (reads need only the target).
    bool allow_management_write = false;
};

struct VhostSettings {
    std::string hostname;
    uint32_t max_connections = 65535;
    uint32_t max_connections_per_user = 65535;
    uint32_t max_connections_per_host = 65535;
    uint64_t max_message_size = 0;    // 0: the policy's
    bool allow_unknown_user = false;  // users in no group get the "$default" group
    std::vector<PolicyGroup> groups;
};

struct PolicySettings {
    uint32_t max_connections = 65535;  // all user connections
    uint64_t max_message_size = 0;     // 0: no limit beyond the listener's
    bool enable_vhost_policy = false;
    std::string default_vhost = "$default";  // used when the vhost asked for has no policy
};

enum class Denial : uint8_t {
    connection,    // not admitted (no group, host, or a connection limit)
    session,       // maxSessions
    sender,        // a producer link (target, anonymous, maxSenders)
    receiver,      // a consumer link (source, dynamic, maxReceivers)
    message,       // a message to a denied address (anonymous sender, MQTT PUBLISH, will)
    subscription,  // an MQTT topic filter
    message_size,  // over maxMessageSize
    management,    // a $management write without allowManagementWrite
};
inline constexpr size_t denial_kinds = 8;
std::string_view to_string(Denial d);

struct DenialCounts {
    uint64_t n[denial_kinds] = {};
    uint64_t total() const;
};

struct VhostStats {
    uint64_t connections_approved = 0;
    uint64_t connections_denied = 0;
    uint32_t connections_current = 0;
    DenialCounts denials;
    // Per user: bounded (the first `max_tracked_users` users; later ones are "(other)"),
    // because refused clients choose the names.
    std::map<std::string, DenialCounts, std::less<>> by_user;
    std::unordered_map<std::string, uint32_t> user_connections, host_connections;
};

class Policy;
struct VhostState;

// One admitted user connection. Counted until it is destroyed.
class PolicyTicket {
  public:
    ~PolicyTicket();
    PolicyTicket(const PolicyTicket&) = delete;
    PolicyTicket& operator=(const PolicyTicket&) = delete;

    const std::string& vhost() const;
    const std::string& user() const { return user_; }
    // The group the user's rules come from (empty when vhost policy is off: all allowed).
    const std::string& group() const { return group_name_; }
    bool restricted() const { return restricted_; }

    bool allow_source(std::string_view address) const;
    bool allow_target(std::string_view address) const;
    // An MQTT topic filter ('+', '#'; "$share/g/" stripped): allowed when the sources allow
    // every topic it can match.
    bool allow_filter(std::string_view filter) const;
    bool allow_dynamic_source() const { return !restricted_ || rules_.allow_dynamic_source; }
    bool allow_anonymous_sender() const { return !restricted_ || rules_.allow_anonymous_sender; }
    bool allow_user_id_proxy() const { return !restricted_ || rules_.allow_user_id_proxy; }
    bool allow_management_write() const { return !restricted_ || rules_.allow_management_write; }
    uint64_t max_message_size() const { return max_message_size_; }  // 0: none
    uint32_t max_sessions() const { return restricted_ ? rules_.max_sessions : UINT32_MAX; }
    uint32_t max_senders() const { return restricted_ ? rules_.max_senders : UINT32_MAX; }
    uint32_t max_receivers() const { return restricted_ ? rules_.max_receivers : UINT32_MAX; }

    // Counts a denial for this connection's vhost and user, and returns the condition to
    // refuse with: amqp:unauthorized-access (amqp:link:message-size-exceeded for sizes).
    ErrorCondition deny(Denial kind, std::string description) const;

    // Live link counts, kept by the adapter (maxSenders / maxReceivers / maxSessions).
    uint32_t senders = 0, receivers = 0, sessions = 0;

  private:
    friend class Policy;
    PolicyTicket() = default;
    std::shared_ptr<VhostState> vhost_;  // null: only the global limit applies
    std::shared_ptr<struct PolicyTotals> totals_;
    std::string user_, host_, group_name_;
    PolicyGroup rules_;  // the group with ${user} substituted
    bool restricted_ = false;
    uint64_t max_message_size_ = 0;
};

struct Admission {
    std::unique_ptr<PolicyTicket> ticket;  // null: refused (or no policy configured)
    bool refused = false;
    ErrorCondition error;  // refused: why (amqp:resource-limit-exceeded, unauthorized-access)
    bool limit = false;    // refused for a connection count (MQTT: quota exceeded)
};

class Policy {
  public:
    Policy();
    ~Policy();
    // A policy entity is configured (without one, nothing is checked or counted).
    bool configured() const { return configured_; }
    void configure(const PolicySettings& s);
    const PolicySettings& settings() const { return settings_; }
    // Adds or replaces a vhost (existing connections keep the rules they were admitted with).
    // Returns an error description, or empty.
    std::string set_vhost(VhostSettings v);
    bool remove_vhost(std::string_view hostname);
    const VhostSettings* vhost(std::string_view hostname) const;
    std::vector<std::string> vhost_names() const;
    // Statistics of a vhost (also of one removed while connections remain: not listed).
    const VhostStats* stats(std::string_view hostname) const;
    uint32_t connections_current() const;
    uint64_t connections_denied() const;

    // Admits a user connection. `user`: the authenticated name ("anonymous" when empty);
    // `remote_ip`: the peer's address without port; `vhost`: the AMQP open hostname or the
    // listener's policyVhost (empty: the default vhost).
    Admission admit(std::string_view user, std::string_view remote_ip, std::string_view vhost);

    static constexpr size_t max_tracked_users = 1000;

  private:
    bool configured_ = false;
    PolicySettings settings_;
    std::map<std::string, std::shared_ptr<VhostState>, std::less<>> vhosts_;
    std::shared_ptr<PolicyTotals> totals_;
};

// --- rules, exposed for the parser's checks, the tests and the fuzzer ---
// True when `address` matches qdrouterd's list entry (exact, "prefix*", "*").
bool policy_list_match(std::string_view entry, std::string_view address);
// True when `address` matches the address pattern ('*' one token, '#' zero or more; '.' and
// '/' separate tokens).
bool policy_pattern_match(std::string_view pattern, std::string_view address);
// True when every topic the MQTT filter can match is matched by the entry / the pattern.
bool policy_list_covers(std::string_view entry, std::string_view filter);
bool policy_pattern_covers(std::string_view pattern, std::string_view filter);
// True when `ip` is in the remoteHosts entry ("*", an address, or "low-high").
bool policy_host_match(std::string_view entry, std::string_view ip);
// Checks a remoteHosts entry; returns an error description or empty.
std::string policy_host_check(std::string_view entry);
// The address of "host:port", "[v6]:port" or a bare address.
std::string_view policy_host_of(std::string_view host_port);
// Replaces ${user} in `s`.
std::string policy_substitute(std::string_view s, std::string_view user);

}  // namespace trestle::core
