#include "mqtt/codec.hpp"

#include <cstring>

#include "mqtt/wire.hpp"

namespace trestle::mqtt {

using namespace wire;

void put_varint(uint32_t v, std::string& out) {
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if (v) b |= 0x80;
        out += static_cast<char>(b);
    } while (v);
}

size_t varint_size(uint32_t v) {
    if (v < 128) return 1;
    if (v < 16384) return 2;
    if (v < 2097152) return 3;
    return 4;
}

bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == 0) return false;
            ++p;
            continue;
        }
        uint32_t cp;
        int n;
        if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            n = 1;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            n = 2;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            n = 3;
        } else {
            return false;
        }
        if (end - p <= n) return false;
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        // Overlong forms, surrogates and beyond U+10FFFF are ill-formed.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
            return false;
        if (cp >= 0xd800 && cp <= 0xdfff) return false;
        if (cp > 0x10ffff) return false;
        p += n + 1;
    }
    return true;
}

FrameInfo frame(std::string_view b, uint32_t max_size) {
    FrameInfo f;
    if (b.size() < 2) return f;
    uint32_t len = 0;
    size_t i = 1;
    for (int shift = 0;; shift += 7) {
        if (i >= b.size()) return f;  // need more
        uint8_t c = static_cast<uint8_t>(b[i++]);
        len |= uint32_t(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
        if (shift == 21) {
            f.status = FrameInfo::Status::error;
            f.reason = reason::malformed_packet;
            f.error = "remaining length longer than 4 bytes";
            return f;
        }
    }
    f.header_size = i;
    f.total_size = i + len;
    if (max_size && f.total_size > max_size) {
        f.status = FrameInfo::Status::error;
        f.reason = reason::packet_too_large;
        f.error = "packet larger than the maximum packet size";
        return f;
    }
    f.status =
        b.size() >= f.total_size ? FrameInfo::Status::complete : FrameInfo::Status::need_more;
    return f;
}

namespace {

bool check_flags(uint8_t type, uint8_t flags, DecodeError& err) {
    uint8_t want = (type == 6 || type == 8 || type == 10) ? 0x2 : 0x0;
    if (type == 3) return true;
    if (flags != want) {
        err = {reason::malformed_packet, "reserved flags of the fixed header are wrong"};
        return false;
    }
    return true;
}

bool finish(In& in, DecodeError& err, bool allow_trailing = false) {
    if (!in.ok()) {
        err = {in.err_reason, in.err};
        return false;
    }
    if (!allow_trailing && in.left() != 0) {
        err = {reason::malformed_packet, "unexpected bytes at the end of the packet"};
        return false;
    }
    return true;
}

bool decode_connect(In& in, Connect& c, DecodeError& err) {
    if (!in.utf8(c.protocol_name)) return finish(in, err);
    if (!in.u8(c.level)) return finish(in, err);
    if (c.protocol_name == "MQIsdp" && c.level == 3) {
        err = {reason::unsupported_protocol_version, "MQTT 3.1 is not supported"};
        return false;
    }
    if (c.protocol_name != "MQTT") {
        err = {reason::unsupported_protocol_version, "unknown protocol name"};
        return false;
    }
    if (c.level != v311 && c.level != v5) {
        err = {reason::unsupported_protocol_version, "unsupported protocol level"};
        return false;
    }
    uint8_t flags;
    if (!in.u8(flags) || !in.u16(c.keep_alive)) return finish(in, err);
    if (flags & 0x01) {
        err = {reason::malformed_packet, "reserved connect flag set"};
        return false;
    }
    c.clean_start = flags & 0x02;
    bool will = flags & 0x04;
    uint8_t will_qos = (flags >> 3) & 0x03;
    bool will_retain = flags & 0x20;
    bool has_password = flags & 0x40;
    bool has_username = flags & 0x80;
    if (!will && (will_qos || will_retain)) {
        err = {reason::malformed_packet, "will QoS/retain set without a will"};
        return false;
    }
    if (will_qos > 2) {
        err = {reason::malformed_packet, "will QoS 3"};
        return false;
    }
    if (c.level == v311 && has_password && !has_username) {
        err = {reason::malformed_packet, "password without user name"};
        return false;
    }
    if (c.level == v5 && !read_properties(in, PropertiesOf::connect, c.properties))
        return finish(in, err);
    if (!in.utf8(c.client_id)) return finish(in, err);
    if (will) {
        Will w;
        w.qos = will_qos;
        w.retain = will_retain;
        if (c.level == v5 && !read_properties(in, PropertiesOf::will, w.properties))
            return finish(in, err);
        std::string_view payload;
        if (!in.utf8(w.topic) || !in.binary(payload)) return finish(in, err);
        w.payload.assign(payload);
        c.will = std::move(w);
    }
    if (has_username) {
        std::string u;
        if (!in.utf8(u)) return finish(in, err);
        c.username = std::move(u);
    }
    if (has_password) {
        std::string_view pw;
        if (!in.binary(pw)) return finish(in, err);
        c.password = std::string(pw);
    }
    return finish(in, err);
}

bool decode_publish(In& in, uint8_t flags, uint8_t level, Publish& p, DecodeError& err) {
    p.dup = flags & 0x08;
    p.qos = (flags >> 1) & 0x03;
    p.retain = flags & 0x01;
    if (p.qos == 3) {
        err = {reason::malformed_packet, "PUBLISH with QoS 3"};
        return false;
    }
    if (p.qos == 0 && p.dup) {
        err = {reason::malformed_packet, "DUP set on a QoS 0 PUBLISH"};
        return false;
    }
    if (!in.utf8(p.topic)) return finish(in, err);
    if (p.qos > 0) {
        if (!in.u16(p.packet_id)) return finish(in, err);
        if (p.packet_id == 0) {
            err = {reason::protocol_error, "packet identifier 0"};
            return false;
        }
    }
    if (level == v5 && !read_properties(in, PropertiesOf::publish, p.properties))
        return finish(in, err);
    p.payload.assign(in.rest());
    return finish(in, err);
}

bool decode_ack(In& in, PacketType type, uint8_t level, Ack& a, DecodeError& err) {
    a.type = type;
    if (!in.u16(a.packet_id)) return finish(in, err);
    if (a.packet_id == 0) {
        err = {reason::protocol_error, "packet identifier 0"};
        return false;
    }
    if (level == v5 && in.left() > 0) {
        if (!in.u8(a.code)) return finish(in, err);
        if (in.left() > 0 && !read_properties(in, PropertiesOf::ack, a.properties))
            return finish(in, err);
    }
    return finish(in, err);
}

bool decode_subscribe(In& in, uint8_t level, Subscribe& s, DecodeError& err) {
    if (!in.u16(s.packet_id)) return finish(in, err);
    if (s.packet_id == 0) {
        err = {reason::protocol_error, "packet identifier 0"};
        return false;
    }
    if (level == v5 && !read_properties(in, PropertiesOf::subscribe, s.properties))
        return finish(in, err);
    if (s.properties.subscription_identifiers.size() > 1) {
        err = {reason::protocol_error, "more than one subscription identifier"};
        return false;
    }
    while (in.ok() && in.left() > 0) {
        SubscriptionRequest r;
        uint8_t opts;
        if (!in.utf8(r.filter) || !in.u8(opts)) break;
        if (level == v5 ? (opts & 0xc0) : (opts & 0xfc)) {
            err = {reason::malformed_packet, "reserved subscription option bits set"};
            return false;
        }
        r.qos = opts & 0x03;
        if (r.qos == 3) {
            err = {reason::malformed_packet, "subscription QoS 3"};
            return false;
        }
        if (level == v5) {
            r.no_local = opts & 0x04;
            r.retain_as_published = opts & 0x08;
            r.retain_handling = (opts >> 4) & 0x03;
            if (r.retain_handling == 3) {
                err = {reason::protocol_error, "retain handling 3"};
                return false;
            }
        }
        s.subscriptions.push_back(std::move(r));
    }
    if (!finish(in, err)) return false;
    if (s.subscriptions.empty()) {
        err = {reason::protocol_error, "SUBSCRIBE without a topic filter"};
        return false;
    }
    return true;
}

bool decode_unsubscribe(In& in, uint8_t level, Unsubscribe& u, DecodeError& err) {
    if (!in.u16(u.packet_id)) return finish(in, err);
    if (u.packet_id == 0) {
        err = {reason::protocol_error, "packet identifier 0"};
        return false;
    }
    if (level == v5 && !read_properties(in, PropertiesOf::unsubscribe, u.properties))
        return finish(in, err);
    while (in.ok() && in.left() > 0) {
        std::string f;
        if (!in.utf8(f)) break;
        u.filters.push_back(std::move(f));
    }
    if (!finish(in, err)) return false;
    if (u.filters.empty()) {
        err = {reason::protocol_error, "UNSUBSCRIBE without a topic filter"};
        return false;
    }
    return true;
}

}  // namespace

bool decode_publish(std::string_view bytes, uint8_t level, PublishScratch& s, DecodeError& err) {
    FrameInfo f = frame(bytes, 0);
    if (f.status != FrameInfo::Status::complete || f.total_size != bytes.size() ||
        (static_cast<uint8_t>(bytes[0]) >> 4) != static_cast<uint8_t>(PacketType::publish)) {
        err = {reason::malformed_packet, f.error.empty() ? "incomplete packet" : f.error};
        return false;
    }
    Publish& p = s.publish;
    p.topic.clear();
    p.payload.clear();
    p.packet_id = 0;
    // Most publishes carry no properties: reset only when an earlier one left some.
    if (s.has_properties) p.properties = Properties{};
    s.has_properties = false;
    std::string_view body = bytes.substr(f.header_size);
    In in(body);
    if (!decode_publish(in, static_cast<uint8_t>(bytes[0]) & 0x0f, level, p, err)) {
        s.has_properties = level == v5;  // unknown how far it got
        return false;
    }
    // What is neither topic, packet id nor payload is the property block; an empty one is the
    // single length byte 0.
    size_t fixed = 2 + p.topic.size() + (p.qos > 0 ? 2 : 0) + p.payload.size();
    s.has_properties = level == v5 && body.size() > fixed + 1;
    return true;
}

std::optional<Packet> decode(std::string_view bytes, uint8_t level, DecodeError& err) {
    FrameInfo f = frame(bytes, 0);
    if (f.status != FrameInfo::Status::complete || f.total_size != bytes.size()) {
        err = {reason::malformed_packet, f.error.empty() ? "incomplete packet" : f.error};
        return std::nullopt;
    }
    uint8_t first = static_cast<uint8_t>(bytes[0]);
    uint8_t type = first >> 4;
    uint8_t flags = first & 0x0f;
    if (type == 0 || (type == 15 && level != v5)) {
        err = {reason::malformed_packet, "reserved packet type"};
        return std::nullopt;
    }
    if (!check_flags(type, flags, err)) return std::nullopt;
    In in(bytes.substr(f.header_size));
    Packet p;
    p.type = static_cast<PacketType>(type);
    bool ok = true;
    switch (p.type) {
        case PacketType::connect:
            ok = decode_connect(in, p.connect, err);
            break;
        case PacketType::connack: {
            uint8_t ack_flags;
            if (in.u8(ack_flags) && in.u8(p.connack.code)) {
                if (ack_flags & 0xfe) {
                    err = {reason::malformed_packet, "reserved CONNACK flags set"};
                    return std::nullopt;
                }
                p.connack.session_present = ack_flags & 1;
                if (level == v5) read_properties(in, PropertiesOf::connack, p.connack.properties);
            }
            ok = finish(in, err);
            break;
        }
        case PacketType::publish:
            ok = decode_publish(in, flags, level, p.publish, err);
            break;
        case PacketType::puback:
        case PacketType::pubrec:
        case PacketType::pubrel:
        case PacketType::pubcomp:
            ok = decode_ack(in, p.type, level, p.ack, err);
            break;
        case PacketType::subscribe:
            ok = decode_subscribe(in, level, p.subscribe, err);
            break;
        case PacketType::suback:
            if (in.u16(p.suback.packet_id)) {
                if (level == v5) read_properties(in, PropertiesOf::ack, p.suback.properties);
                for (std::string_view rest = in.rest(); char c : rest)
                    p.suback.codes.push_back(static_cast<uint8_t>(c));
            }
            ok = finish(in, err);
            break;
        case PacketType::unsubscribe:
            ok = decode_unsubscribe(in, level, p.unsubscribe, err);
            break;
        case PacketType::unsuback:
            if (in.u16(p.unsuback.packet_id) && level == v5) {
                read_properties(in, PropertiesOf::ack, p.unsuback.properties);
                for (std::string_view rest = in.rest(); char c : rest)
                    p.unsuback.codes.push_back(static_cast<uint8_t>(c));
            }
            ok = finish(in, err);
            break;
        case PacketType::pingreq:
        case PacketType::pingresp:
            ok = finish(in, err);
            break;
        case PacketType::disconnect:
            if (level == v5 && in.left() > 0) {
                in.u8(p.disconnect.code);
                if (in.left() > 0)
                    read_properties(in, PropertiesOf::disconnect, p.disconnect.properties);
            }
            ok = finish(in, err);
            break;
        case PacketType::auth:
            if (in.left() > 0) {
                in.u8(p.auth.code);
                if (in.left() > 0) read_properties(in, PropertiesOf::auth, p.auth.properties);
            }
            ok = finish(in, err);
            break;
    }
    if (!ok) return std::nullopt;
    return p;
}

void encode_connack(const Connack& c, uint8_t level, std::string& out) {
    std::string body;
    body += char(c.session_present ? 1 : 0);
    body += char(c.code);
    if (level == v5) encode_properties(c.properties, body);
    put_fixed_header(0x20, body.size(), out);
    out += body;
}

void encode_publish(const Publish& p, uint8_t level, std::string& out) {
    std::string vh;
    put_str(p.topic, vh);
    if (p.qos > 0) put_u16(p.packet_id, vh);
    if (level == v5) encode_properties(p.properties, vh);
    uint8_t first = 0x30 | (p.dup ? 0x08 : 0) | uint8_t(p.qos << 1) | (p.retain ? 1 : 0);
    put_fixed_header(first, vh.size() + p.payload.size(), out);
    out += vh;
    out += p.payload;
}

void encode_ack(PacketType type, uint16_t packet_id, uint8_t code, uint8_t level,
                std::string& out) {
    char b[5];
    b[0] = static_cast<char>(uint8_t(type) << 4 | (type == PacketType::pubrel ? 0x02 : 0));
    // MQTT 5: a success without properties may leave the reason code out (3.2.2.1).
    bool with_code = level == v5 && code != 0;
    b[1] = with_code ? 3 : 2;
    b[2] = static_cast<char>(packet_id >> 8);
    b[3] = static_cast<char>(packet_id & 0xff);
    b[4] = static_cast<char>(code);
    out.append(b, with_code ? 5 : 4);
}

void encode_ack(const Ack& a, uint8_t level, std::string& out) {
    std::string props;
    if (level == v5) encode_properties(a.properties, props);
    if (props.size() <= 1) return encode_ack(a.type, a.packet_id, a.code, level, out);
    std::string body;
    put_u16(a.packet_id, body);
    body += char(a.code);
    body += props;
    put_fixed_header(
        static_cast<uint8_t>(uint8_t(a.type) << 4) | (a.type == PacketType::pubrel ? 0x02 : 0),
        body.size(), out);
    out += body;
}

void encode_suback(const Suback& s, uint8_t level, std::string& out) {
    std::string body;
    put_u16(s.packet_id, body);
    if (level == v5) encode_properties(s.properties, body);
    for (uint8_t c : s.codes) body += char(c);
    put_fixed_header(0x90, body.size(), out);
    out += body;
}

void encode_unsuback(const Unsuback& u, uint8_t level, std::string& out) {
    std::string body;
    put_u16(u.packet_id, body);
    if (level == v5) {
        encode_properties(u.properties, body);
        for (uint8_t c : u.codes) body += char(c);
    }
    put_fixed_header(0xb0, body.size(), out);
    out += body;
}

void encode_disconnect(const Disconnect& d, uint8_t level, std::string& out) {
    std::string body;
    if (level == v5) {
        std::string props;
        encode_properties(d.properties, props);
        if (d.code != 0 || props.size() > 1) {
            body += char(d.code);
            if (props.size() > 1) body += props;
        }
    }
    put_fixed_header(0xe0, body.size(), out);
    out += body;
}

void encode_pingresp(std::string& out) {
    out.append("\xd0\x00", 2);
}

bool same(const Packet& a, const Packet& b) {
    if (a.type != b.type) return false;
    switch (a.type) {
        case PacketType::connect:
            return a.connect == b.connect;
        case PacketType::connack:
            return a.connack == b.connack;
        case PacketType::publish:
            return a.publish == b.publish;
        case PacketType::puback:
        case PacketType::pubrec:
        case PacketType::pubrel:
        case PacketType::pubcomp:
            return a.ack == b.ack;
        case PacketType::subscribe:
            return a.subscribe == b.subscribe;
        case PacketType::suback:
            return a.suback == b.suback;
        case PacketType::unsubscribe:
            return a.unsubscribe == b.unsubscribe;
        case PacketType::unsuback:
            return a.unsuback == b.unsuback;
        case PacketType::disconnect:
            return a.disconnect == b.disconnect;
        case PacketType::auth:
            return a.auth == b.auth;
        case PacketType::pingreq:
        case PacketType::pingresp:
            return true;
    }
    return false;
}

void encode(const Packet& p, uint8_t level, std::string& out) {
    switch (p.type) {
        case PacketType::connect: {
            const Connect& c = p.connect;
            std::string b;
            put_str(c.protocol_name, b);
            b += char(c.level);
            uint8_t flags = (c.clean_start ? 0x02 : 0);
            if (c.will) flags |= 0x04 | uint8_t(c.will->qos << 3) | (c.will->retain ? 0x20 : 0);
            if (c.password) flags |= 0x40;
            if (c.username) flags |= 0x80;
            b += char(flags);
            put_u16(c.keep_alive, b);
            if (c.level == v5) encode_properties(c.properties, b);
            put_str(c.client_id, b);
            if (c.will) {
                if (c.level == v5) encode_properties(c.will->properties, b);
                put_str(c.will->topic, b);
                put_str(c.will->payload, b);
            }
            if (c.username) put_str(*c.username, b);
            if (c.password) put_str(*c.password, b);
            put_fixed_header(0x10, b.size(), out);
            out += b;
            break;
        }
        case PacketType::connack:
            encode_connack(p.connack, level, out);
            break;
        case PacketType::publish:
            encode_publish(p.publish, level, out);
            break;
        case PacketType::puback:
        case PacketType::pubrec:
        case PacketType::pubrel:
        case PacketType::pubcomp:
            encode_ack(p.ack, level, out);
            break;
        case PacketType::subscribe: {
            std::string b;
            put_u16(p.subscribe.packet_id, b);
            if (level == v5) encode_properties(p.subscribe.properties, b);
            for (const auto& r : p.subscribe.subscriptions) {
                put_str(r.filter, b);
                uint8_t o = r.qos;
                if (level == v5)
                    o |= (r.no_local ? 0x04 : 0) | (r.retain_as_published ? 0x08 : 0) |
                         uint8_t(r.retain_handling << 4);
                b += char(o);
            }
            put_fixed_header(0x82, b.size(), out);
            out += b;
            break;
        }
        case PacketType::suback:
            encode_suback(p.suback, level, out);
            break;
        case PacketType::unsubscribe: {
            std::string b;
            put_u16(p.unsubscribe.packet_id, b);
            if (level == v5) encode_properties(p.unsubscribe.properties, b);
            for (const auto& f : p.unsubscribe.filters) put_str(f, b);
            put_fixed_header(0xa2, b.size(), out);
            out += b;
            break;
        }
        case PacketType::unsuback:
            encode_unsuback(p.unsuback, level, out);
            break;
        case PacketType::pingreq:
            out.append("\xc0\x00", 2);
            break;
        case PacketType::pingresp:
            encode_pingresp(out);
            break;
        case PacketType::disconnect:
            encode_disconnect(p.disconnect, level, out);
            break;
        case PacketType::auth: {
            std::string b;
            std::string props;
            encode_properties(p.auth.properties, props);
            if (p.auth.code != 0 || props.size() > 1) {
                b += char(p.auth.code);
                if (props.size() > 1) b += props;
            }
            put_fixed_header(0xf0, b.size(), out);
            out += b;
            break;
        }
    }
}

}  // namespace trestle::mqtt
