#include "trestle/core/wills.hpp"

#include "trestle/core/router.hpp"

namespace trestle::core {

bool Wills::arm(WillRecord w) {
    w.due_ms += router_.now_ms();
    if (w.client_id.empty()) {
        router_.publish(w.topic, w.message);
        return true;
    }
    if (w.due_ms <= router_.now_ms()) {
        store_->cancel(w.client_id);  // held: no longer, anywhere
        router_.publish(w.topic, w.message);
        return true;
    }
    store_->arm(std::move(w));
    return false;
}

std::optional<WillRecord> Wills::reconnected(std::string_view client_id, bool session_ends) {
    auto w = store_->take(client_id);
    if (!w || !session_ends) return std::nullopt;
    router_.publish(w->topic, w->message);
    return w;
}

std::optional<WillRecord> Wills::fire_now(std::string_view client_id) {
    auto w = store_->take(client_id);
    if (w) router_.publish(w->topic, w->message);
    return w;
}

void Wills::publish_now(const WillRecord& w) {
    router_.publish(w.topic, w.message);
}

std::vector<WillRecord> Wills::check(uint64_t now_ms) {
    auto due = store_->take_due(now_ms);
    for (auto& w : due) router_.publish(w.topic, w.message);
    return due;
}

}  // namespace trestle::core
