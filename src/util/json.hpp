// A small JSON value, a strict parser that remembers the line of every value (config errors
// name it), and a writer. Bounded nesting; never throws on bad input, returns an error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace trestle::json {

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // keeps the file's order

struct Value {
    std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> v;
    int line = 0;  // 1-based line where the value starts (0 = not from a parse)

    Value() : v(nullptr) {}
    Value(std::nullptr_t) : v(nullptr) {}
    Value(bool b) : v(b) {}
    Value(int i) : v(int64_t(i)) {}
    Value(int64_t i) : v(i) {}
    Value(uint64_t i) : v(int64_t(i)) {}
    Value(double d) : v(d) {}
    Value(const char* s) : v(std::string(s)) {}
    Value(std::string s) : v(std::move(s)) {}
    Value(std::string_view s) : v(std::string(s)) {}
    Value(Array a) : v(std::move(a)) {}
    Value(Object o) : v(std::move(o)) {}

    bool is_null() const { return std::holds_alternative<std::nullptr_t>(v); }
    bool is_bool() const { return std::holds_alternative<bool>(v); }
    bool is_int() const { return std::holds_alternative<int64_t>(v); }
    bool is_double() const { return std::holds_alternative<double>(v); }
    bool is_string() const { return std::holds_alternative<std::string>(v); }
    bool is_array() const { return std::holds_alternative<Array>(v); }
    bool is_object() const { return std::holds_alternative<Object>(v); }

    bool as_bool() const { return std::get<bool>(v); }
    int64_t as_int() const { return std::get<int64_t>(v); }
    double as_double() const { return std::get<double>(v); }
    const std::string& as_string() const { return std::get<std::string>(v); }
    const Array& as_array() const { return std::get<Array>(v); }
    const Object& as_object() const { return std::get<Object>(v); }
    Array& as_array() { return std::get<Array>(v); }
    Object& as_object() { return std::get<Object>(v); }

    // Object member lookup (first match), or nullptr.
    const Value* find(std::string_view key) const;
};

struct ParseError {
    std::string message;
    int line = 0;
};

// Parses one JSON document. On failure returns false and fills `err`.
bool parse(std::string_view text, Value& out, ParseError& err);

// Serialises; indent < 0 = compact.
std::string dump(const Value& v, int indent = -1);

// Quotes a string as a JSON string literal.
std::string quote(std::string_view s);

}  // namespace trestle::json
