// Fuzzes the readers of direct topic access (Strimzi and Event Hubs dialects): receivers'
// source addresses and filter-sets (Event Hubs selector expressions included), senders'
// targets and messages. Each must refuse with a condition or give sane values; a record in a
// dialect's form must read back as itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "amqp/codec.hpp"
#include "mapping/eventhubs.hpp"
#include "mapping/strimzi.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace trestle;
    namespace s = mapping::strimzi;
    namespace eh = mapping::eventhubs;
    if (size == 0) return 0;
    std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    core::ErrorCondition e;
    switch (data[0] % 8) {
        case 0: {  // Strimzi filter-set
            s::Consume c;
            if (s::read_consume("topic/group.id/g", bytes, c, e)) {
                if (c.topic != "topic" || c.group != "g") __builtin_trap();
                if (c.partition && *c.partition < 0) __builtin_trap();
                if (c.offset && (*c.offset < 0 || !c.partition)) __builtin_trap();
            } else if (!e.name.starts_with("io.strimzi:")) {
                __builtin_trap();
            }
            break;
        }
        case 1: {  // Strimzi source address
            s::Consume c;
            if (s::read_consume(bytes, {}, c, e) && (c.group.empty() || c.topic.empty()))
                __builtin_trap();
            break;
        }
        case 2: {  // Event Hubs source address
            eh::Consume c;
            if (eh::read_consume(bytes, {}, c, e) &&
                (c.hub.empty() || c.group.empty() || c.partition < 0))
                __builtin_trap();
            eh::Target t;
            if (eh::read_target(bytes, t, e) &&
                (t.hub.empty() || (t.partition && *t.partition < 0)))
                __builtin_trap();
            break;
        }
        case 3: {  // Event Hubs selector expression, as a filter-set
            amqp::Writer w;
            size_t m = w.begin_map();
            w.symbol(eh::selector_filter);
            w.string(bytes);
            w.end_map(m, 2);
            eh::Consume c;
            if (eh::read_consume("hub/ConsumerGroups/$Default/Partitions/0", w.out(), c, e)) {
                if (c.start.value < 0) __builtin_trap();
            } else if (e.name.empty()) {
                __builtin_trap();
            }
            break;
        }
        case 4: {  // Event Hubs raw filter-set
            eh::Consume c;
            if (!eh::read_consume("hub/ConsumerGroups/g/Partitions/1", bytes, c, e) &&
                e.name.empty())
                __builtin_trap();
            break;
        }
        case 6: {  // an Event Hubs batch: events are complete messages inside it
            core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(bytes));
            std::vector<std::string_view> events;
            if (eh::read_batch(*m, events)) {
                mapping::Produce p;
                mapping::KafkaRecord rec;
                std::string err;
                for (auto ev : events) {
                    if (ev.data() < m->data() || ev.data() + ev.size() > m->data() + m->size())
                        __builtin_trap();
                    if (!mapping::read_direct_produce(ev, {}, "x-opt-partition-key", p, rec, err,
                                                      true) &&
                        err.empty())
                        __builtin_trap();
                }
            }
            break;
        }
        case 7: {  // a request to $cbs / $management; its answer must read back
            core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(bytes));
            eh::NodeRequest req;
            std::string err;
            if (!eh::read_node_request(*m, req, err)) {
                if (err.empty()) __builtin_trap();
                break;
            }
            if (req.operation.empty()) __builtin_trap();
            core::MessageRef r =
                eh::node_response(req.reply_to, req.message_id, 200, "OK", {},
                                  eh::encode(eh::PartitionProperties{req.name, 1, 0, 5, 7}));
            amqp::MessageLayout l;
            if (!amqp::scan_message(r->bytes(), l).empty() || !l.application_properties.present() ||
                l.to != req.reply_to)
                __builtin_trap();
            break;
        }
        default: {  // a sender's message
            core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(bytes));
            mapping::Produce p;
            mapping::KafkaRecord rec;
            std::string err;
            if (!s::read_produce(*m, p, rec, err) && err.empty()) __builtin_trap();
            if (p.partition && *p.partition < 0) __builtin_trap();
            // The dialects' own forms read back.
            std::string_view key = bytes.substr(0, bytes.size() / 2);
            core::MessageRef r = s::message("t", 3, 42, key, bytes);
            mapping::Produce back;
            if (!s::read_produce(*r, back, rec, err) || rec.value != bytes || !rec.has_key ||
                rec.key != key || back.partition != 3)
                __builtin_trap();
            core::MessageRef h = eh::message(7, 1000, key, bytes);
            if (!mapping::read_direct_produce(*h, {}, "x-opt-partition-key", back, rec, err) ||
                rec.value != bytes || rec.key != key)
                __builtin_trap();
        }
    }
    return 0;
}
