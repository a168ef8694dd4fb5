// What the HTTP listener answers: /healthz, /readyz and /metrics (app/metrics.cpp).
#include <strings.h>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/daemon.hpp"
#include "app/metrics.hpp"
#include "app/process_stats.hpp"
#include "security/crypto.hpp"
#include "security/log.hpp"
#include "trestle/version.hpp"

namespace trestle::app {

// HTTP basic auth against the listener's user store; failures counted and logged (never the
// password), as the other protocols' are.
bool Daemon::basic_auth_ok(const http::Request& req, const HttpListenerConfig& hc) {
    std::string_view a = req.authorization;
    std::string why;
    std::string user;
    if (a.empty()) {
        why = "no credentials";
    } else if (a.size() < 6 || strncasecmp(a.data(), "Basic ", 6) != 0) {
        why = "not basic auth";
    } else {
        std::optional<std::string> decoded = security::base64_decode(a.substr(6));
        size_t colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos) {
            why = "malformed basic credentials";
        } else {
            user = decoded->substr(0, colon);
            if (hc.users->verify(user, std::string_view(*decoded).substr(colon + 1))) return true;
            why = "bad user name or password (user '" + user + "')";
        }
    }
    if (!a.empty()) {  // a client's first try, without credentials, is not a failure
        ++http_auth_failures_;
        security::logger().warn("HTTP {} on '{}' refused: {}", std::string(req.path),
                                hc.settings.name, why);
    }
    return false;
}

http::Response Daemon::http_request(const http::Request& req, const HttpListenerConfig& hc) {
    http::Response r;
    bool probe = req.path == "/healthz" || req.path == "/livez" || req.path == "/readyz";
    if (hc.users && !probe && !basic_auth_ok(req, hc)) {
        r.status = 401;
        r.www_authenticate = "Basic realm=\"trestle\", charset=\"UTF-8\"";
        r.body = "authentication required\n";
        return r;
    }
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
