// /metrics: the Prometheus text format (0.0.4), from the same read-only view management reads.
#include "app/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "amqp/sasl.hpp"
#include "app/process_stats.hpp"
#include "trestle/version.hpp"

namespace trestle::app {

namespace {

// Prometheus text exposition: a family header once, then its samples.
class Exposition {
  public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
    void sample(std::string_view name, Labels labels, double value) {
        out_ += name;
        if (labels.size()) {
            out_ += '{';
            bool first = true;
            for (const auto& [k, v] : labels) {
                if (!first) out_ += ',';
                first = false;
                out_ += k;
                out_ += "=\"";
                escape(v);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        char buf[32];
        if (std::isinf(value))
            out_ += value > 0 ? "+Inf" : "-Inf";
        else if (value == std::floor(value) && std::fabs(value) < 1e15)
            out_.append(buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "%.0f", value)));
        else
            out_.append(buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "%.9g", value)));
        out_ += '\n';
    }
    void one(std::string_view name, std::string_view type, std::string_view help, double value) {
        family(name, type, help);
        sample(name, {}, value);
    }
    std::string take() { return std::move(out_); }

  private:
    void escape(std::string_view v) {
        for (char c : v) {
            if (c == '\\')
                out_ += "\\\\";
            else if (c == '"')
                out_ += "\\\"";
            else if (c == '\n')
                out_ += "\\n";
            else
                out_ += c;
        }
    }
    std::string out_;
};

double d(uint64_t v) {
    return static_cast<double>(v);
}

}  // namespace

std::string metrics(const View& view, size_t max_addresses) {
    Exposition x;
    const std::string& id = view.router().settings().id;
    x.family("trestle_info", "gauge", "The router: id and version.");
    x.sample("trestle_info", {{"router_id", id}, {"version", trestle::version}}, 1);
    x.one("trestle_uptime_seconds", "gauge", "Seconds since the router started.",
          d(view.uptime_seconds()));
    x.one("trestle_resident_memory_bytes", "gauge", "Resident set size.",
          static_cast<double>(resident_bytes()));
    x.one("trestle_ready", "gauge", "1 when /readyz answers 200.",
          view.not_ready().empty() ? 1 : 0);

    size_t amqp = view.amqp_connection_count();
    x.family("trestle_connections", "gauge", "Open client connections.");
    x.sample("trestle_connections", {{"protocol", "amqp"}}, d(amqp));
    x.sample("trestle_connections", {{"protocol", "mqtt"}}, d(view.mqtt().connection_count()));
    x.one("trestle_links", "gauge", "Attached links (AMQP links, MQTT sessions' links, Kafka).",
          d(view.router().links().size()));
    x.one("trestle_addresses", "gauge", "Addresses in use.", d(view.router().addresses().size()));

    const auto& c = view.router().counters();
    x.one("trestle_deliveries_ingress_total", "counter", "Messages from producers.",
          d(c.deliveries_ingress));
    x.one("trestle_deliveries_egress_total", "counter", "Messages to consumers.",
          d(c.deliveries_egress));
    x.family("trestle_deliveries_settled_total", "counter",
             "Deliveries settled, by outcome (presettled: sent settled; dropped: presettled with "
             "no consumer).");
    x.sample("trestle_deliveries_settled_total", {{"outcome", "accepted"}}, d(c.accepted));
    x.sample("trestle_deliveries_settled_total", {{"outcome", "rejected"}}, d(c.rejected));
    x.sample("trestle_deliveries_settled_total", {{"outcome", "released"}}, d(c.released));
    x.sample("trestle_deliveries_settled_total", {{"outcome", "modified"}}, d(c.modified));
    x.sample("trestle_deliveries_settled_total", {{"outcome", "presettled"}}, d(c.presettled));
    x.sample("trestle_deliveries_settled_total", {{"outcome", "dropped"}}, d(c.dropped_presettled));

    x.one("trestle_deliveries_delayed_1sec_total", "counter",
          "Deliveries settled 1 to 10 s after they arrived.", d(c.delayed_1sec));
    x.one("trestle_deliveries_delayed_10sec_total", "counter",
          "Deliveries settled more than 10 s after they arrived.", d(c.delayed_10sec));
    x.one("trestle_deliveries_stuck", "gauge", "Deliveries unsettled for more than 10 s now.",
          d(view.router().stuck_deliveries()));

    // qdrouterd's router-wide series under its names, so dashboards built for it keep working.
    {
        auto qdr = [&](const char* name, const char* type, double v) {
            // qdrouterd prints TYPE lines only; a HELP line keeps promtool quiet.
            x.one(name, type, "As qdrouterd reports it.", v);
        };
        qdr("qdr_connections_total", "gauge", d(amqp + view.mqtt().connection_count()));
        qdr("qdr_links_total", "gauge", d(view.router().links().size()));
        qdr("qdr_addresses_total", "gauge", d(view.router().addresses().size()));
        qdr("qdr_routers_total", "gauge", 0);
        qdr("qdr_link_routes_total", "gauge", d(view.router().link_routes().size()));
        qdr("qdr_auto_links_total", "gauge", 0);
        qdr("qdr_presettled_deliveries_total", "counter", d(c.presettled));
        qdr("qdr_dropped_presettled_deliveries_total", "counter", d(c.dropped_presettled));
        qdr("qdr_accepted_deliveries_total", "counter", d(c.accepted));
        qdr("qdr_released_deliveries_total", "counter", d(c.released));
        qdr("qdr_rejected_deliveries_total", "counter", d(c.rejected));
        qdr("qdr_modified_deliveries_total", "counter", d(c.modified));
        qdr("qdr_deliveries_ingress_total", "counter", d(c.deliveries_ingress));
        qdr("qdr_deliveries_egress_total", "counter", d(c.deliveries_egress));
        qdr("qdr_deliveries_transit_total", "counter", 0);
        qdr("qdr_deliveries_ingress_route_container_total", "counter",
            d(c.deliveries_ingress_route_container));
        qdr("qdr_deliveries_egress_route_container_total", "counter",
            d(c.deliveries_egress_route_container));
        qdr("qdr_deliveries_delayed_1sec_total", "counter", d(c.delayed_1sec));
        qdr("qdr_deliveries_delayed_10sec_total", "counter", d(c.delayed_10sec));
        qdr("qdr_deliveries_stuck_total", "gauge", d(view.router().stuck_deliveries()));
        qdr("qdr_links_blocked_total", "gauge", d(view.blocked_links()));
        qdr("qdr_deliveries_redirected_to_fallback_total", "counter", 0);
    }

    // Authentication: AMQP SASL outcomes on listeners, MQTT CONNECTs refused for credentials.
    x.family("trestle_authentication_failures_total", "counter",
             "Clients refused for their credentials (wrong password, unknown user, no "
             "credentials where they are required, an unacceptable mechanism).");
    x.sample("trestle_authentication_failures_total", {{"protocol", "amqp"}},
             d(amqp::SaslSession::counters().failed));
    x.sample("trestle_authentication_failures_total", {{"protocol", "mqtt"}},
             d(view.mqtt().auth_failures));
    x.sample("trestle_authentication_failures_total", {{"protocol", "http"}},
             d(view.http_auth_failures()));
    x.family("trestle_authentications_total", "counter", "AMQP SASL exchanges that succeeded.");
    x.sample("trestle_authentications_total", {{"protocol", "amqp"}},
             d(amqp::SaslSession::counters().succeeded));

    // Policy: denials per vhost, user and kind (users bounded by the policy's tracking).
    if (const core::Policy& pol = view.router().policy(); pol.configured()) {
        x.family("trestle_policy_connections", "gauge", "User connections the policy counts.");
        x.sample("trestle_policy_connections", {}, d(pol.connections_current()));
        x.family("trestle_policy_denials_total", "counter",
                 "Refusals by the policy: connections, sessions, senders, receivers, messages, "
                 "subscriptions, message sizes, management writes.");
        if (pol.connections_denied())
            x.sample("trestle_policy_denials_total",
                     {{"vhost", ""}, {"user", ""}, {"kind", "connection"}},
                     d(pol.connections_denied() - [&] {
                         uint64_t in_vhosts = 0;
                         for (const auto& n : pol.vhost_names())
                             in_vhosts += pol.stats(n)->connections_denied;
                         return in_vhosts;
                     }()));
        for (const auto& name : pol.vhost_names()) {
            const core::VhostStats* st = pol.stats(name);
            for (const auto& [user, c] : st->by_user)
                for (size_t i = 0; i < core::denial_kinds; ++i)
                    if (c.n[i])
                        x.sample("trestle_policy_denials_total",
                                 {{"vhost", name},
                                  {"user", user},
                                  {"kind", std::string(core::to_string(core::Denial(i)))}},
                                 d(c.n[i]));
        }
    }

    // Listeners
    std::vector<ListenerState> listeners;
    for (const char* type : {"listener", "mqttListener", "httpListener"})
        for (auto& l : view.listeners(type)) listeners.push_back(std::move(l));
    x.family("trestle_listener_up", "gauge", "1 while the listener accepts connections.");
    for (const auto& l : listeners)
        x.sample("trestle_listener_up", {{"listener", l.name}, {"protocol", l.protocol}},
                 l.up ? 1 : 0);
    x.family("trestle_listener_connections", "gauge", "Open connections per listener.");
    for (const auto& l : listeners)
        x.sample("trestle_listener_connections", {{"listener", l.name}, {"protocol", l.protocol}},
                 d(l.connections));

    // Addresses: the busiest first, at most max_addresses of them.
    std::vector<const core::Address*> addrs;
    addrs.reserve(view.router().addresses().size());
    for (const auto& [name, a] : view.router().addresses()) addrs.push_back(a.get());
    auto busier = [](const core::Address* a, const core::Address* b) {
        uint64_t ta = a->counters().deliveries_ingress + a->counters().deliveries_egress;
        uint64_t tb = b->counters().deliveries_ingress + b->counters().deliveries_egress;
        return ta != tb ? ta > tb : a->name() < b->name();
    };
    size_t shown = std::min(addrs.size(), max_addresses);
    std::partial_sort(addrs.begin(), addrs.begin() + static_cast<std::ptrdiff_t>(shown),
                      addrs.end(), busier);
    addrs.resize(shown);
    x.one("trestle_address_series_omitted", "gauge",
          "Addresses left out of the per-address series (httpListener metricsMaxAddresses).",
          d(view.router().addresses().size() - shown));
    x.family("trestle_address_deliveries_ingress_total", "counter",
             "Messages from producers, per address.");
    for (const auto* a : addrs)
        x.sample("trestle_address_deliveries_ingress_total", {{"address", a->name()}},
                 d(a->counters().deliveries_ingress));
    x.family("trestle_address_deliveries_egress_total", "counter",
             "Messages to consumers, per address.");
    for (const auto* a : addrs)
        x.sample("trestle_address_deliveries_egress_total", {{"address", a->name()}},
                 d(a->counters().deliveries_egress));
    x.family("trestle_address_dropped_presettled_total", "counter",
             "Presettled messages with no consumer, per address.");
    for (const auto* a : addrs)
        x.sample("trestle_address_dropped_presettled_total", {{"address", a->name()}},
                 d(a->counters().dropped_presettled));
    x.family("trestle_address_consumers", "gauge", "Consumer links, per address.");
    for (const auto* a : addrs)
        x.sample("trestle_address_consumers", {{"address", a->name()}}, d(a->consumers().size()));
    x.family("trestle_address_producers", "gauge", "Producer links, per address.");
    for (const auto* a : addrs)
        x.sample("trestle_address_producers", {{"address", a->name()}}, d(a->producers().size()));

    // MQTT
    size_t connected = 0;
    for (const auto& [cid, s] : view.mqtt().sessions()) connected += s->connection() != nullptr;
    x.family("trestle_mqtt_sessions", "gauge",
             "MQTT sessions, connected or kept for offline clients.");
    x.sample("trestle_mqtt_sessions", {{"state", "connected"}}, d(connected));
    x.sample("trestle_mqtt_sessions", {{"state", "offline"}},
             d(view.mqtt().sessions().size() - connected));
    x.one("trestle_mqtt_queued_messages", "gauge", "Messages queued or in flight in MQTT sessions.",
          d(view.mqtt().total_queued));
    x.family("trestle_mqtt_dropped_messages_total", "counter",
             "MQTT messages not delivered, by reason.");
    x.sample("trestle_mqtt_dropped_messages_total", {{"reason", "qos0-not-sent"}},
             d(view.mqtt().dropped_qos0));
    x.sample("trestle_mqtt_dropped_messages_total", {{"reason", "queue-full"}},
             d(view.mqtt().dropped_queue_full));
    x.sample("trestle_mqtt_dropped_messages_total", {{"reason", "expired"}},
             d(view.mqtt().expired));
    x.sample("trestle_mqtt_dropped_messages_total", {{"reason", "too-large"}},
             d(view.mqtt().oversized));
    x.one("trestle_retained_messages", "gauge", "Retained messages held.",
          d(view.router().retained().size()));

    // Kafka
    if (const kafka::Adapter* k = view.kafka()) {
        x.one("trestle_kafka_up", "gauge", "1 while brokers answer and acknowledge.",
              k->health().up ? 1 : 0);
        x.one("trestle_kafka_in_flight", "gauge", "Records produced, not yet acknowledged.",
              d(k->in_flight()));
        struct Family {
            const char* name;
            const char* help;
            uint64_t kafka::RouteCounters::*field;
        };
        static const Family families[] = {
            {"trestle_kafka_produced_total", "Records Kafka acknowledged, per kafkaRoute.",
             &kafka::RouteCounters::produced},
            {"trestle_kafka_produce_failed_total", "Records Kafka refused, per kafkaRoute.",
             &kafka::RouteCounters::produce_failed},
            {"trestle_kafka_consumed_total", "Records routed to consumers, per kafkaRoute.",
             &kafka::RouteCounters::consumed},
            {"trestle_kafka_dead_lettered_total",
             "Records sent to the dead-letter topic, per kafkaRoute.",
             &kafka::RouteCounters::dead_lettered},
            {"trestle_kafka_redelivered_total",
             "Records sent again after a release, per kafkaRoute.",
             &kafka::RouteCounters::redelivered},
        };
        std::vector<std::pair<const kafka::RouteSettings*, kafka::RouteCounters>> routes;
        for (const auto& r : k->settings().routes) routes.emplace_back(&r, k->counters(r.name));
        for (const auto& f : families) {
            x.family(f.name, "counter", f.help);
            for (const auto& [r, rc] : routes)
                x.sample(f.name, {{"route", r->name}, {"topic", r->topic}}, d(rc.*f.field));
        }
        const auto& h = k->produce_latency();
        x.family("trestle_kafka_produce_latency_seconds", "histogram",
                 "Time from produce to Kafka's acknowledgement.");
        uint64_t cumulative = 0;
        char le[32];
        for (size_t i = 0; i < h.bounds.size(); ++i) {
            cumulative += h.counts[i];
            std::snprintf(le, sizeof le, "%g", h.bounds[i]);
            x.sample("trestle_kafka_produce_latency_seconds_bucket", {{"le", le}}, d(cumulative));
        }
        x.sample("trestle_kafka_produce_latency_seconds_bucket", {{"le", "+Inf"}}, d(h.count));
        x.sample("trestle_kafka_produce_latency_seconds_sum", {}, h.sum_seconds);
        x.sample("trestle_kafka_produce_latency_seconds_count", {}, d(h.count));
        x.family("trestle_kafka_consumer_lag", "gauge",
                 "Records in a consumed partition after the committed offset.");
        for (const auto& l : k->lag()) {
            if (l.lag < 0) continue;
            std::string part = std::to_string(l.partition);
            x.sample("trestle_kafka_consumer_lag",
                     {{"route", l.route}, {"topic", l.topic}, {"partition", part}},
                     static_cast<double>(l.lag));
        }
    }
    return x.take();
}

}  // namespace trestle::app
