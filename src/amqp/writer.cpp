// AMQP 1.0 encoding: the Writer (codec.hpp) for the values and sections Trestle produces.
#include <cstring>

#include "amqp/codec.hpp"

namespace trestle::amqp {

void Writer::be(uint64_t v, int bytes) {
    for (int k = bytes - 1; k >= 0; --k) out_ += static_cast<char>((v >> (8 * k)) & 0xff);
}
void Writer::ubyte(uint8_t v) {
    out_ += '\x50';
    out_ += static_cast<char>(v);
}
void Writer::uint(uint32_t v) {
    if (v == 0) {
        out_ += '\x43';
    } else if (v < 256) {
        out_ += '\x52';
        out_ += static_cast<char>(v);
    } else {
        out_ += '\x70';
        be(v, 4);
    }
}
void Writer::ulong(uint64_t v) {
    if (v == 0) {
        out_ += '\x44';
    } else if (v < 256) {
        out_ += '\x53';
        out_ += static_cast<char>(v);
    } else {
        out_ += '\x80';
        be(v, 8);
    }
}
void Writer::int32(int32_t v) {
    if (v >= -128 && v <= 127) {
        out_ += '\x54';
        out_ += static_cast<char>(static_cast<int8_t>(v));
    } else {
        out_ += '\x71';
        be(static_cast<uint32_t>(v), 4);
    }
}
void Writer::int64(int64_t v) {
    if (v >= -128 && v <= 127) {
        out_ += '\x55';
        out_ += static_cast<char>(static_cast<int8_t>(v));
    } else {
        out_ += '\x81';
        be(static_cast<uint64_t>(v), 8);
    }
}
void Writer::timestamp(int64_t ms) {
    out_ += '\x83';
    be(static_cast<uint64_t>(ms), 8);
}
namespace {
void variable(std::string& o, char small, char big, std::string_view s) {
    if (s.size() < 256) {
        o += small;
        o += static_cast<char>(s.size());
    } else {
        o += big;
        uint32_t n = static_cast<uint32_t>(s.size());
        for (int k = 3; k >= 0; --k) o += static_cast<char>((n >> (8 * k)) & 0xff);
    }
    o.append(s);
}
}  // namespace
void Writer::string(std::string_view s) {
    variable(out_, '\xa1', '\xb1', s);
}
void Writer::symbol(std::string_view s) {
    variable(out_, '\xa3', '\xb3', s);
}
void Writer::binary(std::string_view s) {
    variable(out_, '\xa0', '\xb0', s);
}
void Writer::string_array(const std::vector<std::string>& items) {
    uint32_t size = 4 + 1;  // count, element constructor
    for (const auto& s : items) size += 4 + static_cast<uint32_t>(s.size());
    out_ += '\xf0';
    be(size, 4);
    be(items.size(), 4);
    out_ += '\xb1';
    for (const auto& s : items) {
        be(s.size(), 4);
        out_ += s;
    }
}

size_t Writer::begin_list() {
    size_t m = out_.size();
    out_.append("\xd0\0\0\0\0\0\0\0\0", 9);  // list32; patched (or shrunk) in end_list
    return m;
}
void Writer::end_list(size_t m, uint32_t count) {
    size_t body = out_.size() - (m + 9);
    if (count == 0) {
        out_.resize(m);
        out_ += '\x45';
        return;
    }
    if (body + 1 < 256 && count < 256) {
        // Shrink to list8: code, size (count byte + body), count.
        std::string b = out_.substr(m + 9);
        out_.resize(m);
        out_ += '\xc0';
        out_ += static_cast<char>(body + 1);
        out_ += static_cast<char>(count);
        out_ += b;
        return;
    }
    uint32_t size = static_cast<uint32_t>(body + 4);
    for (int k = 0; k < 4; ++k) out_[m + 1 + k] = static_cast<char>((size >> (8 * (3 - k))) & 0xff);
    for (int k = 0; k < 4; ++k)
        out_[m + 5 + k] = static_cast<char>((count >> (8 * (3 - k))) & 0xff);
}
size_t Writer::begin_map() {
    size_t m = out_.size();
    out_.append("\xd1\0\0\0\0\0\0\0\0", 9);
    return m;
}
void Writer::end_map(size_t m, uint32_t count) {
    size_t body = out_.size() - (m + 9);
    if (body + 1 < 256 && count < 256) {
        std::string b = out_.substr(m + 9);
        out_.resize(m);
        out_ += '\xc1';
        out_ += static_cast<char>(body + 1);
        out_ += static_cast<char>(count);
        out_ += b;
        return;
    }
    uint32_t size = static_cast<uint32_t>(body + 4);
    for (int k = 0; k < 4; ++k) out_[m + 1 + k] = static_cast<char>((size >> (8 * (3 - k))) & 0xff);
    for (int k = 0; k < 4; ++k)
        out_[m + 5 + k] = static_cast<char>((count >> (8 * (3 - k))) & 0xff);
}
void Writer::descriptor(uint8_t code) {
    out_ += '\x00';
    out_ += '\x53';
    out_ += static_cast<char>(code);
}

void Writer::response_properties(std::string_view to, std::string_view correlation_id) {
    descriptor(static_cast<uint8_t>(Section::properties));
    // message-id, user-id, to, subject, reply-to, correlation-id
    size_t p = begin_list();
    null();
    null();
    string(to);
    uint32_t n = 3;
    if (!correlation_id.empty()) {
        null();
        null();
        out_ += correlation_id;
        n = 6;
    }
    end_list(p, n);
}

void Writer::value(const Value& v) {
    switch (v.type) {
        case Value::Type::null:
            null();
            break;
        case Value::Type::boolean:
            boolean(v.b);
            break;
        case Value::Type::ubyte:
            ubyte(static_cast<uint8_t>(v.u));
            break;
        case Value::Type::ushort:
            out_ += '\x60';
            be(v.u, 2);
            break;
        case Value::Type::uint:
            uint(static_cast<uint32_t>(v.u));
            break;
        case Value::Type::ulong:
            ulong(v.u);
            break;
        case Value::Type::byte:
            out_ += '\x51';
            out_ += static_cast<char>(static_cast<int8_t>(v.i));
            break;
        case Value::Type::short_:
            out_ += '\x61';
            be(static_cast<uint16_t>(v.i), 2);
            break;
        case Value::Type::int_:
            int32(static_cast<int32_t>(v.i));
            break;
        case Value::Type::long_:
            int64(v.i);
            break;
        case Value::Type::float_: {
            float f = static_cast<float>(v.d);
            uint32_t bits;
            std::memcpy(&bits, &f, 4);
            out_ += '\x72';
            be(bits, 4);
            break;
        }
        case Value::Type::double_: {
            uint64_t bits;
            std::memcpy(&bits, &v.d, 8);
            out_ += '\x82';
            be(bits, 8);
            break;
        }
        case Value::Type::timestamp:
            timestamp(v.i);
            break;
        case Value::Type::uuid:
            out_ += '\x98';
            out_ += v.bytes;
            break;
        case Value::Type::binary:
            binary(v.bytes);
            break;
        case Value::Type::string:
            string(v.bytes);
            break;
        case Value::Type::symbol:
            symbol(v.bytes);
            break;
        case Value::Type::list: {
            size_t m = begin_list();
            for (const auto& it : v.items) value(it);
            end_list(m, static_cast<uint32_t>(v.items.size()));
            break;
        }
        case Value::Type::map: {
            size_t m = begin_map();
            for (const auto& [k, val] : v.entries) {
                value(k);
                value(val);
            }
            end_map(m, static_cast<uint32_t>(v.entries.size() * 2));
            break;
        }
        case Value::Type::described:
            out_ += '\x00';
            if (v.items.size() == 2) {
                value(v.items[0]);
                value(v.items[1]);
            }
            break;
        case Value::Type::array:
        case Value::Type::other:
            out_ += v.bytes;
            break;
    }
}

}  // namespace trestle::amqp
