// The newest log records kept in memory for management GET-LOG (qdrouterd's log ring), as an
// spdlog sink next to the console one.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <deque>
#include <mutex>
#include <string>

#include "util/json.hpp"

namespace trestle::app {

class LogRing final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit LogRing(size_t capacity = 1000) : capacity_(capacity) {}
    // [module, level, text, file, line, timestamp seconds], oldest first, at most `limit`.
    json::Array records(size_t limit);

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}

  private:
    struct Record {
        std::string module, text;
        spdlog::level::level_enum level;
        double time;
    };
    size_t capacity_;
    std::deque<Record> records_;
};

}  // namespace trestle::app
