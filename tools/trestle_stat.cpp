// trestle-stat: qdstat's views of a live router (same flags and table layout), plus MQTT
// sessions, retained messages and Kafka routes. Talks AMQP Management to $management.
#include <sys/time.h>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "mgmt_client.hpp"
#include "trestle/version.hpp"

using namespace trestle;
using tools::MgmtOptions;

namespace {

const char* k_usage =
    "Usage: trestle-stat [OPTIONS] VIEW\n"
    "\n"
    "Shows the state of a running Trestle router (qdstat-compatible views).\n"
    "\n"
    "Views:\n"
    "  -g, --general         router statistics\n"
    "  -c, --connections     connections\n"
    "  -l, --links           links\n"
    "  -a, --address         addresses\n"
    "  -m, --memory          memory pools\n"
    "      --linkroutes      link routes\n"
    "      --log             recent log lines\n"
    "      --mqtt            MQTT sessions\n"
    "      --retained        retained messages\n"
    "      --kafka           Kafka routes (produced, in flight, consumed, lag)\n"
    "  -p, --policy          policy settings and status\n"
    "      --vhosts          policy vhosts\n"
    "      --vhoststats      denials per vhost and per user\n"
    "\n"
    "Options:\n"
    "      --limit N         at most N rows (0 = no limit)\n"
    "      --csv             comma-separated output\n"
    "  -v, --verbose         (accepted for qdstat compatibility)\n"
    "      --version         print the version\n"
    "  -h, --help            this help\n"
    "Connection:\n";

void usage(FILE* f) {
    std::fputs(k_usage, f);
    std::fputs(tools::connection_options_usage, f);
}

struct Table {
    std::string title;
    std::string empty;  // printed instead of an empty table (qdstat's "No Vhosts")
    std::vector<std::string> heads;
    std::vector<std::vector<std::string>> rows;
};

void print(const Table& t, bool csv) {
    if (t.rows.empty() && !t.empty.empty()) {
        std::printf("%s\n", t.empty.c_str());
        return;
    }
    std::printf("%s\n", t.title.c_str());
    if (csv) {
        auto line = [](const std::vector<std::string>& cells, bool quote_empty) {
            std::string s;
            for (size_t i = 0; i < cells.size(); ++i) {
                if (i) s += ',';
                if (!cells[i].empty() || quote_empty) s += "\"" + cells[i] + "\"";
            }
            std::printf("%s\n", s.c_str());
        };
        line(t.heads, true);
        for (const auto& r : t.rows) line(r, false);
        return;
    }
    std::vector<size_t> w(t.heads.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = t.heads[i].size();
    for (const auto& r : t.rows)
        for (size_t i = 0; i < w.size() && i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s = " ";
        for (size_t i = 0; i < w.size(); ++i) {
            std::string c = i < cells.size() ? cells[i] : "";
            s += " " + c;
            if (i + 1 < w.size()) s += std::string(w[i] - c.size() + 1, ' ');
        }
        while (!s.empty() && s.back() == ' ') s.pop_back();
        std::printf("%s\n", s.c_str());
    };
    line(t.heads);
    size_t total = 2;
    for (size_t i = 0; i < w.size(); ++i) total += w[i] + 2;
    std::printf("  %s\n", std::string(total - 2, '=').c_str());
    for (const auto& r : t.rows) line(r);
}

std::string cell(const json::Value& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.as_string();
    if (v.is_bool()) return v.as_bool() ? "true" : "false";
    if (v.is_int()) return std::to_string(v.as_int());
    return json::dump(v);
}

// qdstat's d:h:m:s "000:00:00:48".
std::string duration(const json::Value& v) {
    if (!v.is_int()) return "";
    int64_t s = v.as_int();
    char b[32];
    std::snprintf(b, sizeof b, "%03lld:%02lld:%02lld:%02lld", static_cast<long long>(s / 86400),
                  static_cast<long long>(s / 3600 % 24), static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
    return b;
}

// Rows as attribute -> value maps.
struct Rows {
    std::vector<std::string> names;
    std::vector<json::Array> rows;
    const json::Value& get(const json::Array& r, const std::string& n) const {
        static const json::Value null;
        for (size_t i = 0; i < names.size() && i < r.size(); ++i)
            if (names[i] == n) return r[i];
        return null;
    }
};

Rows query(const MgmtOptions& o, const std::string& type, const std::vector<std::string>& attrs,
           int64_t limit) {
    tools::MgmtResponse resp = tools::management_query(o, type, attrs, limit);
    if (resp.status != 200)
        throw std::runtime_error("Status " + std::to_string(resp.status) + ": " + resp.description);
    Rows out;
    for (const auto& n : resp.body.find("attributeNames")->as_array())
        out.names.push_back(n.as_string());
    for (const auto& r : resp.body.find("results")->as_array()) out.rows.push_back(r.as_array());
    return out;
}

void header(const MgmtOptions& o) {
    Rows r = query(o, "org.apache.qpid.dispatch.router", {"id"}, 0);
    timeval tv;
    gettimeofday(&tv, nullptr);
    char b[64];
    std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", std::gmtime(&tv.tv_sec));
    std::printf("%s.%06ld UTC\n%s\n\n", b, static_cast<long>(tv.tv_usec),
                r.rows.empty() ? "" : cell(r.get(r.rows[0], "id")).c_str());
}

std::string address_class(const std::string& key, std::string& addr, std::string& phase) {
    if (key.empty()) return "";
    char c = key[0];
    addr = key.substr(1);
    phase.clear();
    if (c == 'M') {
        phase = addr.substr(0, 1);
        addr = addr.substr(1);
        return "mobile";
    }
    if (c == 'L') return "local";
    if (c == 'C' || c == 'E') return "link-in";
    if (c == 'D' || c == 'F') return "link-out";
    return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
    MgmtOptions o;
    std::string view;
    bool csv = false;
    int64_t limit = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            size_t eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos) return a.substr(eq + 1);
            if (i + 1 >= argc) {
                std::fprintf(stderr, "trestle-stat: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        std::string key = a.substr(0, a.find('='));
        if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else if (a == "--version") {
            std::printf("trestle-stat %s\n", trestle::version);
            return 0;
        } else if (a == "-g" || a == "--general")
            view = "g";
        else if (a == "-c" || a == "--connections")
            view = "c";
        else if (a == "-l" || a == "--links")
            view = "l";
        else if (a == "-a" || a == "--address")
            view = "a";
        else if (a == "-m" || a == "--memory")
            view = "m";
        else if (a == "--linkroutes")
            view = "linkroutes";
        else if (a == "--log")
            view = "log";
        else if (a == "--mqtt")
            view = "mqtt";
        else if (a == "--retained")
            view = "retained";
        else if (a == "--kafka")
            view = "kafka";
        else if (a == "-p" || a == "--policy")
            view = "policy";
        else if (a == "--vhosts")
            view = "vhosts";
        else if (a == "--vhoststats")
            view = "vhoststats";
        else if (a == "--csv")
            csv = true;
        else if (a == "-v" || a == "--verbose") {
        } else if (key == "--limit")
            limit = std::atoll(value().c_str());
        else if (tools::connection_option(a, key, value, o)) {
        } else {
            std::fprintf(stderr, "trestle-stat: unknown option '%s' (see --help)\n", a.c_str());
            return 2;
        }
    }
    tools::finish_connection_options(o);
    if (view.empty()) {
        usage(stderr);
        return 2;
    }
    try {
        if (view == "log") {
            tools::MgmtRequest r;
            r.properties = {
                {"operation", "GET-LOG"}, {"type", "org.amqp.management"}, {"name", "self"}};
            if (limit > 0) r.properties["limit"] = json::Value(limit);
            tools::MgmtResponse resp = tools::management_call(o, {r}).front();
            if (resp.status != 200) throw std::runtime_error(resp.description);
            for (const auto& e : resp.body.as_array()) {
                const auto& f = e.as_array();
                if (f.size() < 6) continue;
                time_t t = static_cast<time_t>(
                    f[5].is_double() ? f[5].as_double() : (f[5].is_int() ? f[5].as_int() : 0));
                char b[64];
                std::strftime(b, sizeof b, "%a %b %d %H:%M:%S %Y", std::localtime(&t));
                std::printf("%s %s (%s) %s\n", b, cell(f[0]).c_str(), cell(f[1]).c_str(),
                            cell(f[2]).c_str());
            }
            return 0;
        }
        header(o);
        Table t;
        if (view == "g") {
            Rows r = query(o, "org.apache.qpid.dispatch.router", {}, 0);
            const json::Array& row = r.rows.at(0);
            t.title = "Router Statistics";
            t.heads = {"attr", "value"};
            auto add = [&](const char* label, const std::string& v) {
                t.rows.push_back({label, v});
            };
            auto g = [&](const char* n) { return cell(r.get(row, n)); };
            add("Version", g("version"));
            add("Mode", g("mode"));
            add("Router Id", g("id"));
            add("Worker Threads", g("workerThreads"));
            add("Uptime", duration(r.get(row, "uptimeSeconds")));
            const json::Value& mem = r.get(row, "memoryUsage");
            add("VmSize", mem.is_int() ? std::to_string(mem.as_int() >> 20) + " MiB" : "");
            add("Area", g("area"));
            add("Link Routes", g("linkRouteCount"));
            add("Auto Links", g("autoLinkCount"));
            add("Links", g("linkCount"));
            add("Nodes", g("nodeCount"));
            add("Addresses", g("addrCount"));
            add("Connections", g("connectionCount"));
            add("Presettled Count", g("presettledDeliveries"));
            add("Dropped Presettled Count", g("droppedPresettledDeliveries"));
            add("Accepted Count", g("acceptedDeliveries"));
            add("Rejected Count", g("rejectedDeliveries"));
            add("Released Count", g("releasedDeliveries"));
            add("Modified Count", g("modifiedDeliveries"));
            add("Deliveries Delayed > 1sec", g("deliveriesDelayed1Sec"));
            add("Deliveries Delayed > 10sec", g("deliveriesDelayed10Sec"));
            add("Deliveries Stuck > 10sec", g("deliveriesStuck"));
            add("Deliveries to Fallback", g("deliveriesRedirectedToFallback"));
            add("Links Blocked", g("linksBlocked"));
            add("Ingress Count", g("deliveriesIngress"));
            add("Egress Count", g("deliveriesEgress"));
            add("Transit Count", g("deliveriesTransit"));
            add("Deliveries from Route Container", g("deliveriesIngressRouteContainer"));
            add("Deliveries to Route Container", g("deliveriesEgressRouteContainer"));
        } else if (view == "c") {
            Rows r = query(o, "org.apache.qpid.dispatch.connection", {}, limit);
            t.title = "Connections";
            t.heads = {"id",       "host",           "container", "role",     "proto", "dir",
                       "security", "authentication", "tenant",    "last dlv", "uptime"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                bool enc =
                    r.get(row, "isEncrypted").is_bool() && r.get(row, "isEncrypted").as_bool();
                bool auth = r.get(row, "isAuthenticated").is_bool() &&
                            r.get(row, "isAuthenticated").as_bool();
                std::string sasl = g("sasl");
                std::string authn =
                    auth ? g("user") : (sasl == "ANONYMOUS" ? "anonymous-user" : "no-auth");
                t.rows.push_back({g("identity"), g("host"), g("container"), g("role"),
                                  g("protocol"), g("dir"), enc ? g("sslProto") : "no-security",
                                  authn, g("tenant"), duration(r.get(row, "lastDlvSeconds")),
                                  duration(r.get(row, "uptimeSeconds"))});
            }
        } else if (view == "l") {
            Rows r = query(o, "org.apache.qpid.dispatch.router.link",
                           {"linkType",
                            "linkDir",
                            "connectionId",
                            "identity",
                            "peer",
                            "owningAddr",
                            "capacity",
                            "undeliveredCount",
                            "unsettledCount",
                            "deliveryCount",
                            "presettledCount",
                            "droppedPresettledCount",
                            "acceptedCount",
                            "rejectedCount",
                            "releasedCount",
                            "modifiedCount",
                            "deliveriesDelayed1Sec",
                            "deliveriesDelayed10Sec",
                            "deliveriesStuck",
                            "creditAvailable",
                            "zeroCreditSeconds",
                            "adminStatus",
                            "operStatus",
                            "linkName",
                            "priority",
                            "settleRate"},
                           limit);
            t.title = "Router Links";
            t.heads = {"type", "dir", "conn id", "id",     "peer",  "class",   "addr",   "phs",
                       "cap",  "pri", "undel",   "unsett", "deliv", "presett", "psdrop", "acc",
                       "rej",  "rel", "mod",     "delay",  "rate",  "stuck",   "cred",   "blkd"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                std::string addr, phase;
                std::string cls = address_class(g("owningAddr"), addr, phase);
                int64_t delayed = 0;
                for (const char* n : {"deliveriesDelayed1Sec", "deliveriesDelayed10Sec"})
                    if (r.get(row, n).is_int()) delayed += r.get(row, n).as_int();
                const json::Value& zc = r.get(row, "zeroCreditSeconds");
                t.rows.push_back({g("linkType"),
                                  g("linkDir"),
                                  g("connectionId"),
                                  g("identity"),
                                  g("peer"),
                                  cls,
                                  addr,
                                  phase,
                                  g("capacity"),
                                  g("priority"),
                                  g("undeliveredCount"),
                                  g("unsettledCount"),
                                  g("deliveryCount"),
                                  g("presettledCount"),
                                  g("droppedPresettledCount"),
                                  g("acceptedCount"),
                                  g("rejectedCount"),
                                  g("releasedCount"),
                                  g("modifiedCount"),
                                  std::to_string(delayed),
                                  g("settleRate"),
                                  g("deliveriesStuck"),
                                  g("creditAvailable"),
                                  zc.is_int() && zc.as_int() > 0 ? duration(zc) : "-"});
            }
        } else if (view == "a") {
            Rows r = query(o, "org.apache.qpid.dispatch.router.address",
                           {"distribution", "inProcess", "subscriberCount", "remoteCount",
                            "containerCount", "deliveriesIngress", "deliveriesEgress",
                            "deliveriesRedirectedToFallback", "deliveriesTransit",
                            "deliveriesToContainer", "deliveriesFromContainer", "name", "priority"},
                           limit);
            t.title = "Router Addresses";
            t.heads = {"class",  "addr", "phs", "distrib", "pri",     "local",
                       "remote", "in",   "out", "thru",    "fallback"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                std::string addr, phase;
                std::string cls = address_class(g("name"), addr, phase);
                const json::Value& pri = r.get(row, "priority");
                t.rows.push_back({cls, addr, phase, g("distribution"),
                                  pri.is_int() && pri.as_int() >= 0 ? g("priority") : "-",
                                  g("subscriberCount"), g("remoteCount"), g("deliveriesIngress"),
                                  g("deliveriesEgress"), g("deliveriesTransit"),
                                  g("deliveriesRedirectedToFallback")});
            }
        } else if (view == "m") {
            Rows r = query(o, "org.apache.qpid.dispatch.allocator",
                           {"identity", "typeSize", "transferBatchSize", "localFreeListMax",
                            "totalAllocFromHeap", "heldByThreads", "batchesRebalancedToThreads",
                            "batchesRebalancedToGlobal"},
                           limit);
            t.title = "Memory Pools";
            t.heads = {"type",  "size",       "batch",    "thread-max",
                       "total", "in-threads", "rebal-in", "rebal-out"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                std::string id = g("identity");
                if (id.rfind("allocator/", 0) == 0) id = id.substr(10);
                t.rows.push_back({id, g("typeSize"), g("transferBatchSize"), g("localFreeListMax"),
                                  g("totalAllocFromHeap"), g("heldByThreads"),
                                  g("batchesRebalancedToThreads"), g("batchesRebalancedToGlobal")});
            }
        } else if (view == "linkroutes") {
            Rows r = query(o, "org.apache.qpid.dispatch.router.config.linkRoute",
                           {"prefix", "direction", "distribution", "operStatus", "pattern",
                            "addExternalPrefix", "delExternalPrefix"},
                           limit);
            t.title = "Link Routes";
            t.heads = {"address", "dir", "distrib", "status"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                std::string address = g("prefix").empty() ? g("pattern") : g("prefix");
                t.rows.push_back({address, g("direction"), g("distribution"), g("operStatus")});
            }
        } else if (view == "policy") {
            Rows r = query(o, "org.apache.qpid.dispatch.policy", {}, 0);
            const json::Array& row = r.rows.at(0);
            auto g = [&](const char* n) { return cell(r.get(row, n)); };
            Table c;
            c.title = "Policy Configuration";
            c.heads = {"attr", "value"};
            c.rows = {{"Maximum Concurrent Connections", g("maxConnections")},
                      {"Maximum Message Size", g("maxMessageSize")},
                      {"Enable Vhost Policy", g("enableVhostPolicy")},
                      {"Default Vhost", g("defaultVhost")}};
            print(c, csv);
            std::printf("\n");
            t.title = "Policy Status";
            t.heads = {"attr", "value"};
            t.rows = {{"Connections Processed", g("connectionsProcessed")},
                      {"Connections Denied", g("connectionsDenied")},
                      {"Connections Current", g("connectionsCurrent")},
                      {"Links Denied", g("linksDenied")},
                      {"Maximum Message Size Denied", g("maxMessageSizeDenied")},
                      {"Total Denials", g("totalDenials")}};
        } else if (view == "vhosts") {
            Rows r = query(o, "org.apache.qpid.dispatch.vhost", {}, limit);
            t.title = "Vhosts";
            t.empty = "No Vhosts";
            t.heads = {"hostname",
                       "maxConnections",
                       "maxMessageSize",
                       "maxConnectionsPerUser",
                       "maxConnectionsPerHost",
                       "allowUnknownUser",
                       "groups"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                const json::Value& groups = r.get(row, "groups");
                t.rows.push_back(
                    {g("hostname"), g("maxConnections"), g("maxMessageSize"),
                     g("maxConnectionsPerUser"), g("maxConnectionsPerHost"), g("allowUnknownUser"),
                     std::to_string(groups.is_object() ? groups.as_object().size() : 0)});
            }
        } else if (view == "vhoststats") {
            Rows r = query(o, "org.apache.qpid.dispatch.vhost", {}, limit);
            t.title = "Vhost Stats";
            t.empty = "No Vhost Stats";
            t.heads = {"hostname",           "connectionsApproved",
                       "connectionsDenied",  "connectionsCurrent",
                       "sessionDenied",      "senderDenied",
                       "receiverDenied",     "messageDenied",
                       "subscriptionDenied", "maxMessageSizeDenied",
                       "managementDenied"};
            Table users;
            users.title = "Vhost User Denials";
            users.heads = {"vhost", "user", "denials"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                t.rows.push_back({g("hostname"), g("connectionsApproved"), g("connectionsDenied"),
                                  g("connectionsCurrent"), g("sessionDenied"), g("senderDenied"),
                                  g("receiverDenied"), g("messageDenied"), g("subscriptionDenied"),
                                  g("maxMessageSizeDenied"), g("managementDenied")});
                const json::Value& per = r.get(row, "perUserDenials");
                if (per.is_object())
                    for (const auto& [user, kinds] : per.as_object()) {
                        std::string text;
                        if (kinds.is_object())
                            for (const auto& [k, v] : kinds.as_object())
                                text += (text.empty() ? "" : " ") + k + "=" + cell(v);
                        users.rows.push_back({g("hostname"), user, text});
                    }
            }
            if (!users.rows.empty()) {
                print(t, csv);
                std::printf("\n");
                t = std::move(users);
            }
        } else if (view == "mqtt") {
            Rows r = query(o, "io.trestle.mqttSession", {}, limit);
            t.title = "MQTT Sessions";
            t.heads = {"client id",     "connected", "proto",    "host",   "expiry",
                       "subscriptions", "queued",    "inflight", "dropped"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                std::string subs;
                const json::Value& s = r.get(row, "subscriptions");
                if (s.is_array())
                    for (const auto& e : s.as_array()) {
                        if (!subs.empty()) subs += " ";
                        subs += e.is_array() && e.as_array().size() == 2
                                    ? cell(e.as_array()[0]) + "(" + cell(e.as_array()[1]) + ")"
                                    : cell(e);
                    }
                t.rows.push_back({g("clientId"), g("connected") == "true" ? "yes" : "no",
                                  g("protocolVersion"), g("host"), g("expiryIntervalSeconds"), subs,
                                  g("queued"), g("inflight"), g("dropped")});
            }
        } else if (view == "retained") {
            Rows r = query(o, "io.trestle.retained", {}, limit);
            t.title = "Retained Messages";
            t.heads = {"topic", "qos", "size", "format", "expires in"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                t.rows.push_back({g("topic"), g("qos"), g("size"), g("format"),
                                  r.get(row, "expiresInSeconds").is_int()
                                      ? duration(r.get(row, "expiresInSeconds"))
                                      : "-"});
            }
        } else if (view == "kafka") {
            Rows k =
                query(o, "io.trestle.kafka", {"name", "bootstrap", "operStatus", "lastError"}, 0);
            for (const auto& row : k.rows) {
                std::string status = cell(k.get(row, "operStatus"));
                if (!cell(k.get(row, "lastError")).empty())
                    status += ": " + cell(k.get(row, "lastError"));
                std::printf("Kafka %s: %s (%s)\n\n", cell(k.get(row, "name")).c_str(),
                            cell(k.get(row, "bootstrap")).c_str(), status.c_str());
            }
            Rows r = query(o, "io.trestle.kafkaRoute", {}, limit);
            t.title = "Kafka Routes";
            t.heads = {"name",      "address",  "topic",       "dir",         "produced", "failed",
                       "in-flight", "consumed", "dead-letter", "redelivered", "lag"};
            Table parts;
            parts.title = "Consumer Partitions";
            parts.heads = {"route", "topic", "partition", "committed", "position", "end", "lag"};
            for (const auto& row : r.rows) {
                auto g = [&](const char* n) { return cell(r.get(row, n)); };
                std::string address = g("prefix").empty() ? g("pattern") : g("prefix");
                t.rows.push_back({g("name"), address, g("topic"), g("direction"), g("produced"),
                                  g("produceFailed"), g("inFlight"), g("consumed"),
                                  g("deadLettered"), g("redelivered"),
                                  g("lag").empty() ? "-" : g("lag")});
                const json::Value& ps = r.get(row, "partitions");
                if (!ps.is_array()) continue;
                for (const auto& p : ps.as_array()) {
                    if (!p.is_array() || p.as_array().size() < 5) continue;
                    const auto& v = p.as_array();
                    auto c = [&](size_t i) {
                        return v[i].is_null() ? std::string("-") : cell(v[i]);
                    };
                    parts.rows.push_back({g("name"), g("topic"), c(0), c(1), c(2), c(3), c(4)});
                }
            }
            print(t, csv);
            std::printf("\n");
            t = std::move(parts);
        }
        if (limit > 0 && static_cast<int64_t>(t.rows.size()) > limit)
            t.rows.resize(static_cast<size_t>(limit));
        print(t, csv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
