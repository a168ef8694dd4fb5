// The schema's core: the entity types in order (their attributes are defined in schema_routing,
// schema_listeners, schema_kafka and schema_operational), the attributes every type shares,
// type coercion and the generated reference.
#include "management/schema.hpp"

#include "management/schema_attributes.hpp"

#include <algorithm>
#include <charconv>

namespace trestle::management {

using namespace schema;

const AttributeSchema* EntityTypeSchema::attribute(std::string_view name) const {
    for (const auto& a : attributes)
        if (a.name == name) return &a;
    return nullptr;
}

Schema::Schema() {
    add_router(types_);
    add_listener(types_);
    add_mqtt_listener(types_);
    add_connector(types_);
    add_address(types_);
    add_http_listener(types_);
    add_ssl_profile(types_);
    add_user_store(types_);
    add_policy(types_);
    add_vhost(types_);
    add_kafka(types_);
    add_kafka_route(types_);
    add_link_route(types_);
    add_operational(types_);
    // Trestle's operational additions to configured types.
    for (auto& t : types_) {
        if (t.short_name == "listener" || t.short_name == "mqttListener" ||
            t.short_name == "connector") {
            t.creatable = true;
            t.attributes.push_back(state("operStatus", "up, or down (with lastError)."));
            t.attributes.push_back(state("lastError", "Why it is down."));
        }
        if (t.short_name == "httpListener") {
            t.attributes.push_back(state("operStatus", "up, or down (with lastError)."));
            t.attributes.push_back(state("lastError", "Why it is down."));
        }
        if (t.short_name == "listener" || t.short_name == "mqttListener" ||
            t.short_name == "httpListener") {
            t.attributes.push_back(stat("boundPort",
                                        "The port it listens on (port 0: the one "
                                        "chosen)."));
            t.attributes.push_back(stat("connectionCount", "Connections it accepted, still open."));
        }
        if (t.short_name == "router.config.address" || t.short_name == "router.config.linkRoute" ||
            t.short_name == "kafkaRoute")
            t.creatable = true;
        if (t.short_name == "router.config.linkRoute")
            t.attributes.push_back(
                state("operStatus", "active (container connected) or inactive."));
        if (t.short_name == "kafka") {
            t.attributes.push_back(state("bootstrap",
                                         "The broker list in use (the embedded "
                                         "cluster's address: for kcat)."));
            t.attributes.push_back(state("operStatus",
                                         "up, or down while no broker answers or "
                                         "acknowledges (same as /readyz)."));
            t.attributes.push_back(state("lastError", "Why it is down."));
            t.attributes.push_back(stat("retainedCount", "Retained messages held."));
        }
        if (t.short_name == "kafkaRoute") {
            t.attributes.push_back(stat("produced", "Records Kafka acknowledged."));
            t.attributes.push_back(stat("produceFailed", "Records Kafka refused (rejected back)."));
            t.attributes.push_back(stat("inFlight", "Records produced, not yet acknowledged."));
            t.attributes.push_back(stat("consumed", "Records routed to consumers."));
            t.attributes.push_back(stat("deadLettered", "Records sent to the dead-letter topic."));
            t.attributes.push_back(stat("redelivered", "Records sent again after a release."));
            t.attributes.push_back(list("partitions",
                                        "Consumer partitions: [partition, committed offset, "
                                        "position, high watermark, lag] each."));
            t.attributes.push_back(stat("lag",
                                        "Records not yet settled by consumers, all "
                                        "partitions (null: not known yet)."));
        }
    }
    // Every type: name, identity and type first (qdrouterd's entity base type).
    for (auto& t : types_) {
        std::vector<AttributeSchema> head;
        if (!t.attribute("name")) head.push_back(state("name", "Unique name."));
        head.push_back(state("identity", "Unique, fixed for the entity's life."));
        head.push_back(state("type", "The entity type's long name."));
        for (auto& a : t.attributes) head.push_back(std::move(a));
        t.attributes = std::move(head);
        // name first, as qdrouterd lists it
        auto it = std::find_if(t.attributes.begin(), t.attributes.end(),
                               [](const AttributeSchema& a) { return a.name == "name"; });
        std::rotate(t.attributes.begin(), it, it + 1);
    }
}

std::vector<std::string> EntityTypeSchema::operations() const {
    std::vector<std::string> ops;
    if (creatable) ops.push_back("CREATE");
    if (updatable) ops.push_back("UPDATE");
    if (creatable || deletable) ops.push_back("DELETE");
    ops.push_back("READ");
    return ops;
}

std::string_view to_string(AttrType t) {
    switch (t) {
        case AttrType::string:
            return "string";
        case AttrType::integer:
            return "integer";
        case AttrType::boolean:
            return "boolean";
        case AttrType::enumeration:
            return "enumeration";
        case AttrType::port:
            return "string";
        case AttrType::map:
            return "map";
        case AttrType::list:
            return "list";
    }
    return "string";
}

const Schema& Schema::instance() {
    static const Schema s;
    return s;
}

const EntityTypeSchema* Schema::find(std::string_view name) const {
    std::string n(name);
    if (n == "address" || n == "linkRoute" || n == "autoLink") n = "router.config." + n;
    if (n.rfind(prefix, 0) == 0) n = n.substr(std::string_view(prefix).size());
    if (n.rfind("io.trestle.", 0) == 0) n = n.substr(11);
    if (n == "link" || n == "node") n = "router." + n;
    for (const auto& t : types_)
        if (t.short_name == n) return &t;
    return nullptr;
}

std::string camel_case(std::string_view name) {
    std::string out;
    bool up = false;
    for (char c : name) {
        if (c == '-') {
            up = true;
            continue;
        }
        out += up ? static_cast<char>(toupper(static_cast<unsigned char>(c))) : c;
        up = false;
    }
    return out;
}

static std::optional<int64_t> to_int(std::string_view s) {
    int64_t v;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string coerce(const AttributeSchema& a, const json::Value& raw, json::Value& out) {
    out = json::Value();
    out.line = raw.line;
    switch (a.type) {
        case AttrType::string:
            if (raw.is_string()) {
                out = raw;
                return {};
            }
            if (raw.is_int()) {
                out = json::Value(std::to_string(raw.as_int()));
                out.line = raw.line;
                return {};
            }
            return "expected a string";
        case AttrType::integer: {
            int64_t v;
            if (raw.is_int()) {
                v = raw.as_int();
            } else if (raw.is_string()) {
                auto i = to_int(raw.as_string());
                if (!i) return "'" + raw.as_string() + "' is not an integer";
                v = *i;
            } else {
                return "expected an integer";
            }
            if (v < a.min || v > a.max)
                return std::to_string(v) + " is out of range [" + std::to_string(a.min) + ", " +
                       std::to_string(a.max) + "]";
            out = json::Value(v);
            out.line = raw.line;
            return {};
        }
        case AttrType::boolean: {
            if (raw.is_bool()) {
                out = raw;
                return {};
            }
            if (raw.is_string()) {
                const std::string& s = raw.as_string();
                if (s == "yes" || s == "true" || s == "True" || s == "1") {
                    out = json::Value(true);
                } else if (s == "no" || s == "false" || s == "False" || s == "0") {
                    out = json::Value(false);
                } else {
                    return "'" + s + "' is not a boolean (yes/no/true/false)";
                }
                out.line = raw.line;
                return {};
            }
            return "expected a boolean";
        }
        case AttrType::enumeration: {
            if (!raw.is_string()) return "expected one of its values as a string";
            for (const auto& v : a.values)
                if (v == raw.as_string()) {
                    out = raw;
                    return {};
                }
            std::string all;
            for (const auto& v : a.values) all += (all.empty() ? "" : ", ") + v;
            return "'" + raw.as_string() + "' is not one of: " + all;
        }
        case AttrType::port: {
            std::string s = raw.is_int() ? std::to_string(raw.as_int())
                                         : (raw.is_string() ? raw.as_string() : "");
            if (s == "amqp") s = "5672";
            if (s == "amqps") s = "5671";
            if (s == "mqtt") s = "1883";
            if (s == "secure-mqtt") s = "8883";
            auto i = to_int(s);
            if (!i || *i < 0 || *i > 65535)
                return "'" + s + "' is not a port number or a known service (amqp, amqps, mqtt)";
            out = json::Value(*i);
            out.line = raw.line;
            return {};
        }
        case AttrType::map: {
            json::Value v = raw;
            if (raw.is_string()) {
                json::ParseError perr;
                if (!json::parse(raw.as_string(), v, perr) || !v.is_object()) {
                    if (a.nested)
                        return "expected a JSON object" +
                               (perr.message.empty() ? std::string()
                                                     : " (" + perr.message + ", line " +
                                                           std::to_string(perr.line) + " of it)");
                    return "expected a JSON object of string values, e.g. {\"acks\": \"all\"}";
                }
            }
            if (a.nested) {
                if (!v.is_object()) return "expected a JSON object";
                out = std::move(v);
                out.line = raw.line;
                return {};
            }
            if (!v.is_object()) return "expected an object of string values";
            json::Object o;
            for (const auto& [k, val] : v.as_object()) {
                if (val.is_string())
                    o.emplace_back(k, val);
                else if (val.is_int())
                    o.emplace_back(k, json::Value(std::to_string(val.as_int())));
                else if (val.is_bool())
                    o.emplace_back(k, json::Value(std::string(val.as_bool() ? "true" : "false")));
                else
                    return "'" + k + "' must be a string, number or boolean";
            }
            out = json::Value(std::move(o));
            out.line = raw.line;
            return {};
        }
        case AttrType::list:
            if (!raw.is_array()) return "expected a list";
            out = raw;
            return {};
    }
    return "unknown attribute type";
}

}  // namespace trestle::management

namespace trestle::management {

namespace {

std::string cell_text(std::string s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
}

std::string default_text(const AttributeSchema& a) {
    const json::Value& v = a.default_value;
    if (v.is_null()) return "";
    if (v.is_string()) return v.as_string().empty() ? "\"\"" : "`" + v.as_string() + "`";
    return "`" + json::dump(v) + "`";
}

}  // namespace

std::string reference_markdown() {
    std::string out;
    const auto& types = Schema::instance().types();
    out +=
        "Configuration sections (and management entity types that are also configuration). "
        "*runtime*: CREATE/DELETE through management take effect at once; *writable*: "
        "UPDATE changes it at runtime. What the router reports (state, counters) is read "
        "through management; a config file may not set it.\n";
    for (int pass = 0; pass < 2; ++pass) {
        out += pass == 0 ? "\n## Configuration\n" : "\n## Reported only (management)\n";
        for (const auto& t : types) {
            if (t.configurable != (pass == 0)) continue;
            out += "\n**`" + t.short_name + "`** (`" + t.long_name + "`";
            if (t.creatable) out += ", runtime";
            if (t.deletable) out += ", DELETE at runtime";
            if (t.singleton) out += ", at most one";
            out += "): " + t.description + "\n\n";
            out += "| attribute | type | default | description |\n|---|---|---|---|\n";
            std::vector<std::string> refused, reported;
            for (const auto& a : t.attributes) {
                if (a.name == "identity" || a.name == "type") continue;
                if (!a.supported) {
                    refused.push_back("`" + a.name + "`");
                    continue;
                }
                if (a.operational && pass == 0 && !a.writable) {
                    reported.push_back("`" + a.name + "`");
                    continue;
                }
                std::string type(to_string(a.type));
                if (a.type == AttrType::enumeration) {
                    type.clear();
                    for (const auto& v : a.values) type += (type.empty() ? "" : " | ") + v;
                }
                if (a.type == AttrType::integer && a.min != INT64_MIN && a.max != INT64_MAX)
                    type += " " + std::to_string(a.min) + "–" + std::to_string(a.max);
                std::string flags;
                if (a.required) flags += "*required*. ";
                if (a.writable) flags += "*writable*. ";
                out += "| `" + a.name + "` | " + cell_text(type) + " | " +
                       cell_text(default_text(a)) + " | " + flags + cell_text(a.description) +
                       " |\n";
            }
            if (!reported.empty()) {
                out += "\nAlso reported through management: ";
                for (size_t i = 0; i < reported.size(); ++i) out += (i ? ", " : "") + reported[i];
                out += " (GET-SCHEMA describes each).\n";
            }
            if (!refused.empty()) {
                out += "\nKnown from qdrouterd, refused as not implemented: ";
                for (size_t i = 0; i < refused.size(); ++i) out += (i ? ", " : "") + refused[i];
                out += ".\n";
            }
        }
    }
    return out;
}

}  // namespace trestle::management
