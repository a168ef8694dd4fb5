// What the HTTP listener answers: /healthz, /readyz and /metrics (app/metrics.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/daemon.hpp"
#include "app/metrics.hpp"
#include "app/process_stats.hpp"
#include "trestle/version.hpp"

namespace trestle::app {

http::Response Daemon::http_request(const http::Request& req, const HttpListenerConfig& hc) {
    http::Response r;
    if (req.path == "/healthz" || req.path == "/livez") {
        r.body = "ok\n";
    } else if (req.path == "/readyz") {
        std::vector<std::string> why = not_ready();
        r.content_type = "application/json";
        if (why.empty()) {
            r.body = "{\"status\":\"ready\"}\n";
        } else {
            r.status = 503;
            json::Array reasons;
            for (auto& w : why) reasons.emplace_back(std::move(w));
            r.body =
                json::dump(json::Object{{"status", "not ready"}, {"reasons", std::move(reasons)}}) +
                "\n";
        }
    } else if (req.path == "/metrics") {
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics(*this, hc.metrics_max_addresses);
    } else {
        r.status = 404;
        r.body = "not found: /healthz, /readyz and /metrics are served\n";
    }
    return r;
}

}  // namespace trestle::app
