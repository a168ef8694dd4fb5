// Per-module loggers (qdrouterd's log modules): each module's lines go through its own spdlog
// logger sharing the default logger's sinks, so its level can be changed at runtime (management
// `log` entity) without touching the others.
#pragma once

#include <spdlog/spdlog.h>

#include <array>
#include <optional>
#include <string_view>

namespace trestle::logs {

// SECURITY: TLS, authentication and policy (qdrouterd splits these into SERVER, AUTHSERVICE
// and POLICY; one module is what an operator looking for a refusal wants).
enum class Module : uint8_t { DEFAULT, ROUTER, AMQP, MQTT, KAFKA, MANAGEMENT, HTTP, SECURITY };
constexpr std::array<Module, 8> all_modules{Module::DEFAULT, Module::ROUTER,  Module::AMQP,
                                            Module::MQTT,    Module::KAFKA,   Module::MANAGEMENT,
                                            Module::HTTP,    Module::SECURITY};

std::string_view name(Module m);
std::optional<Module> parse(std::string_view name);

// Creates the module loggers from the default logger (its sinks, pattern and level). Before
// it, every module logs through the default logger.
void init();

// The module's logger.
spdlog::logger& get(Module m);

// DEFAULT's level applies to every module without a level of its own (as in qdrouterd).
void set_level(Module m, spdlog::level::level_enum level);
spdlog::level::level_enum level(Module m);
// Whether the module has a level of its own (DEFAULT: always).
bool has_own_level(Module m);

}  // namespace trestle::logs
