#include "management/agent.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "amqp/codec.hpp"
#include "util/log.hpp"

namespace trestle::management {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::MANAGEMENT);
}
}  // namespace

namespace {

constexpr std::string_view k_node_type = "org.amqp.management";
constexpr const char* k_base = "org.apache.qpid.dispatch.";

// An AMQP array of strings or symbols (Proton C++ encodes std::vector<std::string> so).
bool read_string_array(std::string_view raw, std::vector<std::string>& out) {
    auto u = [&](size_t i) { return static_cast<uint8_t>(raw[i]); };
    if (raw.empty()) return false;
    size_t pos, count;
    if (u(0) == 0xe0) {
        if (raw.size() < 3) return false;
        count = u(2);
        pos = 3;
    } else if (u(0) == 0xf0) {
        if (raw.size() < 9) return false;
        count = (size_t(u(5)) << 24) | (size_t(u(6)) << 16) | (size_t(u(7)) << 8) | u(8);
        pos = 9;
    } else {
        return false;
    }
    if (pos >= raw.size()) return count == 0;
    uint8_t c = u(pos++);
    bool wide = c == 0xb1 || c == 0xb3;
    if (c != 0xa1 && c != 0xa3 && !wide) return false;
    for (size_t k = 0; k < count; ++k) {
        size_t len;
        if (wide) {
            if (pos + 4 > raw.size()) return false;
            len = (size_t(u(pos)) << 24) | (size_t(u(pos + 1)) << 16) | (size_t(u(pos + 2)) << 8) |
                  u(pos + 3);
            pos += 4;
        } else {
            if (pos + 1 > raw.size()) return false;
            len = u(pos++);
        }
        if (pos + len > raw.size()) return false;
        out.emplace_back(raw.substr(pos, len));
        pos += len;
    }
    return true;
}

json::Value to_json(const amqp::Value& v) {
    using T = amqp::Value::Type;
    switch (v.type) {
        case T::null:
            return nullptr;
        case T::boolean:
            return v.b;
        case T::ubyte:
        case T::ushort:
        case T::uint:
        case T::ulong:
            return json::Value(static_cast<int64_t>(v.u));
        case T::byte:
        case T::short_:
        case T::int_:
        case T::long_:
        case T::timestamp:
            return json::Value(v.i);
        case T::float_:
        case T::double_:
            return v.d;
        case T::list: {
            json::Array a;
            for (const auto& i : v.items) a.push_back(to_json(i));
            return a;
        }
        case T::map: {
            json::Object o;
            for (const auto& [k, val] : v.entries) o.emplace_back(k.to_text(), to_json(val));
            return o;
        }
        case T::array: {
            std::vector<std::string> s;
            json::Array a;
            if (read_string_array(v.bytes, s))
                for (auto& x : s) a.emplace_back(std::move(x));
            return a;
        }
        default:
            return v.to_text();
    }
}

void write_json(amqp::Writer& w, const json::Value& v) {
    if (v.is_null()) {
        w.null();
    } else if (v.is_bool()) {
        w.boolean(v.as_bool());
    } else if (v.is_int()) {
        w.int64(v.as_int());
    } else if (v.is_double()) {
        amqp::Value d;
        d.type = amqp::Value::Type::double_;
        d.d = v.as_double();
        w.value(d);
    } else if (v.is_string()) {
        w.string(v.as_string());
    } else if (v.is_array()) {
        size_t m = w.begin_list();
        for (const auto& i : v.as_array()) write_json(w, i);
        w.end_list(m, static_cast<uint32_t>(v.as_array().size()));
    } else {
        size_t m = w.begin_map();
        for (const auto& [k, val] : v.as_object()) {
            w.string(k);
            write_json(w, val);
        }
        w.end_map(m, static_cast<uint32_t>(v.as_object().size() * 2));
    }
}

const json::Value* member(const json::Object& o, std::string_view key) {
    for (const auto& [k, v] : o)
        if (k == key) return &v;
    return nullptr;
}

std::string text_of(const json::Object& o, std::string_view key) {
    const json::Value* v = member(o, key);
    if (!v || v->is_null()) return {};
    if (v->is_string()) return v->as_string();
    if (v->is_int()) return std::to_string(v->as_int());
    return json::dump(*v);
}

Response fail(int code, std::string description) {
    Response r;
    r.code = code;
    r.description = std::move(description);
    r.body = json::Object{};
    return r;
}

}  // namespace

std::string decode_request(std::string_view message, Request& out, std::string& reply_to,
                           std::string& correlation_id) {
    amqp::MessageLayout l;
    if (std::string err = amqp::scan_message(message, l); !err.empty()) return err;
    reply_to.assign(l.reply_to);
    if (l.properties.present()) {
        // correlation-id (field 5) copied as its encoding: the client matches on type and value.
        amqp::Reader r(message.substr(l.properties.offset, l.properties.size));
        size_t end = 0;
        if (r.read_descriptor()) {
            auto n = r.enter_list(end);
            for (uint32_t i = 0; n && i < *n && i <= 5; ++i) {
                size_t start = r.offset();
                if (!r.skip_value()) break;
                if (i == 5) correlation_id.assign(r.raw_begin() + start, r.offset() - start);
            }
        }
    }
    if (!l.application_properties.present()) return "no application-properties (no operation)";
    {
        amqp::Reader r(
            message.substr(l.application_properties.offset, l.application_properties.size));
        amqp::Value ap;
        if (!r.read_descriptor() || !amqp::read_value(r, ap) || ap.type != amqp::Value::Type::map)
            return "application-properties is not a map";
        for (const auto& [k, v] : ap.entries) {
            if (!k.is_textual()) return "application-properties keys must be strings";
            out.arguments.emplace_back(k.bytes, to_json(v));
            const amqp::Value& val = v;  // (clang 14: no structured bindings in lambdas)
            auto text = [&val]() -> std::string {
                return val.is_textual() ? val.bytes : val.to_text();
            };
            if (k.bytes == "operation")
                out.operation = text();
            else if (k.bytes == "type" || k.bytes == "entityType") {
                if (out.type.empty() || k.bytes == "entityType") out.type = text();
            } else if (k.bytes == "name")
                out.name = text();
            else if (k.bytes == "identity")
                out.identity = text();
            else if (k.bytes == "offset" || k.bytes == "count") {
                auto i = v.as_integer();
                if (!i || *i < 0) return "'" + k.bytes + "' must be a non-negative integer";
                (k.bytes == "offset" ? out.offset : out.count) = *i;
                (k.bytes == "offset" ? out.has_offset : out.has_count) = true;
            }
        }
    }
    if (out.operation.empty()) return "no 'operation' application property";
    // Node operations name the node itself ("self", org.amqp.management): not an entity type.
    if (out.type == k_node_type) out.type.clear();
    if (l.body.present()) {
        amqp::Reader r(message.substr(l.body.offset, l.body.size));
        auto code = r.read_descriptor();
        amqp::Value b;
        if (code == 0x77 && amqp::read_value(r, b)) {
            out.body = to_json(b);
            if (b.type == amqp::Value::Type::map)
                if (const amqp::Value* names = b.get("attributeNames")) {
                    json::Value n = to_json(*names);
                    if (!n.is_array()) return "attributeNames must be a list of strings";
                    for (const auto& s : n.as_array()) {
                        if (!s.is_string()) return "attributeNames must be a list of strings";
                        out.attribute_names.push_back(s.as_string());
                    }
                }
        }
    }
    return {};
}

std::string encode_response(const Response& resp, std::string_view to,
                            std::string_view correlation_id) {
    amqp::Writer w;
    w.response_properties(to, correlation_id);
    w.descriptor(0x74);
    size_t ap = w.begin_map();
    w.string("statusCode");
    w.int32(resp.code);
    w.string("statusDescription");
    w.string(resp.description);
    w.end_map(ap, 4);
    w.descriptor(0x77);
    write_json(w, resp.body);
    return std::move(w.out());
}

const EntityTypeSchema* Agent::type_of(const std::string& name, Response& err) const {
    if (name.empty()) {
        err = fail(status::bad_request, "No entity type given");
        return nullptr;
    }
    const EntityTypeSchema* t = Schema::instance().find(name);
    if (!t) {
        std::string full = name.find('.') == std::string::npos ? k_base + name : name;
        err = fail(status::bad_request, "No such entity type '" + full + "'");
    }
    return t;
}

// Every schema attribute in schema order (null where the provider has none), plus the type.
json::Object Agent::complete(const EntityTypeSchema& t, json::Object row) const {
    json::Object out;
    out.reserve(t.attributes.size());
    for (const auto& a : t.attributes) {
        if (!a.supported) continue;
        if (a.name == "type") {
            out.emplace_back("type", t.long_name);
            continue;
        }
        json::Value v;
        for (auto& [k, val] : row)
            if (k == a.name) {
                v = std::move(val);
                break;
            }
        out.emplace_back(a.name, std::move(v));
    }
    return out;
}

Response Agent::handle(const Request& r) {
    const std::string& op = r.operation;
    if (op == "QUERY") return query(r);
    if (op == "CREATE" || op == "READ" || op == "UPDATE" || op == "DELETE")
        return entity_operation(r);
    if (op == "GET-MGMT-NODES") {
        Response ok;
        ok.body = json::Array{};  // standalone: no other routers
        return ok;
    }
    if (op == "GET-TYPES")
        return node_listing(
            r,
            [](const EntityTypeSchema& t) {
                json::Array bases;
                bases.emplace_back(std::string(k_base) +
                                   (t.configurable ? "configurationEntity" : "operationalEntity"));
                bases.emplace_back(std::string(k_base) + "entity");
                return json::Value(std::move(bases));
            },
            json::Array{});
    if (op == "GET-ATTRIBUTES")
        return node_listing(
            r,
            [](const EntityTypeSchema& t) {
                json::Array names;
                for (const auto& a : t.attributes)
                    if (a.supported) names.emplace_back(a.name);
                return json::Value(std::move(names));
            },
            json::Array{"name", "identity", "type"});
    if (op == "GET-OPERATIONS")
        return node_listing(
            r,
            [](const EntityTypeSchema& t) {
                json::Array ops;
                for (auto& o : t.operations()) ops.emplace_back(o);
                return json::Value(std::move(ops));
            },
            json::Array{"QUERY", "GET-TYPES", "GET-ANNOTATIONS", "GET-OPERATIONS", "GET-ATTRIBUTES",
                        "GET-MGMT-NODES", "GET-SCHEMA", "GET-LOG"});
    if (op == "GET-ANNOTATIONS") {
        Response ok;
        ok.body = json::Object{};
        return ok;
    }
    if (op == "GET-SCHEMA") {
        json::Object types;
        for (const auto& t : Schema::instance().types()) {
            json::Object attrs;
            for (const auto& a : t.attributes) {
                if (!a.supported) continue;
                json::Object d;
                d.emplace_back("type", std::string(to_string(a.type)));
                d.emplace_back("description", a.description);
                if (!a.default_value.is_null()) d.emplace_back("default", a.default_value);
                if (a.required) d.emplace_back("required", true);
                if (a.type == AttrType::enumeration) {
                    json::Array vals;
                    for (const auto& v : a.values) vals.emplace_back(v);
                    d.emplace_back("values", std::move(vals));
                }
                if (a.type == AttrType::integer && !a.operational) {
                    d.emplace_back("min", a.min);
                    d.emplace_back("max", a.max);
                }
                d.emplace_back("create", t.creatable && !a.operational);
                d.emplace_back("update", a.writable);
                d.emplace_back("graph", a.operational && a.type == AttrType::integer);
                attrs.emplace_back(a.name, std::move(d));
            }
            json::Array ops;
            for (auto& o : t.operations()) ops.emplace_back(o);
            json::Object e;
            e.emplace_back("description", t.description);
            e.emplace_back("shortName", t.short_name);
            e.emplace_back("configuration", t.configurable);
            e.emplace_back("operations", std::move(ops));
            e.emplace_back("attributes", std::move(attrs));
            types.emplace_back(t.long_name, std::move(e));
        }
        Response ok;
        ok.body = json::Object{{"entityTypes", json::Value(std::move(types))}};
        return ok;
    }
    if (op == "GET-LOG") {
        size_t limit = 1000;
        if (const json::Value* l = member(r.arguments, "limit");
            l && l->is_int() && l->as_int() >= 0)
            limit = static_cast<size_t>(l->as_int());
        Response ok;
        ok.body = log_records ? log_records(limit) : json::Array{};
        return ok;
    }
    return fail(status::not_implemented, "Operation '" + op + "' is not implemented");
}

Response Agent::node_listing(const Request& r,
                             const std::function<json::Value(const EntityTypeSchema&)>& per_type,
                             const json::Value& node_value) {
    json::Object out;
    if (!r.type.empty()) {
        Response err;
        const EntityTypeSchema* t = type_of(r.type, err);
        if (!t) return err;
        out.emplace_back(t->long_name, per_type(*t));
    } else {
        out.emplace_back(std::string(k_base) + "org.amqp.management", node_value);
        for (const auto& t : Schema::instance().types()) out.emplace_back(t.long_name, per_type(t));
    }
    Response ok;
    ok.body = std::move(out);
    return ok;
}

Response Agent::query(const Request& r) {
    std::vector<const EntityTypeSchema*> types;
    if (r.type.empty()) {
        // No entityType: every entity of every type (the draft's "all"), names must be common.
        for (const auto& t : Schema::instance().types()) types.push_back(&t);
    } else {
        Response err;
        const EntityTypeSchema* t = type_of(r.type, err);
        if (!t) return err;
        types.push_back(t);
    }
    std::vector<std::string> names = r.attribute_names;
    if (names.empty()) {
        if (types.size() == 1)
            for (const auto& a : types[0]->attributes) {
                if (a.supported) names.push_back(a.name);
            }
        else
            names = {"name", "identity", "type"};
    }
    if (types.size() == 1)
        for (const auto& n : names)
            if (!types[0]->attribute(n))
                return fail(status::bad_request,
                            "Unknown attribute '" + n + "' of " + types[0]->long_name);
    json::Array rows;
    int64_t index = 0;
    for (const EntityTypeSchema* t : types) {
        auto p = providers_.find(t->short_name);
        if (p == providers_.end() || !p->second.query) continue;
        for (auto& raw : p->second.query()) {
            if (index++ < r.offset) continue;
            if (r.has_count && static_cast<int64_t>(rows.size()) >= r.count) break;
            json::Object row = complete(*t, std::move(raw));
            json::Array values;
            values.reserve(names.size());
            for (const auto& n : names) {
                const json::Value* v = member(row, n);
                values.push_back(v ? *v : json::Value());
            }
            rows.emplace_back(std::move(values));
        }
    }
    json::Array name_list;
    for (const auto& n : names) name_list.emplace_back(n);
    Response ok;
    ok.body = json::Object{{"attributeNames", json::Value(std::move(name_list))},
                           {"results", json::Value(std::move(rows))}};
    return ok;
}

Response Agent::entity_operation(const Request& r) {
    Response err;
    const EntityTypeSchema* t = type_of(r.type, err);
    if (!t) return err;
    auto p = providers_.find(t->short_name);
    const Provider* prov = p == providers_.end() ? nullptr : &p->second;
    const std::string& op = r.operation;

    if (op == "CREATE") {
        if (!t->creatable || !prov || !prov->create)
            return fail(status::not_implemented,
                        "Entities of type " + t->long_name + " cannot be created at runtime");
        if (!r.body.is_null() && !r.body.is_object())
            return fail(status::bad_request, "CREATE needs a map of attributes as its body");
        RawSection raw;
        raw.type = t->short_name;
        if (!r.name.empty()) raw.attributes.emplace_back("name", json::Value(r.name));
        if (r.body.is_object())
            for (const auto& [k, v] : r.body.as_object()) {
                if (k == "type" || k == "identity") continue;
                if (k == "name" && !r.name.empty()) {
                    if (!v.is_string() || v.as_string() != r.name)
                        return fail(status::bad_request,
                                    "name in the body differs from the "
                                    "request's name");
                    continue;
                }
                if (v.is_null()) continue;
                raw.attributes.emplace_back(k, v);
            }
        Entity e;
        try {
            e = validate(raw, "management");
        } catch (const ConfigError& ce) {
            // "management:0: message": the message is what the operator needs.
            std::string m = ce.what();
            size_t cut = m.find(": ");
            return fail(status::bad_request, cut == std::string::npos ? m : m.substr(cut + 2));
        }
        if (prov->query && e.has("name"))
            for (const auto& row : prov->query())
                if (text_of(row, "name") == e.str("name"))
                    return fail(status::bad_request, "Name '" + e.str("name") +
                                                         "' is already used by a " + t->short_name);
        json::Object row;
        Status s = prov->create(e, row);
        if (!s.ok()) return fail(s.code, s.description);
        Response ok;
        ok.code = status::created;
        ok.description = "Created";
        ok.body = complete(*t, std::move(row));
        return ok;
    }

    if (r.name.empty() && r.identity.empty())
        return fail(status::bad_request, op + " needs a name or an identity");
    if (!prov || !prov->query) return fail(status::not_found, "No " + t->short_name + " entities");
    std::optional<json::Object> found;
    for (auto& row : prov->query()) {
        bool match = !r.identity.empty() ? text_of(row, "identity") == r.identity
                                         : text_of(row, "name") == r.name;
        if (match) {
            found = std::move(row);
            break;
        }
    }
    if (!found)
        return fail(status::not_found,
                    "No " + t->short_name + " with " +
                        (r.identity.empty() ? "name '" + r.name : "identity '" + r.identity) + "'");

    if (op == "READ") {
        Response ok;
        ok.body = complete(*t, std::move(*found));
        return ok;
    }
    if (op == "DELETE") {
        if (!(t->creatable || t->deletable) || !prov->remove)
            return fail(status::not_implemented,
                        "Entities of type " + t->long_name + " cannot be deleted at runtime");
        Status s = prov->remove(*found);
        if (!s.ok()) return fail(s.code, s.description);
        Response ok;
        ok.code = status::no_content;
        ok.description = "No Content";
        return ok;
    }
    // UPDATE
    if (!t->updatable || !prov->update)
        return fail(status::not_implemented,
                    "Entities of type " + t->long_name + " cannot be updated at runtime");
    if (!r.body.is_object()) return fail(status::bad_request, "UPDATE needs a map of attributes");
    json::Object changes;
    for (const auto& [k, v] : r.body.as_object()) {
        if (k == "type" || k == "identity" || k == "name") continue;  // they identify, not change
        const AttributeSchema* a = t->attribute(k);
        if (!a)
            return fail(status::bad_request, "Unknown attribute '" + k + "' of " + t->long_name);
        if (!a->writable)
            return fail(status::bad_request, "Attribute '" + k + "' of " + t->short_name +
                                                 " cannot be changed at runtime");
        json::Value typed;
        if (std::string e = coerce(*a, v, typed); !e.empty())
            return fail(status::bad_request, "Bad value for '" + k + "': " + e);
        changes.emplace_back(k, std::move(typed));
    }
    Status s = prov->update(*found, changes);
    if (!s.ok()) return fail(s.code, s.description);
    // Read back what it is now.
    for (auto& row : prov->query())
        if (text_of(row, "identity") == text_of(*found, "identity")) {
            Response ok;
            ok.body = complete(*t, std::move(row));
            return ok;
        }
    Response ok;
    ok.body = complete(*t, std::move(*found));
    return ok;
}

// --- the endpoint in the core ---

AgentEndpoint::AgentEndpoint(core::Router& router, Agent& agent, Post post)
    : router_(router), agent_(agent), post_(std::move(post)) {}

AgentEndpoint::~AgentEndpoint() {
    stop();
}

void AgentEndpoint::start() {
    core::ConnectionInfo info;
    info.protocol = "internal";
    info.container_id = "$management";
    conn_ = router_.connection_opened(info, *this);
    core::AttachRequest req;
    req.direction = core::Direction::outgoing;
    req.name = "$management";
    req.source.address = "$management";
    req.source.has_address = true;
    core::AttachResult res = router_.attach(*conn_, req, *this, &link_);
    if (res.kind != core::AttachResult::Kind::open) {
        logger().error("management: cannot attach $management: {}", res.error.description);
        link_ = nullptr;
        return;
    }
    router_.credit(link_, k_credit, false);
}

void AgentEndpoint::stop() {
    if (!conn_) return;
    core::Connection* c = conn_;
    conn_ = nullptr;
    link_ = nullptr;
    pending_.clear();
    router_.connection_closed(c);
}

void AgentEndpoint::deliver(core::Delivery& d) {
    // Who sent it: the policy of its connection decides about writes, now, while the
    // connection is known to exist.
    bool read_only = false;
    if (router_.policy().settings().enable_vhost_policy && router_.policy().configured()) {
        const core::Link* from = d.in ? d.in->link : nullptr;
        const core::PolicyTicket* t =
            from && from->connection() ? from->connection()->info().policy : nullptr;
        bool internal =
            from && from->connection() && from->connection()->info().protocol == "internal";
        read_only = !internal && (!t || !t->allow_management_write());
        if (read_only && t) {
            Request req;
            std::string reply_to, correlation;
            if (decode_request(d.message->bytes(), req, reply_to, correlation).empty() &&
                (req.operation == "CREATE" || req.operation == "UPDATE" ||
                 req.operation == "DELETE")) {
                t->deny(core::Denial::management, req.operation + " " + req.type);
                logger().warn(
                    "management: {} {} by user '{}' (vhost '{}') denied: its group "
                    "'{}' has no allowManagementWrite",
                    req.operation, req.type, t->user(), t->vhost(), t->group());
            }
        }
    }
    pending_.push_back({d.presettled ? nullptr : &d, d.message, read_only});
    if (!posted_) {
        posted_ = true;
        post_([this] { process(); });
    }
}

void AgentEndpoint::update(core::Delivery& d, const core::DeliveryState&, bool settle) {
    if (!settle) return;
    for (auto& p : pending_)
        if (p.delivery == &d) p.delivery = nullptr;  // the core settled it: forget it
}

void AgentEndpoint::process() {
    posted_ = false;
    if (!conn_) return;
    size_t done = 0;
    while (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        ++done;
        Request req;
        std::string reply_to, correlation;
        std::string err = decode_request(p.message->bytes(), req, reply_to, correlation);
        Response resp;
        if (!err.empty()) {
            resp = fail(status::bad_request, "Malformed request: " + err);
            logger().debug("management: malformed request: {}", err);
        } else if (p.read_only && (req.operation == "CREATE" || req.operation == "UPDATE" ||
                                   req.operation == "DELETE")) {
            resp = fail(status::forbidden, req.operation +
                                               " needs a policy group with "
                                               "allowManagementWrite");
        } else {
            resp = agent_.handle(req);
            if (resp.code >= 400)
                logger().debug("management: {} {}: {} {}", req.operation, req.type, resp.code,
                               resp.description);
        }
        if (p.delivery) {
            // Accepted whatever the status: the status code is the answer (qdstat requires it).
            core::DeliveryState s = core::DeliveryState::accepted();
            if (!err.empty() && reply_to.empty())
                s = core::DeliveryState::rejected({"amqp:decode-error", err});
            router_.disposition(p.delivery, s, true);
        }
        if (reply_to.empty()) continue;
        std::string bytes = encode_response(resp, reply_to, correlation);
        core::MessageRef m =
            core::MessageRef::adopt(core::Message::copy_of(bytes, core::MessageFormat::amqp));
        m->qos = 0;  // responses travel settled
        router_.publish(reply_to, std::move(m));
        if (!conn_) return;  // a provider stopped the router
    }
    if (link_ && done) router_.credit(link_, k_credit, false);
}

}  // namespace trestle::management
