#include "util/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace trestle::json {

const Value* Value::find(std::string_view key) const {
    if (!is_object()) return nullptr;
    for (const auto& [k, val] : as_object())
        if (k == key) return &val;
    return nullptr;
}

namespace {

constexpr int max_depth = 128;

class Parser {
  public:
    explicit Parser(std::string_view t) : s_(t) {}

    bool document(Value& out, ParseError& err) {
        skip_ws();
        if (!value(out, 0)) {
            err = err_;
            return false;
        }
        skip_ws();
        if (i_ != s_.size()) {
            fail("unexpected text after the JSON value");
            err = err_;
            return false;
        }
        return true;
    }

  private:
    bool fail(std::string msg) {
        if (err_.message.empty()) err_ = {std::move(msg), line_};
        return false;
    }
    void skip_ws() {
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (c == '\n') {
                ++line_;
                ++i_;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                ++i_;
            } else {
                break;
            }
        }
    }
    bool value(Value& out, int depth) {
        if (depth > max_depth) return fail("JSON nested too deeply");
        skip_ws();
        if (i_ >= s_.size()) return fail("unexpected end of JSON");
        out.line = line_;
        char c = s_[i_];
        switch (c) {
            case '{':
                return object(out, depth);
            case '[':
                return array(out, depth);
            case '"': {
                std::string str;
                if (!string(str)) return false;
                out.v = std::move(str);
                return true;
            }
            case 't':
                return literal("true", Value(true), out);
            case 'f':
                return literal("false", Value(false), out);
            case 'n':
                return literal("null", Value(nullptr), out);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return number(out);
                return fail(std::string("unexpected character '") + c + "' in JSON");
        }
    }
    bool literal(std::string_view word, Value v, Value& out) {
        if (s_.substr(i_, word.size()) != word) return fail("invalid JSON literal");
        i_ += word.size();
        int line = out.line;
        out = std::move(v);
        out.line = line;
        return true;
    }
    bool number(Value& out) {
        size_t start = i_;
        if (s_[i_] == '-') ++i_;
        bool is_float = false;
        auto digits = [&] {
            size_t b = i_;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
            return i_ > b;
        };
        if (!digits()) return fail("invalid JSON number");
        if (i_ < s_.size() && s_[i_] == '.') {
            ++i_;
            is_float = true;
            if (!digits()) return fail("invalid JSON number");
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            is_float = true;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return fail("invalid JSON number");
        }
        std::string text(s_.substr(start, i_ - start));
        if (!is_float) {
            errno = 0;
            char* end = nullptr;
            long long v = std::strtoll(text.c_str(), &end, 10);
            if (errno == 0) {
                out.v = int64_t(v);
                return true;
            }
        }
        double d = std::strtod(text.c_str(), nullptr);
        if (!std::isfinite(d)) return fail("JSON number out of range");
        out.v = d;
        return true;
    }
    static void put_utf8(std::string& o, uint32_t cp) {
        if (cp < 0x80) {
            o += char(cp);
        } else if (cp < 0x800) {
            o += char(0xc0 | (cp >> 6));
            o += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            o += char(0xe0 | (cp >> 12));
            o += char(0x80 | ((cp >> 6) & 0x3f));
            o += char(0x80 | (cp & 0x3f));
        } else {
            o += char(0xf0 | (cp >> 18));
            o += char(0x80 | ((cp >> 12) & 0x3f));
            o += char(0x80 | ((cp >> 6) & 0x3f));
            o += char(0x80 | (cp & 0x3f));
        }
    }
    bool hex4(uint32_t& cp) {
        if (i_ + 4 > s_.size()) return fail("truncated \\u escape");
        cp = 0;
        for (int k = 0; k < 4; ++k) {
            char h = s_[i_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
                cp |= uint32_t(h - '0');
            else if (h >= 'a' && h <= 'f')
                cp |= uint32_t(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                cp |= uint32_t(h - 'A' + 10);
            else
                return fail("invalid \\u escape");
        }
        return true;
    }
    bool string(std::string& out) {
        ++i_;  // opening quote
        while (true) {
            if (i_ >= s_.size()) return fail("unterminated JSON string");
            char c = s_[i_++];
            if (c == '"') return true;
            if (c == '\n') return fail("newline inside a JSON string");
            if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) return fail("unterminated JSON string");
            char e = s_[i_++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    uint32_t cp;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xd800 && cp < 0xdc00) {  // surrogate pair
                        if (s_.substr(i_, 2) != "\\u") return fail("unpaired surrogate");
                        i_ += 2;
                        uint32_t lo;
                        if (!hex4(lo)) return false;
                        if (lo < 0xdc00 || lo > 0xdfff) return fail("unpaired surrogate");
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                        return fail("unpaired surrogate");
                    }
                    put_utf8(out, cp);
                    break;
                }
                default:
                    return fail("invalid escape in JSON string");
            }
        }
    }
    bool array(Value& out, int depth) {
        ++i_;
        Array a;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ']') {
            ++i_;
            out.v = std::move(a);
            return true;
        }
        while (true) {
            Value v;
            if (!value(v, depth + 1)) return false;
            a.push_back(std::move(v));
            skip_ws();
            if (i_ >= s_.size()) return fail("unterminated JSON array");
            char c = s_[i_++];
            if (c == ']') break;
            if (c != ',') return fail("expected ',' or ']' in JSON array");
        }
        out.v = std::move(a);
        return true;
    }
    bool object(Value& out, int depth) {
        ++i_;
        Object o;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == '}') {
            ++i_;
            out.v = std::move(o);
            return true;
        }
        while (true) {
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != '"')
                return fail("expected a string key in JSON object");
            std::string key;
            if (!string(key)) return false;
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':' in JSON object");
            ++i_;
            Value v;
            if (!value(v, depth + 1)) return false;
            o.emplace_back(std::move(key), std::move(v));
            skip_ws();
            if (i_ >= s_.size()) return fail("unterminated JSON object");
            char c = s_[i_++];
            if (c == '}') break;
            if (c != ',') return fail("expected ',' or '}' in JSON object");
        }
        out.v = std::move(o);
        return true;
    }

    std::string_view s_;
    size_t i_ = 0;
    int line_ = 1;
    ParseError err_;
};

void dump_to(const Value& v, std::string& o, int indent, int level) {
    auto nl = [&](int lvl) {
        if (indent < 0) return;
        o += '\n';
        o.append(size_t(indent * lvl), ' ');
    };
    if (v.is_null()) {
        o += "null";
    } else if (v.is_bool()) {
        o += v.as_bool() ? "true" : "false";
    } else if (v.is_int()) {
        o += std::to_string(v.as_int());
    } else if (v.is_double()) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.17g", v.as_double());
        o += buf;
        // Keep it a double when read back ("-0" or "3" would come back as integers).
        if (!std::strpbrk(buf, ".eEn")) o += ".0";
    } else if (v.is_string()) {
        o += quote(v.as_string());
    } else if (v.is_array()) {
        const auto& a = v.as_array();
        o += '[';
        for (size_t i = 0; i < a.size(); ++i) {
            if (i) o += indent < 0 ? "," : ",";
            nl(level + 1);
            dump_to(a[i], o, indent, level + 1);
        }
        if (!a.empty()) nl(level);
        o += ']';
    } else {
        const auto& obj = v.as_object();
        o += '{';
        for (size_t i = 0; i < obj.size(); ++i) {
            if (i) o += ",";
            nl(level + 1);
            o += quote(obj[i].first);
            o += indent < 0 ? ":" : ": ";
            dump_to(obj[i].second, o, indent, level + 1);
        }
        if (!obj.empty()) nl(level);
        o += '}';
    }
}

}  // namespace

bool parse(std::string_view text, Value& out, ParseError& err) {
    Parser p(text);
    return p.document(out, err);
}

std::string dump(const Value& v, int indent) {
    std::string o;
    dump_to(v, o, indent, 0);
    return o;
}

std::string quote(std::string_view s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                o += "\\\"";
                break;
            case '\\':
                o += "\\\\";
                break;
            case '\n':
                o += "\\n";
                break;
            case '\r':
                o += "\\r";
                break;
            case '\t':
                o += "\\t";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    snprintf(buf, sizeof buf, "\\u%04x", c);
                    o += buf;
                } else {
                    o += char(c);
                }
        }
    }
    return o + "\"";
}

}  // namespace trestle::json
