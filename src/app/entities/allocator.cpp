// Memory (allocator, qdstat -m): the core's objects and MQTT sessions, their size and count.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider allocator(const View& view) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        auto row = [&](const char* what, size_t size, size_t count) {
            rows.push_back(json::Object{{"identity", std::string("allocator/") + what},
                                        {"name", std::string("allocator/") + what},
                                        {"typeName", what},
                                        {"typeSize", static_cast<int64_t>(size)},
                                        {"transferBatchSize", 0},
                                        {"localFreeListMax", 0},
                                        {"globalFreeListMax", 0},
                                        {"totalAllocFromHeap", static_cast<int64_t>(count)},
                                        {"totalFreeToHeap", 0},
                                        {"heldByThreads", static_cast<int64_t>(count)},
                                        {"batchesRebalancedToThreads", 0},
                                        {"batchesRebalancedToGlobal", 0}});
        };
        row("trestle::core::Delivery", sizeof(core::Delivery), view.router().live_deliveries());
        row("trestle::core::Link", sizeof(core::Link), view.router().links().size());
        row("trestle::core::Connection", sizeof(core::Connection),
            view.router().connections().size());
        row("trestle::core::Address", sizeof(core::Address), view.router().addresses().size());
        row("trestle::mqtt::Session", sizeof(mqtt::Session), view.mqtt().sessions().size());
        return rows;
    };
    return p;
}

}  // namespace trestle::app::entities
