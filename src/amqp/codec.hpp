// A small, bounds-checked reader of the AMQP 1.0 type system, enough to find a message's
// sections and read its properties without decoding the body. Never trusts its input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

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
    std::string_view user_id;  // properties.user-id (binary)
    bool has_user_id = false;
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
    const char* raw_begin() const { return reinterpret_cast<const char*>(begin_); }

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

// A decoded AMQP value, for the few places that need one (cross-protocol mapping, management).
struct Value {
    enum class Type : uint8_t {
        null,
        boolean,
        ubyte,
        ushort,
        uint,
        ulong,
        byte,
        short_,
        int_,
        long_,
        float_,
        double_,
        timestamp,
        uuid,
        binary,
        string,
        symbol,
        list,
        map,
        array,
        described,
        other
    };
    Type type = Type::null;
    bool b = false;
    uint64_t u = 0;  // unsigned kinds, timestamp (as int64 bits)
    int64_t i = 0;   // signed kinds
    double d = 0;
    std::string bytes;         // binary, string, symbol, uuid (16 bytes), other (raw encoding)
    std::vector<Value> items;  // list, array, described (descriptor, value)
    struct Entry;
    std::vector<Entry> entries;  // map

    static Value str(std::string s);
    static Value sym(std::string s);
    static Value bin(std::string s);
    static Value boolean(bool x);
    static Value int32(int32_t x);
    static Value uint32(uint32_t x);
    static Value ulong(uint64_t x);
    static Value timestamp(int64_t ms);

    bool is_textual() const { return type == Type::string || type == Type::symbol; }
    // Integer value of any integer kind (and ubyte/ushort...), if it is one.
    std::optional<int64_t> as_integer() const;
    // A human/MQTT-friendly text form: strings as is, numbers in decimal, booleans true/false,
    // binary as raw bytes, uuid in 8-4-4-4-12 form.
    std::string to_text() const;
    // Map lookup by string/symbol key.
    const Value* get(std::string_view key) const;
};

// (A struct, not std::pair: pair's traits need Value complete, which it is not inside Value.)
struct Value::Entry {
    Value key;
    Value value;
};

inline Value Value::str(std::string s) {
    Value v;
    v.type = Type::string;
    v.bytes = std::move(s);
    return v;
}
inline Value Value::sym(std::string s) {
    Value v;
    v.type = Type::symbol;
    v.bytes = std::move(s);
    return v;
}
inline Value Value::bin(std::string s) {
    Value v;
    v.type = Type::binary;
    v.bytes = std::move(s);
    return v;
}
inline Value Value::boolean(bool x) {
    Value v;
    v.type = Type::boolean;
    v.b = x;
    return v;
}
inline Value Value::int32(int32_t x) {
    Value v;
    v.type = Type::int_;
    v.i = x;
    return v;
}
inline Value Value::uint32(uint32_t x) {
    Value v;
    v.type = Type::uint;
    v.u = x;
    return v;
}
inline Value Value::ulong(uint64_t x) {
    Value v;
    v.type = Type::ulong;
    v.u = x;
    return v;
}
inline Value Value::timestamp(int64_t ms) {
    Value v;
    v.type = Type::timestamp;
    v.i = ms;
    return v;
}

// Decodes one value (bounded depth). Returns false on malformed input.
bool read_value(Reader& r, Value& out, int depth = 0);

// Encodes values and message sections (canonical, compact forms).
class Writer {
  public:
    std::string& out() { return out_; }
    void null() { out_ += '\x40'; }
    void boolean(bool v) { out_ += v ? '\x41' : '\x42'; }
    void ubyte(uint8_t v);
    void uint(uint32_t v);
    void ulong(uint64_t v);
    void int32(int32_t v);
    void int64(int64_t v);
    void timestamp(int64_t ms);
    void string(std::string_view s);
    void symbol(std::string_view s);
    void binary(std::string_view s);
    void string_array(const std::vector<std::string>& items);  // array32 of str32
    void value(const Value& v);
    // Compound values: begin returns a marker; end patches sizes and counts.
    size_t begin_list();
    void end_list(size_t marker, uint32_t count);
    size_t begin_map();
    void end_map(size_t marker, uint32_t count_of_keys_and_values);
    // "0x00 0x53 <code>": a section (or any described value with a small ulong descriptor).
    void descriptor(uint8_t code);
    // The properties section of a request's response: `to` (the request's reply-to) and, if
    // not empty, a correlation-id given as its encoding (type and all, as the request had it).
    void response_properties(std::string_view to, std::string_view correlation_id);

  private:
    void be(uint64_t v, int bytes);
    std::string out_;
};

}  // namespace trestle::amqp
