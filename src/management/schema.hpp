// The one schema of Trestle's entity types and their attributes: the config loader validates
// against it, and so will the management agent and the CLIs. No attribute is defined elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/json.hpp"

namespace trestle::management {

// map: string keys and values (a JSON object; in the section syntax, a JSON object as a string).
// list: operational values only (e.g. an MQTT session's subscriptions).
enum class AttrType { string, integer, boolean, enumeration, port, map, list };

struct AttributeSchema {
    std::string name;
    AttrType type = AttrType::string;
    json::Value default_value;  // null = no default
    bool required = false;
    bool writable = false;     // can be changed by UPDATE at runtime
    bool supported = true;     // known from qdrouterd but not implemented: using it is an error
    std::string instead;       // for an unsupported one: what to use instead (in the error)
    bool operational = false;  // state or statistic the router reports; never configured
    bool secret = false;       // a password: "***" in management reads, never logged
    bool nested = false;       // map: any JSON object (vhost groups), not string values
    std::vector<std::string> values;  // enumeration values
    int64_t min = INT64_MIN;
    int64_t max = INT64_MAX;
    std::string description;
};

struct EntityTypeSchema {
    std::string short_name;    // as in config files: "listener", "linkRoute"
    std::string long_name;     // as in management: "org.apache.qpid.dispatch.listener"
    bool singleton = false;    // at most one (router)
    bool configurable = true;  // a config-file section (else operational: management only)
    bool creatable = false;    // management CREATE and DELETE take effect at runtime
    bool updatable = false;    // management UPDATE of its writable attributes
    bool deletable = false;    // management DELETE only (e.g. an MQTT session)
    std::string description;
    std::vector<AttributeSchema> attributes;  // identity and type first, for every type

    const AttributeSchema* attribute(std::string_view name) const;
    // The management operations of this type, in qdrouterd's order.
    std::vector<std::string> operations() const;
};

class Schema {
  public:
    static const Schema& instance();
    const std::vector<EntityTypeSchema>& types() const { return types_; }
    // Accepts the short name, the long name, and qdrouterd's config-section aliases.
    const EntityTypeSchema* find(std::string_view name) const;

  private:
    Schema();
    std::vector<EntityTypeSchema> types_;
};

std::string_view to_string(AttrType t);

// Converts `raw` to the attribute's type. Config files give every value as a string; JSON
// and management give typed values. Returns an error description, or empty on success.
std::string coerce(const AttributeSchema& a, const json::Value& raw, json::Value& out);

// The README's reference section, generated from the schema (trestled --schema-reference):
// every entity type with its attributes, types, defaults and descriptions.
std::string reference_markdown();

// qdrouterd's config files allow hyphenated names: "sasl-mechanisms" -> "saslMechanisms".
std::string camel_case(std::string_view name);

}  // namespace trestle::management
