#include "kafka/records.hpp"

#include "kafka/client.hpp"

namespace trestle::kafka {

namespace {

rd_kafka_headers_t* to_headers(const mapping::KafkaRecord& r) {
    if (r.headers.empty()) return nullptr;
    rd_kafka_headers_t* h = rd_kafka_headers_new(r.headers.size());
    for (const auto& [k, v] : r.headers)
        rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
    return h;
}

}  // namespace

// By topic handle (a route's own topic) or, without one, by name (a client's direct topic, a
// dead letter). A record without a timestamp of its own gets librdkafka's clock, as on the
// producer thread: one rule for every record.
rd_kafka_resp_err_t produce(rd_kafka_t* rk, rd_kafka_topic_t* rkt, const std::string& topic,
                            const mapping::KafkaRecord& r, void* opaque, int32_t partition) {
    rd_kafka_headers_t* h = to_headers(r);
    rd_kafka_vu_t vu[8];
    if (rkt) {
        vu[0].vtype = RD_KAFKA_VTYPE_RKT;
        vu[0].u.rkt = rkt;
    } else {
        vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[0].u.cstr = topic.c_str();
    }
    vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[1].u.i32 = partition;
    vu[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[2].u.i = RD_KAFKA_MSG_F_COPY;
    vu[3].vtype = RD_KAFKA_VTYPE_KEY;
    vu[3].u.mem = {r.has_key ? const_cast<char*>(r.key.data()) : nullptr,
                   r.has_key ? r.key.size() : 0};
    vu[4].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[4].u.mem = {const_cast<char*>(r.value.data()), r.value.size()};
    vu[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vu[5].u.i64 = r.timestamp_ms;  // 0: librdkafka's clock
    vu[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[6].u.ptr = opaque;
    size_t n = 7;
    if (h) {
        vu[7].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[7].u.headers = h;
        n = 8;
    }
    rd_kafka_error_t* e = rd_kafka_produceva(rk, vu, n);
    if (!e) return RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t err = rd_kafka_error_code(e);
    rd_kafka_error_destroy(e);
    if (h) rd_kafka_headers_destroy(h);  // owned by librdkafka only on success
    return err;
}

std::string partition_text(const rd_kafka_topic_partition_list_t* l) {
    std::string s;
    for (int i = 0; i < l->cnt; ++i) s += (i ? "," : "") + std::to_string(l->elems[i].partition);
    return s;
}

// The address and routable message of a consumed record under a route's settings.
RecordFate read_record(const rd_kafka_message_t* m, const RouteSettings& s, uint64_t now_ms,
                       int64_t wall_ms, std::string_view& address, core::MessageRef& msg) {
    std::vector<mapping::HeaderView> headers = record_headers(m);
    std::string_view key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
    std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    address = mapping::record_address(key, headers);
    if (address.empty()) address = s.address;
    if (address.empty()) return RecordFate::no_address;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    bool expired = false;
    msg = mapping::message_from_record(address, value, headers, ts > 0 ? ts : 0, now_ms, wall_ms,
                                       expired);
    if (expired) return RecordFate::expired;  // past its message expiry: nobody may receive it
    if (!msg) return RecordFate::unreadable;
    return RecordFate::ok;
}

// A consumed record as it is, for a dead letter.
mapping::KafkaRecord record_of(const rd_kafka_message_t* m) {
    mapping::KafkaRecord r;
    if (m->key) {
        r.key.assign(static_cast<const char*>(m->key), m->key_len);
        r.has_key = true;
    }
    if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
    for (const auto& [name, val] : record_headers(m)) r.headers.emplace_back(name, val);
    return r;
}

}  // namespace trestle::kafka
