// trestle-manage: qdmanage-style create/read/update/delete/query of a live router's entities,
// JSON output. Talks AMQP Management to $management.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mgmt_client.hpp"
#include "trestle/version.hpp"

using namespace trestle;

namespace {

const char* k_usage =
    "Usage: trestle-manage [OPTIONS] OPERATION [ATTR=VALUE...] [ATTR...]\n"
    "\n"
    "Operations: query, read, create, update, delete, get-types, get-attributes,\n"
    "            get-operations, get-mgmt-nodes, get-log, get-schema\n"
    "\n"
    "  query --type T [ATTR...]           entities of type T (all attributes, or those named)\n"
    "  read --type T --name N | --identity I\n"
    "  create --type T --name N ATTR=VALUE...\n"
    "  update --type T --name N | --identity I ATTR=VALUE...\n"
    "  delete --type T --name N | --identity I\n"
    "\n"
    "Types as qdmanage takes them: listener, connector, address, linkRoute, connection, link,\n"
    "router.address, log, ... and Trestle's mqttListener, mqttSession, retained, kafka,\n"
    "kafkaRoute (short or long names).\n"
    "\n"
    "Output is JSON. Exit status 1 with the router's status on an error.\n"
    "\n"
    "Options:\n"
    "      --type T, --name N, --identity I\n"
    "      --version, -h/--help\n"
    "Connection:\n";

void usage(FILE* f) {
    std::fputs(k_usage, f);
    std::fputs(tools::connection_options_usage, f);
}

std::string long_type(const std::string& t) {
    if (t.empty() || t.find("org.") == 0 || t.find("io.trestle.") == 0) return t;
    if (t == "link" || t == "node") return "org.apache.qpid.dispatch.router." + t;
    if (t == "address" || t == "linkRoute" || t == "autoLink")
        return "org.apache.qpid.dispatch.router.config." + t;
    return "org.apache.qpid.dispatch." + t;
}

json::Value typed(const std::string& v) {
    if (v == "true") return true;
    if (v == "false") return false;
    if (!v.empty() && v.find_first_not_of("-0123456789") == std::string::npos &&
        v.find('-', 1) == std::string::npos && v != "-")
        return json::Value(static_cast<int64_t>(std::stoll(v)));
    if (!v.empty() && (v[0] == '{' || v[0] == '[')) {
        json::Value j;
        json::ParseError e;
        if (json::parse(v, j, e)) return j;
    }
    return v;
}

json::Value without_nulls(const json::Value& v) {
    if (!v.is_object()) return v;
    json::Object o;
    for (const auto& [k, val] : v.as_object())
        if (!val.is_null()) o.emplace_back(k, val);
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    tools::MgmtOptions o;
    std::string op, type, name, identity;
    std::vector<std::pair<std::string, std::string>> assigns;
    std::vector<std::string> attrs;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            size_t eq = a.find('=');
            if (a.rfind("-", 0) == 0 && eq != std::string::npos) return a.substr(eq + 1);
            if (i + 1 >= argc) {
                std::fprintf(stderr, "trestle-manage: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        std::string key = a.rfind("-", 0) == 0 ? a.substr(0, a.find('=')) : a;
        if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else if (a == "--version") {
            std::printf("trestle-manage %s\n", trestle::version);
            return 0;
        } else if (key == "--type")
            type = value();
        else if (key == "--name")
            name = value();
        else if (key == "--identity")
            identity = value();
        else if (tools::connection_option(a, key, value, o)) {
        } else if (a.rfind("-", 0) == 0) {
            std::fprintf(stderr, "trestle-manage: unknown option '%s' (see --help)\n", a.c_str());
            return 2;
        } else if (op.empty())
            op = a;
        else if (a.find('=') != std::string::npos)
            assigns.emplace_back(a.substr(0, a.find('=')), a.substr(a.find('=') + 1));
        else
            attrs.push_back(a);
    }
    tools::finish_connection_options(o);
    if (op.empty()) {
        usage(stderr);
        return 2;
    }
    std::string OP = op;
    for (auto& c : OP)
        c = c == '_' ? '-' : static_cast<char>(toupper(static_cast<unsigned char>(c)));
    type = long_type(type);
    tools::MgmtRequest r;
    r.properties["operation"] = OP;
    json::Object body;
    for (const auto& [k, v] : assigns) body.emplace_back(k, typed(v));
    if (OP == "QUERY") {
        if (!type.empty()) r.properties["entityType"] = type;
        r.properties["type"] = "org.amqp.management";
        r.properties["name"] = "self";
        json::Array names;
        for (const auto& a : attrs) names.emplace_back(a);
        r.body = json::Object{{"attributeNames", names}};
    } else if (OP.rfind("GET-", 0) == 0) {
        r.properties["type"] = "org.amqp.management";
        r.properties["name"] = "self";
        if (!type.empty()) r.properties["entityType"] = type;
        for (const auto& [k, v] : assigns) r.properties[k] = typed(v);
        r.body = json::Object{};
    } else {
        if (type.empty() && OP == "CREATE") {
            std::fprintf(stderr, "trestle-manage: %s needs --type\n", op.c_str());
            return 2;
        }
        if (!type.empty()) r.properties["type"] = type;
        if (!identity.empty())
            r.properties["identity"] = identity;
        else if (!name.empty())
            r.properties["name"] = name;
        if (OP == "CREATE" && !name.empty()) body.emplace_back("name", name);
        r.body = OP == "CREATE" || OP == "UPDATE" ? json::Value(body) : json::Value(json::Object{});
    }
    try {
        tools::MgmtResponse resp = tools::management_call(o, {r}).front();
        bool ok = resp.status >= 200 && resp.status < 300;
        if (!ok) {
            std::fprintf(stderr, "Status %d: %s\n", resp.status, resp.description.c_str());
            return 1;
        }
        if (OP == "QUERY") {
            json::Array out;
            const json::Value* names = resp.body.find("attributeNames");
            const json::Value* results = resp.body.find("results");
            if (names && results)
                for (const auto& row : results->as_array()) {
                    json::Object m;
                    for (size_t k = 0; k < names->as_array().size() && k < row.as_array().size();
                         ++k)
                        if (!row.as_array()[k].is_null())
                            m.emplace_back(names->as_array()[k].as_string(), row.as_array()[k]);
                    out.emplace_back(std::move(m));
                }
            std::printf("%s\n", json::dump(out, 2).c_str());
        } else if (OP != "DELETE") {
            std::printf("%s\n", json::dump(without_nulls(resp.body), 2).c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
