// A small, bounds-checked reader of the AMQP 1.0 type system, enough to find a message's
// sections and read its properties without decoding the body. Never trusts its input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trestle::amqp {

// Section descriptors of an AMQP message (AMQP 1.0 part 3.2).
enum class Section : uint8_t {
    header = 0x70,
    delivery_annotations = 0x71,
    message_annotations = 0x72,
    properties = 0x73,
    application_properties = 0x74,
    data = 0x75,
    amqp_sequence = 0x76,
    amqp_value = 0x77,
    footer = 0x78,
};

struct Span {
    size_t offset = 0;
    size_t size = 0;  // 0 = absent
    bool present() const { return size != 0; }
};

// Where each section of an encoded message lies. Body = the first body section through the
// last one before the footer.
struct MessageLayout {
    Span header, delivery_annotations, message_annotations, properties, application_properties,
        body, footer;
    std::string_view to;        // properties.to when it is a string or symbol
    std::string_view reply_to;  // properties.reply-to
    std::string_view subject;
};

// Scans an encoded message. Returns an error description, or empty on success.
std::string scan_message(std::string_view bytes, MessageLayout& out);

// Low-level reader, exposed for tests and other decoders.
class Reader {
public:
    explicit Reader(std::string_view b)
        : p_(reinterpret_cast<const uint8_t*>(b.data())), end_(p_ + b.size()), begin_(p_) {}

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    bool at_end() const { return p_ >= end_; }
    size_t offset() const { return static_cast<size_t>(p_ - begin_); }

    // Reads a format code (following a 0x00 descriptor prefix if `allow_described`).
    std::optional<uint8_t> peek_code() const {
        if (p_ >= end_) return std::nullopt;
        return *p_;
    }
    // Skips one complete value (described or not).
    bool skip_value(int depth = 0);
    // Reads a section descriptor "0x00 <ulong|symbol>" and returns its numeric code.
    std::optional<uint64_t> read_descriptor();
    // Enters a list: returns the element count and leaves the reader at the first element.
    // `end` receives the offset just past the list.
    std::optional<uint32_t> enter_list(size_t& end);
    // Reads a string, symbol or binary (or null -> empty, *is_null = true).
    std::optional<std::string_view> read_bytes_like(bool* is_null = nullptr);
    std::optional<uint64_t> read_unsigned();
    void set_offset(size_t off) { p_ = begin_ + off; }

private:
    bool need(size_t n);
    bool fail(std::string msg) {
        if (error_.empty()) error_ = std::move(msg);
        return false;
    }
    const uint8_t* p_;
    const uint8_t* end_;
    const uint8_t* begin_;
    std::string error_;
};

}  // namespace trestle::amqp
