// Logs: one row per module (DEFAULT's level applies to modules without their own); UPDATE sets
// a module's level at runtime.
#include <spdlog/spdlog.h>
#include "app/entities/entities.hpp"

#include <optional>

#include "util/log.hpp"

namespace trestle::app::entities {

namespace {

spdlog::logger& logger() {
    return logs::get(logs::Module::MANAGEMENT);
}

std::string level_name(spdlog::level::level_enum l) {
    switch (l) {
        case spdlog::level::trace:
            return "trace+";
        case spdlog::level::debug:
            return "debug+";
        case spdlog::level::info:
            return "info+";
        case spdlog::level::warn:
            return "warning+";
        case spdlog::level::err:
            return "error+";
        case spdlog::level::critical:
            return "critical+";
        default:
            return "none";
    }
}

std::optional<spdlog::level::level_enum> parse_level(std::string s) {
    if (!s.empty() && s.back() == '+') s.pop_back();
    if (s == "none" || s == "off") return spdlog::level::off;
    if (s == "notice") return spdlog::level::info;
    if (s == "warning") return spdlog::level::warn;
    if (s == "error") return spdlog::level::err;
    for (auto l : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                   spdlog::level::warn, spdlog::level::err, spdlog::level::critical})
        if (spdlog::level::to_string_view(l) == s) return l;
    return std::nullopt;
}

}  // namespace

Provider log() {
    Provider p;
    p.query = [] {
        std::vector<json::Object> rows;
        for (logs::Module m : logs::all_modules) {
            std::string n(logs::name(m));
            rows.push_back(json::Object{
                {"identity", "log/" + n},
                {"name", "log/" + n},
                {"module", n},
                {"enable",
                 logs::has_own_level(m) ? json::Value(level_name(logs::level(m))) : json::Value()},
                {"includeTimestamp", true},
                {"includeSource", false},
                {"outputFile", "stderr"}});
        }
        return rows;
    };
    p.update = [](const json::Object& row, const json::Object& changes) -> management::Status {
        auto module = logs::parse(text_of(row, "module"));
        if (!module)
            return management::Status::error(management::status::not_found, "no such log module");
        for (const auto& [k, v] : changes) {
            if (k != "enable") continue;
            auto l = parse_level(v.as_string());
            if (!l)
                return management::Status::error(
                    management::status::bad_request,
                    "enable '" + v.as_string() +
                        "' is not a level (trace+, "
                        "debug+, info+, warning+, error+, critical+, none)");
            logs::set_level(*module, *l);
            logger().info("management: log level of {} set to {}", logs::name(*module),
                          level_name(*l));
        }
        return {};
    };
    return p;
}

}  // namespace trestle::app::entities
