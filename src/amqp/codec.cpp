#include "amqp/codec.hpp"

#include <cstring>

namespace trestle::amqp {

namespace {

uint32_t be32(const uint8_t* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
uint64_t be64(const uint8_t* p) {
    return (uint64_t(be32(p)) << 32) | be32(p + 4);
}

// Fixed payload width of a format code, or -1 for variable/compound codes.
int fixed_width(uint8_t code) {
    switch (code >> 4) {
        case 0x4:
            return 0;
        case 0x5:
            return 1;
        case 0x6:
            return 2;
        case 0x7:
            return 4;
        case 0x8:
            return 8;
        case 0x9:
            return 16;
        default:
            return -1;
    }
}

constexpr int max_depth = 64;  // nesting bound: malicious input must not exhaust the stack

struct SymbolSection {
    const char* name;
    uint64_t code;
};
constexpr SymbolSection symbol_sections[] = {
    {"amqp:header:list", 0x70},
    {"amqp:delivery-annotations:map", 0x71},
    {"amqp:message-annotations:map", 0x72},
    {"amqp:properties:list", 0x73},
    {"amqp:application-properties:map", 0x74},
    {"amqp:data:binary", 0x75},
    {"amqp:amqp-sequence:list", 0x76},
    {"amqp:amqp-value:*", 0x77},
    {"amqp:footer:map", 0x78},
};

}  // namespace

bool Reader::need(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return fail("truncated AMQP value");
    return true;
}

bool Reader::skip_value(int depth) {
    if (depth > max_depth) return fail("AMQP value nested too deeply");
    if (!need(1)) return false;
    uint8_t code = *p_++;
    if (code == 0x00) {  // described: descriptor, then value
        return skip_value(depth + 1) && skip_value(depth + 1);
    }
    int w = fixed_width(code);
    if (w >= 0) {
        if (!need(static_cast<size_t>(w))) return false;
        p_ += w;
        return true;
    }
    size_t size;
    switch (code) {
        case 0xa0:
        case 0xa1:
        case 0xa3:
        case 0xc0:
        case 0xc1:
        case 0xe0:
            if (!need(1)) return false;
            size = *p_++;
            break;
        case 0xb0:
        case 0xb1:
        case 0xb3:
        case 0xd0:
        case 0xd1:
        case 0xf0:
            if (!need(4)) return false;
            size = be32(p_);
            p_ += 4;
            break;
        default:
            return fail("invalid AMQP format code");
    }
    if (!need(size)) return false;
    // Compound and array payloads are skipped by size; their insides are not validated here
    // because forwarding never looks inside them.
    p_ += size;
    return true;
}

std::optional<uint64_t> Reader::read_descriptor() {
    if (!need(2)) return std::nullopt;
    if (*p_ != 0x00) {
        fail("expected a described section");
        return std::nullopt;
    }
    ++p_;
    uint8_t code = *p_++;
    switch (code) {
        case 0x53:
            if (!need(1)) return std::nullopt;
            return *p_++;
        case 0x80: {
            if (!need(8)) return std::nullopt;
            uint64_t v = be64(p_);
            p_ += 8;
            return v;
        }
        case 0x44:
            return 0;
        case 0xa3:
        case 0xb3: {
            --p_;
            auto sym = read_bytes_like();
            if (!sym) return std::nullopt;
            for (const auto& s : symbol_sections)
                if (*sym == s.name) return s.code;
            return UINT64_MAX;  // an unknown symbolic descriptor
        }
        default:
            fail("invalid section descriptor");
            return std::nullopt;
    }
}

std::optional<uint32_t> Reader::enter_list(size_t& end) {
    if (!need(1)) return std::nullopt;
    uint8_t code = *p_++;
    switch (code) {
        case 0x45:
            end = offset();
            return 0;
        case 0xc0: {
            if (!need(2)) return std::nullopt;
            size_t size = p_[0];
            uint32_t count = p_[1];
            if (size < 1 || !need(size + 1)) {
                fail("invalid list8 size");
                return std::nullopt;
            }
            end = offset() + 1 + size;
            p_ += 2;
            return count;
        }
        case 0xd0: {
            if (!need(8)) return std::nullopt;
            size_t size = be32(p_);
            uint32_t count = be32(p_ + 4);
            if (size < 4 || static_cast<size_t>(end_ - p_) - 4 < size) {
                fail("invalid list32 size");
                return std::nullopt;
            }
            end = offset() + 4 + size;
            p_ += 8;
            return count;
        }
        default:
            fail("expected a list");
            return std::nullopt;
    }
}

std::optional<std::string_view> Reader::read_bytes_like(bool* is_null) {
    if (is_null) *is_null = false;
    if (!need(1)) return std::nullopt;
    uint8_t code = *p_++;
    size_t size;
    switch (code) {
        case 0x40:
            if (is_null) *is_null = true;
            return std::string_view{};
        case 0xa0:
        case 0xa1:
        case 0xa3:
            if (!need(1)) return std::nullopt;
            size = *p_++;
            break;
        case 0xb0:
        case 0xb1:
        case 0xb3:
            if (!need(4)) return std::nullopt;
            size = be32(p_);
            p_ += 4;
            break;
        default:
            --p_;
            fail("expected a string, symbol or binary");
            return std::nullopt;
    }
    if (!need(size)) return std::nullopt;
    std::string_view v(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return v;
}

std::optional<uint64_t> Reader::read_unsigned() {
    if (!need(1)) return std::nullopt;
    uint8_t code = *p_++;
    switch (code) {
        case 0x43:
        case 0x44:
            return 0;
        case 0x50:
        case 0x52:
        case 0x53:
            if (!need(1)) return std::nullopt;
            return *p_++;
        case 0x60:
            if (!need(2)) return std::nullopt;
            p_ += 2;
            return (uint64_t(p_[-2]) << 8) | p_[-1];
        case 0x70: {
            if (!need(4)) return std::nullopt;
            uint64_t v = be32(p_);
            p_ += 4;
            return v;
        }
        case 0x80: {
            if (!need(8)) return std::nullopt;
            uint64_t v = be64(p_);
            p_ += 8;
            return v;
        }
        default:
            --p_;
            fail("expected an unsigned integer");
            return std::nullopt;
    }
}

static void read_properties(Reader& r, size_t section_end, MessageLayout& out) {
    size_t list_end = 0;
    auto count = r.enter_list(list_end);
    if (!count || list_end > section_end) return;
    // Fields: message-id, user-id, to, subject, reply-to, ...
    for (uint32_t i = 0; i < *count && i < 5 && r.offset() < list_end; ++i) {
        if (i == 1) {
            bool null = false;
            auto v = r.read_bytes_like(&null);
            if (!v) return;
            out.user_id = *v;
            out.has_user_id = !null;
        } else if (i == 2 || i == 3 || i == 4) {
            auto v = r.read_bytes_like();
            if (!v) return;  // not string-like: the message has no usable address here
            if (i == 2) out.to = *v;
            if (i == 3) out.subject = *v;
            if (i == 4) out.reply_to = *v;
        } else if (!r.skip_value()) {
            return;
        }
    }
}

std::string scan_message(std::string_view bytes, MessageLayout& out) {
    out = MessageLayout{};
    Reader r(bytes);
    uint64_t last = 0;
    bool in_body = false;
    while (!r.at_end()) {
        size_t start = r.offset();
        auto code = r.read_descriptor();
        if (!code) return r.error().empty() ? "invalid message section" : r.error();
        if (*code < 0x70 || *code > 0x78) return "unknown message section descriptor";
        // Sections come in order; body sections (0x75-0x77) may repeat.
        bool body = *code >= 0x75 && *code <= 0x77;
        if (*code < last || (*code == last && !body)) return "message sections out of order";
        if (in_body && !body && *code != 0x78) return "message section after the body";
        size_t value_start = r.offset();
        if (!r.skip_value()) return r.error();
        size_t end = r.offset();
        Span span{start, end - start};
        switch (*code) {
            case 0x70:
                out.header = span;
                break;
            case 0x71:
                out.delivery_annotations = span;
                break;
            case 0x72:
                out.message_annotations = span;
                break;
            case 0x73: {
                out.properties = span;
                Reader pr(bytes.substr(0, end));
                pr.set_offset(value_start);
                read_properties(pr, end, out);
                break;
            }
            case 0x74:
                out.application_properties = span;
                break;
            case 0x78:
                out.footer = span;
                break;
            default:
                if (!out.body.present())
                    out.body = span;
                else
                    out.body.size = end - out.body.offset;
                in_body = true;
                break;
        }
        last = *code;
    }
    return {};
}

}  // namespace trestle::amqp

namespace trestle::amqp {

std::optional<int64_t> Value::as_integer() const {
    switch (type) {
        case Type::ubyte:
        case Type::ushort:
        case Type::uint:
        case Type::ulong:
            return static_cast<int64_t>(u);
        case Type::byte:
        case Type::short_:
        case Type::int_:
        case Type::long_:
            return i;
        default:
            return std::nullopt;
    }
}

std::string Value::to_text() const {
    switch (type) {
        case Type::null:
            return "";
        case Type::boolean:
            return b ? "true" : "false";
        case Type::ubyte:
        case Type::ushort:
        case Type::uint:
        case Type::ulong:
            return std::to_string(u);
        case Type::byte:
        case Type::short_:
        case Type::int_:
        case Type::long_:
        case Type::timestamp:
            return std::to_string(i);
        case Type::float_:
        case Type::double_: {
            char buf[32];
            snprintf(buf, sizeof buf, "%.17g", d);
            return buf;
        }
        case Type::uuid: {
            static const char* hexd = "0123456789abcdef";
            std::string s;
            for (size_t k = 0; k < bytes.size(); ++k) {
                if (k == 4 || k == 6 || k == 8 || k == 10) s += '-';
                s += hexd[(uint8_t(bytes[k]) >> 4) & 15];
                s += hexd[uint8_t(bytes[k]) & 15];
            }
            return s;
        }
        default:
            return bytes;
    }
}

const Value* Value::get(std::string_view key) const {
    for (const auto& [k, v] : entries)
        if (k.is_textual() && k.bytes == key) return &v;
    return nullptr;
}

namespace {
uint64_t be_n(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v = (v << 8) | p[k];
    return v;
}
}  // namespace

bool read_value(Reader& r, Value& out, int depth) {
    if (depth > 32) return false;
    out = Value{};
    size_t start = r.offset();
    auto code = r.peek_code();
    if (!code) return false;
    // skip_value validates the whole value's extent first; decoding below may then read any
    // byte inside it without further bounds checks on fixed-width kinds.
    Reader probe = r;
    if (!probe.skip_value()) return false;
    size_t end = probe.offset();
    const auto* base = reinterpret_cast<const uint8_t*>(r.raw_begin()) + start;
    uint8_t c = base[0];
    size_t len = end - start;
    auto fixed = [&](int n) -> const uint8_t* { return len >= size_t(1 + n) ? base + 1 : nullptr; };
    switch (c) {
        case 0x40:
            out.type = Value::Type::null;
            break;
        case 0x41:
            out.type = Value::Type::boolean;
            out.b = true;
            break;
        case 0x42:
            out.type = Value::Type::boolean;
            out.b = false;
            break;
        case 0x56:
            out.type = Value::Type::boolean;
            out.b = base[1] != 0;
            break;
        case 0x50:
            out.type = Value::Type::ubyte;
            out.u = base[1];
            break;
        case 0x60:
            out.type = Value::Type::ushort;
            out.u = be_n(fixed(2), 2);
            break;
        case 0x70:
            out.type = Value::Type::uint;
            out.u = be_n(fixed(4), 4);
            break;
        case 0x52:
            out.type = Value::Type::uint;
            out.u = base[1];
            break;
        case 0x43:
            out.type = Value::Type::uint;
            out.u = 0;
            break;
        case 0x80:
            out.type = Value::Type::ulong;
            out.u = be_n(fixed(8), 8);
            break;
        case 0x53:
            out.type = Value::Type::ulong;
            out.u = base[1];
            break;
        case 0x44:
            out.type = Value::Type::ulong;
            out.u = 0;
            break;
        case 0x51:
            out.type = Value::Type::byte;
            out.i = int8_t(base[1]);
            break;
        case 0x61:
            out.type = Value::Type::short_;
            out.i = int16_t(be_n(fixed(2), 2));
            break;
        case 0x71:
            out.type = Value::Type::int_;
            out.i = int32_t(be_n(fixed(4), 4));
            break;
        case 0x54:
            out.type = Value::Type::int_;
            out.i = int8_t(base[1]);
            break;
        case 0x81:
            out.type = Value::Type::long_;
            out.i = int64_t(be_n(fixed(8), 8));
            break;
        case 0x55:
            out.type = Value::Type::long_;
            out.i = int8_t(base[1]);
            break;
        case 0x72: {
            out.type = Value::Type::float_;
            uint32_t bits = uint32_t(be_n(fixed(4), 4));
            float f;
            std::memcpy(&f, &bits, 4);
            out.d = f;
            break;
        }
        case 0x82: {
            out.type = Value::Type::double_;
            uint64_t bits = be_n(fixed(8), 8);
            std::memcpy(&out.d, &bits, 8);
            break;
        }
        case 0x83:
            out.type = Value::Type::timestamp;
            out.i = int64_t(be_n(fixed(8), 8));
            break;
        case 0x98:
            out.type = Value::Type::uuid;
            out.bytes.assign(reinterpret_cast<const char*>(base + 1), 16);
            break;
        case 0xa0:
        case 0xa1:
        case 0xa3:
        case 0xb0:
        case 0xb1:
        case 0xb3: {
            auto v = r.read_bytes_like();
            if (!v) return false;
            out.type = (c == 0xa0 || c == 0xb0)   ? Value::Type::binary
                       : (c == 0xa1 || c == 0xb1) ? Value::Type::string
                                                  : Value::Type::symbol;
            out.bytes.assign(*v);
            return true;
        }
        case 0x45:
            out.type = Value::Type::list;
            break;
        case 0xc0:
        case 0xd0: {
            size_t list_end;
            auto n = r.enter_list(list_end);
            if (!n) return false;
            out.type = Value::Type::list;
            for (uint32_t k = 0; k < *n; ++k) {
                Value item;
                if (r.offset() >= list_end || !read_value(r, item, depth + 1)) return false;
                out.items.push_back(std::move(item));
            }
            if (r.offset() != list_end) return false;
            return true;
        }
        case 0xc1:
        case 0xd1: {
            // Same layout as a list: size, count, then count values (keys and values).
            bool small = c == 0xc1;
            size_t hdr = small ? 2 : 8;
            if (len < 1 + hdr) return false;
            uint32_t count = small ? base[2] : uint32_t(be_n(base + 5, 4));
            if (count % 2) return false;
            r.set_offset(start + 1 + hdr);
            out.type = Value::Type::map;
            for (uint32_t k = 0; k < count / 2; ++k) {
                Value key, val;
                if (r.offset() >= end || !read_value(r, key, depth + 1) ||
                    !read_value(r, val, depth + 1))
                    return false;
                out.entries.push_back(Value::Entry{std::move(key), std::move(val)});
            }
            if (r.offset() != end) return false;
            return true;
        }
        case 0x00: {
            r.set_offset(start + 1);
            Value descriptor, value;
            if (!read_value(r, descriptor, depth + 1) || !read_value(r, value, depth + 1))
                return false;
            out.type = Value::Type::described;
            out.items.push_back(std::move(descriptor));
            out.items.push_back(std::move(value));
            return true;
        }
        default:
            // Arrays, decimals, char: kept as their raw encoding.
            out.type = c == 0xe0 || c == 0xf0 ? Value::Type::array : Value::Type::other;
            out.bytes.assign(reinterpret_cast<const char*>(base), len);
            break;
    }
    r.set_offset(end);
    return true;
}

}  // namespace trestle::amqp
