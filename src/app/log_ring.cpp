#include "app/log_ring.hpp"

namespace trestle::app {

void LogRing::sink_it_(const spdlog::details::log_msg& msg) {
    Record r;
    std::string_view text(msg.payload.data(), msg.payload.size());
    r.module.assign(msg.logger_name.data(), msg.logger_name.size());  // the module's logger
    r.text.assign(text);
    r.level = msg.level;
    r.time = std::chrono::duration<double>(msg.time.time_since_epoch()).count();
    records_.push_back(std::move(r));
    if (records_.size() > capacity_) records_.pop_front();
}

json::Array LogRing::records(size_t limit) {
    std::lock_guard<std::mutex> lock(mutex_);
    json::Array out;
    size_t start = records_.size() > limit ? records_.size() - limit : 0;
    for (size_t i = start; i < records_.size(); ++i) {
        const Record& r = records_[i];
        auto lv = spdlog::level::to_string_view(r.level);
        out.emplace_back(json::Array{r.module, std::string(lv.data(), lv.size()), r.text, nullptr,
                                     nullptr, r.time});
    }
    return out;
}

}  // namespace trestle::app
