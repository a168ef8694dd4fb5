// Reading and writing MQTT's wire types (integers, variable byte integers, length-prefixed
// strings), shared by the packet codec and the property codec. Included by src/mqtt only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"

namespace trestle::mqtt::wire {

// A bounds-checked reader: the first failure sticks, with the reason code to answer with.
class In {
  public:
    explicit In(std::string_view b) : p_(b.data()), end_(b.data() + b.size()) {}
    size_t left() const { return static_cast<size_t>(end_ - p_); }
    bool ok() const { return ok_; }
    const char* pos() const { return p_; }

    bool fail(uint8_t reason, const char* msg) {
        if (ok_) {
            ok_ = false;
            err_reason = reason;
            err = msg;
        }
        return false;
    }
    bool u8(uint8_t& v) {
        if (left() < 1) return fail(reason::malformed_packet, "packet too short");
        v = static_cast<uint8_t>(*p_++);
        return true;
    }
    bool u16(uint16_t& v) {
        if (left() < 2) return fail(reason::malformed_packet, "packet too short");
        v = static_cast<uint16_t>((uint8_t(p_[0]) << 8) | uint8_t(p_[1]));
        p_ += 2;
        return true;
    }
    bool u32(uint32_t& v) {
        if (left() < 4) return fail(reason::malformed_packet, "packet too short");
        v = (uint32_t(uint8_t(p_[0])) << 24) | (uint32_t(uint8_t(p_[1])) << 16) |
            (uint32_t(uint8_t(p_[2])) << 8) | uint8_t(p_[3]);
        p_ += 4;
        return true;
    }
    bool varint(uint32_t& v) {
        v = 0;
        for (int i = 0; i < 4; ++i) {
            uint8_t b;
            if (!u8(b)) return false;
            v |= uint32_t(b & 0x7f) << (7 * i);
            if (!(b & 0x80)) {
                // The minimal encoding is required only for the remaining length; accept here.
                return true;
            }
        }
        return fail(reason::malformed_packet, "variable byte integer longer than 4 bytes");
    }
    bool binary(std::string_view& v) {
        uint16_t n;
        if (!u16(n)) return false;
        if (left() < n) return fail(reason::malformed_packet, "length beyond the packet");
        v = std::string_view(p_, n);
        p_ += n;
        return true;
    }
    bool utf8(std::string_view& v) {
        if (!binary(v)) return false;
        if (!valid_utf8(v)) return fail(reason::malformed_packet, "invalid UTF-8 string");
        return true;
    }
    bool utf8(std::string& v) {
        std::string_view s;
        if (!utf8(s)) return false;
        v.assign(s);
        return true;
    }
    std::string_view rest() {
        std::string_view r(p_, left());
        p_ = end_;
        return r;
    }
    void skip(size_t n) { p_ += n < left() ? n : left(); }

    uint8_t err_reason = reason::malformed_packet;
    std::string err;

  private:
    const char* p_;
    const char* end_;
    bool ok_ = true;
};

// --- writers ------------------------------------------------------------------------------

inline void put_u16(uint16_t v, std::string& o) {
    o += static_cast<char>(v >> 8);
    o += static_cast<char>(v & 0xff);
}
inline void put_u32(uint32_t v, std::string& o) {
    o += static_cast<char>(v >> 24);
    o += static_cast<char>((v >> 16) & 0xff);
    o += static_cast<char>((v >> 8) & 0xff);
    o += static_cast<char>(v & 0xff);
}
inline void put_str(std::string_view s, std::string& o) {
    put_u16(static_cast<uint16_t>(s.size()), o);
    o.append(s);
}

inline void put_fixed_header(uint8_t first, size_t remaining, std::string& o) {
    o += static_cast<char>(first);
    put_varint(static_cast<uint32_t>(remaining), o);
}

}  // namespace trestle::mqtt::wire
