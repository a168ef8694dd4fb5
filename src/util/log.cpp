#include "util/log.hpp"

#include <atomic>
#include <memory>

namespace trestle::logs {

namespace {

constexpr size_t count = all_modules.size();
std::array<std::shared_ptr<spdlog::logger>, count> loggers;
std::array<std::atomic<bool>, count> own{};

size_t index(Module m) {
    return static_cast<size_t>(m);
}

}  // namespace

std::string_view name(Module m) {
    static constexpr std::array<std::string_view, count> names{
        "DEFAULT", "ROUTER", "AMQP", "MQTT", "KAFKA", "MANAGEMENT", "HTTP", "SECURITY"};
    return names[index(m)];
}

std::optional<Module> parse(std::string_view n) {
    for (Module m : all_modules)
        if (name(m) == n) return m;
    return std::nullopt;
}

void init() {
    auto base = spdlog::default_logger();
    for (Module m : all_modules) {
        loggers[index(m)] = m == Module::DEFAULT ? base : base->clone(std::string(name(m)));
        own[index(m)] = m == Module::DEFAULT;
    }
}

spdlog::logger& get(Module m) {
    auto* l = loggers[index(m)].get();
    return l ? *l : *spdlog::default_logger_raw();
}

void set_level(Module m, spdlog::level::level_enum lvl) {
    get(m).set_level(lvl);
    if (m != Module::DEFAULT) {
        own[index(m)] = true;
        return;
    }
    for (Module o : all_modules)
        if (!own[index(o)]) get(o).set_level(lvl);
}

spdlog::level::level_enum level(Module m) {
    return get(m).level();
}

bool has_own_level(Module m) {
    return own[index(m)];
}

}  // namespace trestle::logs
