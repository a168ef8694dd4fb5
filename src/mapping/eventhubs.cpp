#include "mapping/eventhubs.hpp"

#include <algorithm>

#include "amqp/codec.hpp"
#include "mapping/mqtt_amqp.hpp"

namespace trestle::mapping {

using detail::annotated;
using detail::parse_int;
using detail::plain;

namespace eventhubs {

namespace {
constexpr std::string_view partitions = "/Partitions/";
constexpr std::string_view groups = "/ConsumerGroups/";
constexpr std::string_view argument_error = "com.microsoft:argument-error";
constexpr std::string_view out_of_range = "com.microsoft:argument-out-of-range";

bool read_partition(std::string_view s, int32_t& out) {
    int64_t n = 0;
    if (!parse_int(s, n) || n < 0 || n > INT32_MAX) return false;
    out = static_cast<int32_t>(n);
    return true;
}

// `amqp.annotation.<name> <op> '<value>'`: name, whether inclusive, the value.
bool read_selector(std::string_view expr, Start& out, core::ErrorCondition& error) {
    auto fail = [&](std::string why) {
        error = {std::string(argument_error), "selector filter: " + why};
        return false;
    };
    constexpr std::string_view prefix = "amqp.annotation.";
    while (!expr.empty() && expr.front() == ' ') expr.remove_prefix(1);
    if (!expr.starts_with(prefix)) return fail("expected amqp.annotation.<name> <op> '<value>'");
    expr.remove_prefix(prefix.size());
    auto sp = expr.find_first_of(" ><=");
    if (sp == std::string_view::npos) return fail("no comparison");
    std::string_view name = expr.substr(0, sp);
    expr.remove_prefix(sp);
    while (!expr.empty() && expr.front() == ' ') expr.remove_prefix(1);
    bool inclusive;
    if (expr.starts_with(">=")) {
        inclusive = true;
        expr.remove_prefix(2);
    } else if (expr.starts_with(">")) {
        inclusive = false;
        expr.remove_prefix(1);
    } else {
        return fail("only > and >= are supported");
    }
    while (!expr.empty() && expr.front() == ' ') expr.remove_prefix(1);
    while (!expr.empty() && expr.back() == ' ') expr.remove_suffix(1);
    if (expr.size() < 2 || expr.front() != '\'' || expr.back() != '\'')
        return fail("the value must be quoted");
    std::string_view v = expr.substr(1, expr.size() - 2);
    if (name == "x-opt-offset" || name == "x-opt-sequence-number") {
        if (v == "@latest") {
            out.kind = Start::Kind::latest;
            return true;
        }
        int64_t n = 0;
        if (!parse_int(v, n) || n < -1) return fail("'" + std::string(v) + "' is not an offset");
        if (n == -1) {
            out.kind = Start::Kind::earliest;
            return true;
        }
        out.kind = Start::Kind::offset;
        out.value = inclusive ? n : n + 1;
        return true;
    }
    if (name == "x-opt-enqueued-time") {
        int64_t n = 0;
        if (!parse_int(v, n) || n < 0) return fail("'" + std::string(v) + "' is not a time in ms");
        out.kind = Start::Kind::time;
        out.value = inclusive ? n : n + 1;
        return true;
    }
    return fail("unknown annotation '" + std::string(name) + "'");
}
}  // namespace

bool read_target(std::string_view address, Target& out, core::ErrorCondition& error) {
    auto at = address.find(partitions);
    out.hub.assign(address.substr(0, at));
    if (out.hub.empty() || out.hub.find('/') != std::string::npos) {
        error = {"amqp:not-found", "the target must be <hub> or <hub>/Partitions/<n>"};
        return false;
    }
    if (at != std::string_view::npos) {
        int32_t p = 0;
        if (!read_partition(address.substr(at + partitions.size()), p)) {
            error = {std::string(out_of_range), "not a partition number"};
            return false;
        }
        out.partition = p;
    }
    return true;
}

bool read_consume(std::string_view address, std::string_view filter, Consume& out,
                  core::ErrorCondition& error) {
    auto g = address.find(groups);
    auto p = address.find(partitions);
    if (g == std::string_view::npos || p == std::string_view::npos || g == 0 ||
        p < g + groups.size()) {
        error = {"amqp:not-found",
                 "the source must be <hub>/ConsumerGroups/<group>/Partitions/<n>"};
        return false;
    }
    out.hub.assign(address.substr(0, g));
    out.group.assign(address.substr(g + groups.size(), p - g - groups.size()));
    if (out.group.empty() || out.hub.find('/') != std::string::npos) {
        error = {"amqp:not-found",
                 "the source must be <hub>/ConsumerGroups/<group>/Partitions/<n>"};
        return false;
    }
    if (!read_partition(address.substr(p + partitions.size()), out.partition)) {
        error = {std::string(out_of_range), "not a partition number"};
        return false;
    }
    if (filter.empty()) return true;
    amqp::Reader r(filter);
    amqp::Value fs;
    if (!amqp::read_value(r, fs) || fs.type != amqp::Value::Type::map) {
        error = {std::string(argument_error), "the filter-set is not a map"};
        return false;
    }
    for (const auto& e : fs.entries) {
        const amqp::Value& v = plain(e.value);
        bool selector =
            (e.key.is_textual() && e.key.bytes == selector_filter) ||
            (e.value.type == amqp::Value::Type::described && !e.value.items.empty() &&
             e.value.items[0].as_integer() &&
             static_cast<uint64_t>(*e.value.items[0].as_integer()) == selector_descriptor) ||
            (e.value.type == amqp::Value::Type::described && !e.value.items.empty() &&
             e.value.items[0].is_textual() && e.value.items[0].bytes == selector_filter);
        if (!selector) continue;  // other filters are not Event Hubs': ignored, as the service does
        if (!v.is_textual()) {
            error = {std::string(argument_error), "the selector filter is not a string"};
            return false;
        }
        if (!read_selector(v.bytes, out.start, error)) return false;
    }
    return true;
}

core::MessageRef message(int64_t offset, int64_t timestamp_ms, std::optional<std::string_view> key,
                         std::string_view value, const std::vector<HeaderView>& headers) {
    return annotated(
        [&](amqp::Writer& w) -> uint32_t {
            w.symbol("x-opt-offset");
            w.string(std::to_string(offset));
            w.symbol("x-opt-sequence-number");
            w.int64(offset);
            w.symbol("x-opt-enqueued-time");
            w.timestamp(timestamp_ms);
            if (!key) return 6;
            w.symbol("x-opt-partition-key");
            w.string(*key);
            return 8;
        },
        value, headers);
}

bool read_batch(const core::Message& m, std::vector<std::string_view>& events) {
    events.clear();
    if (m.format() != core::MessageFormat::amqp) return false;
    amqp::MessageLayout l;
    if (!amqp::scan_message(m.bytes(), l).empty() || !l.body.present()) return false;
    std::string_view body = m.bytes().substr(l.body.offset, l.body.size);
    amqp::Reader r(body);
    while (!r.at_end()) {
        auto code = r.read_descriptor();
        auto kind = r.peek_code();
        if (code != static_cast<uint64_t>(amqp::Section::data) || !kind ||
            (*kind != 0xa0 && *kind != 0xb0))
            return false;
        auto bytes = r.read_bytes_like();
        if (!bytes) return false;
        // A complete message of its own, starting with a section and holding a body.
        amqp::MessageLayout inner;
        if (bytes->size() < 3 || (*bytes)[0] != '\0' ||
            !amqp::scan_message(*bytes, inner).empty() || !inner.body.present())
            return false;
        events.push_back(*bytes);
    }
    return !events.empty();
}

bool read_node_request(const core::Message& m, NodeRequest& out, std::string& error) {
    out = NodeRequest{};
    if (m.format() != core::MessageFormat::amqp) {
        error = "not an AMQP message";
        return false;
    }
    amqp::MessageLayout l;
    if (std::string e = amqp::scan_message(m.bytes(), l); !e.empty()) {
        error = e;
        return false;
    }
    out.reply_to.assign(l.reply_to);
    if (l.properties.present()) {
        amqp::Reader r(m.bytes().substr(l.properties.offset, l.properties.size));
        size_t end = 0;
        if (r.read_descriptor()) {
            if (auto n = r.enter_list(end); n && *n > 0) {
                size_t start = r.offset();
                if (r.skip_value() && r.raw_begin()[start] != '\x40')  // message-id, unless null
                    out.message_id.assign(r.raw_begin() + start, r.offset() - start);
            }
        }
    }
    if (!l.application_properties.present()) {
        error = "no application-properties (no operation)";
        return false;
    }
    amqp::Reader r(
        m.bytes().substr(l.application_properties.offset, l.application_properties.size));
    amqp::Value ap;
    if (!r.read_descriptor() || !amqp::read_value(r, ap) || ap.type != amqp::Value::Type::map) {
        error = "application-properties is not a map";
        return false;
    }
    for (const auto& [k, v] : ap.entries) {
        if (!k.is_textual()) continue;
        std::string* field = k.bytes == "operation"   ? &out.operation
                             : k.bytes == "type"      ? &out.type
                             : k.bytes == "name"      ? &out.name
                             : k.bytes == "partition" ? &out.partition
                                                      : nullptr;
        if (field) *field = v.is_textual() ? v.bytes : v.to_text();
    }
    if (out.operation.empty()) {
        error = "no 'operation' application property";
        return false;
    }
    return true;
}

std::string encode(const HubProperties& p) {
    amqp::Writer w;
    size_t m = w.begin_map();
    w.string("name");
    w.string(p.name);
    w.string("created_at");
    w.timestamp(0);  // Kafka does not keep a topic's creation time
    w.string("partition_count");
    w.int32(static_cast<int32_t>(p.partitions.size()));
    w.string("partition_ids");
    std::vector<std::string> ids;
    for (int32_t id : p.partitions) ids.push_back(std::to_string(id));
    w.string_array(ids);
    w.end_map(m, 8);
    return std::move(w.out());
}

std::string encode(const PartitionProperties& p) {
    amqp::Writer w;
    size_t m = w.begin_map();
    w.string("name");
    w.string(p.hub);
    w.string("partition");
    w.string(std::to_string(p.partition));
    w.string("begin_sequence_number");
    w.int64(p.begin);
    w.string("last_enqueued_sequence_number");
    w.int64(p.end - 1);
    w.string("last_enqueued_offset");
    w.string(std::to_string(p.end - 1));
    w.string("last_enqueued_time_utc");
    w.timestamp(p.last_time_ms);
    w.string("is_partition_empty");
    w.boolean(p.end <= p.begin);
    w.end_map(m, 14);
    return std::move(w.out());
}

core::MessageRef node_response(std::string_view reply_to, std::string_view correlation_id,
                               int32_t status, std::string_view description,
                               std::string_view condition, std::string_view body) {
    amqp::Writer w;
    w.response_properties(reply_to, correlation_id);
    w.descriptor(0x74);
    size_t ap = w.begin_map();
    w.string("status-code");
    w.int32(status);
    w.string("status-description");
    w.string(description);
    if (!condition.empty()) {
        w.string("error-condition");
        w.symbol(condition);
    }
    w.end_map(ap, condition.empty() ? 4 : 6);
    w.descriptor(0x77);
    if (body.empty())
        w.null();
    else
        w.out() += body;
    return core::MessageRef::adopt(core::Message::copy_of(w.out(), core::MessageFormat::amqp));
}

}  // namespace eventhubs
}  // namespace trestle::mapping
