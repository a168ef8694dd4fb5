// trestled: the Trestle router daemon.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "app/daemon.hpp"
#include "app/log_ring.hpp"
#include "management/config.hpp"
#include "trestle/version.hpp"
#include "util/log.hpp"

namespace trestle::app {
extern const char* const default_config_text;
}

namespace {

void usage(FILE* out) {
    std::fprintf(out,
                 "Usage: trestled [OPTIONS]\n"
                 "\n"
                 "Trestle: an AMQP 1.0 / MQTT router and protocol bridge in front of Kafka.\n"
                 "\n"
                 "Options:\n"
                 "  -c, --config FILE      configuration file (qdrouterd syntax, or JSON when\n"
                 "                         FILE ends in .json); default: the built-in\n"
                 "                         router-config/standalone.conf\n"
                 "  -l, --log-level LEVEL  trace, debug, info (default), warning, error,\n"
                 "                         critical or off\n"
                 "      --check            validate the configuration and exit\n"
                 "      --schema-reference print the configuration reference (Markdown) and exit\n"
                 "  -v, --version          print the version and exit\n"
                 "  -h, --help             print this help and exit\n"
                 "\n"
                 "Stops gracefully on SIGTERM or SIGINT (links detached, connections closed).\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    std::string level = "info";
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* opt) -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "trestled: option %s needs a value\n", opt);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else if (a == "-v" || a == "--version") {
            std::printf("%s %s\n", trestle::product, trestle::version);
            return 0;
        } else if (a == "-c" || a == "--config") {
            config_path = value(a.c_str());
        } else if (a.rfind("--config=", 0) == 0) {
            config_path = a.substr(9);
        } else if (a == "-l" || a == "--log-level") {
            level = value(a.c_str());
        } else if (a.rfind("--log-level=", 0) == 0) {
            level = a.substr(12);
        } else if (a == "--schema-reference") {
            std::fputs(trestle::management::reference_markdown().c_str(), stdout);
            return 0;
        } else if (a == "--check") {
            check_only = true;
        } else {
            std::fprintf(stderr, "trestled: unknown option '%s' (see --help)\n", a.c_str());
            return 2;
        }
    }

    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") {
        std::fprintf(stderr, "trestled: unknown log level '%s'\n", level.c_str());
        return 2;
    }
    // Console, plus the in-memory ring management GET-LOG reads.
    auto ring = std::make_shared<trestle::app::LogRing>(1000);
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto logger =
        std::make_shared<spdlog::logger>("DEFAULT", spdlog::sinks_init_list{console, ring});
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n %v");  // %n: the module
    spdlog::set_level(lvl);
    spdlog::flush_on(spdlog::level::trace);  // one line per event, visible at once
    trestle::logs::init();

    try {
        auto config = config_path.empty() ? trestle::management::parse_config(
                                                trestle::app::default_config_text,
                                                "<built-in router-config/standalone.conf>", false)
                                          : trestle::management::load_config_file(config_path);
        trestle::app::Daemon daemon(config, ring);
        if (check_only) {
            std::printf("configuration OK\n");
            return 0;
        }
        spdlog::info("{} {} starting (router id '{}')", trestle::product, trestle::version,
                     daemon.router().settings().id);
        std::string err = daemon.start();
        if (!err.empty()) {
            spdlog::critical("{}", err);
            return 1;
        }
        return daemon.run();
    } catch (const trestle::management::ConfigError& e) {
        spdlog::critical("configuration error: {}", e.what());
        return 1;
    } catch (const std::exception& e) {
        spdlog::critical("fatal: {}", e.what());
        return 1;
    }
}
