// policy and vhost: the configured authorization with its statistics (qdrouterd's policy and
// vhostStats counters on the entities themselves). vhosts are created, updated and deleted at
// runtime; their changes apply to new connections.
#include "app/entities/entities.hpp"

#include "trestle/core/policy.hpp"

namespace trestle::app::entities {

namespace {

int64_t n(uint64_t v) {
    return static_cast<int64_t>(v);
}

}  // namespace

Provider policy(const View& view) {
    Provider p;
    p.query = [&view] {
        const core::Policy& pol = view.router().policy();
        json::Object row;
        const auto& configured = view.entities("policy");
        if (!configured.empty()) {
            row = entity_row(configured.front());
        } else {
            row.emplace_back("name", "policy");
            row.emplace_back("identity", "policy/policy");
            row.emplace_back("maxConnections", n(pol.settings().max_connections));
            row.emplace_back("enableVhostPolicy", false);
        }
        uint64_t links = 0, size = 0, total = pol.connections_denied(), approved = 0;
        for (const auto& name : pol.vhost_names()) {
            const core::VhostStats* st = pol.stats(name);
            const auto& d = st->denials.n;
            links += d[size_t(core::Denial::sender)] + d[size_t(core::Denial::receiver)];
            size += d[size_t(core::Denial::message_size)];
            total += st->denials.total() - d[size_t(core::Denial::connection)];
            approved += st->connections_approved;
        }
        row.emplace_back("connectionsProcessed", n(approved + pol.connections_denied()));
        row.emplace_back("connectionsDenied", n(pol.connections_denied()));
        row.emplace_back("connectionsCurrent", n(pol.connections_current()));
        row.emplace_back("linksDenied", n(links));
        row.emplace_back("maxMessageSizeDenied", n(size));
        row.emplace_back("totalDenials", n(total));
        return std::vector<json::Object>{std::move(row)};
    };
    return p;
}

Provider vhost(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        const core::Policy& pol = view.router().policy();
        for (const auto& e : view.entities("vhost")) {
            json::Object row = entity_row(e);
            if (const core::VhostStats* st = pol.stats(e.str("hostname"))) {
                const auto& d = st->denials.n;
                auto count = [&](const char* k, core::Denial kind) {
                    row.emplace_back(k, n(d[size_t(kind)]));
                };
                row.emplace_back("connectionsApproved", n(st->connections_approved));
                row.emplace_back("connectionsDenied", n(st->connections_denied));
                row.emplace_back("connectionsCurrent", n(st->connections_current));
                count("sessionDenied", core::Denial::session);
                count("senderDenied", core::Denial::sender);
                count("receiverDenied", core::Denial::receiver);
                count("messageDenied", core::Denial::message);
                count("subscriptionDenied", core::Denial::subscription);
                count("maxMessageSizeDenied", core::Denial::message_size);
                count("managementDenied", core::Denial::management);
                json::Object users;
                for (const auto& [user, c] : st->by_user) {
                    json::Object kinds;
                    for (size_t i = 0; i < core::denial_kinds; ++i)
                        if (c.n[i])
                            kinds.emplace_back(std::string(core::to_string(core::Denial(i))),
                                               n(c.n[i]));
                    users.emplace_back(user, json::Value(std::move(kinds)));
                }
                row.emplace_back("perUserDenials", json::Value(std::move(users)));
            }
            rows.push_back(std::move(row));
        }
        return rows;
    };
    runtime_entity(p, ops, "vhost");
    p.update = [&ops](const json::Object& row, const json::Object& changes) {
        return ops.update("vhost", text_of(row, "name"), changes);
    };
    return p;
}

}  // namespace trestle::app::entities
