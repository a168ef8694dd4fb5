// The vhost `groups` object (qdrouterd's vhostUserGroupSettings) read into the core's policy
// groups. Strict: an unknown setting, a wrong type or a bad host is an error naming it.
#pragma once

#include <string>
#include <vector>

#include "trestle/core/policy.hpp"
#include "util/json.hpp"

namespace trestle::security {

// Returns an error description (naming the group and setting), or empty on success.
std::string parse_policy_groups(const json::Value& groups, std::vector<core::PolicyGroup>& out);

// The groups as management shows them (lists as qdrouterd's comma-separated strings).
json::Value policy_groups_json(const std::vector<core::PolicyGroup>& groups);

}  // namespace trestle::security
