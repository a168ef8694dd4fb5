#include "management/config.hpp"

#include <fstream>
#include <set>
#include <sstream>

namespace trestle::management {

std::string Entity::str(const std::string& name, const std::string& fallback) const {
    auto it = attributes.find(name);
    if (it == attributes.end() || !it->second.is_string()) return fallback;
    return it->second.as_string();
}

int64_t Entity::integer(const std::string& name, int64_t fallback) const {
    auto it = attributes.find(name);
    if (it == attributes.end() || !it->second.is_int()) return fallback;
    return it->second.as_int();
}

bool Entity::boolean(const std::string& name, bool fallback) const {
    auto it = attributes.find(name);
    if (it == attributes.end() || !it->second.is_bool()) return fallback;
    return it->second.as_bool();
}

int Entity::line_of(const std::string& name) const {
    auto it = explicit_lines.find(name);
    return it == explicit_lines.end() ? line : it->second;
}

Entity validate(const RawSection& raw, const std::string& file) {
    const EntityTypeSchema* type = Schema::instance().find(raw.type);
    if (!type) throw ConfigError(file, raw.line, "unknown section '" + raw.type + "'");
    if (!type->configurable)
        throw ConfigError(file, raw.line,
                          "'" + raw.type + "' is reported by the router, not configured");
    Entity e;
    e.type = type;
    e.file = file;
    e.line = raw.line;
    for (const auto& [name, value] : raw.attributes) {
        int line = value.line ? value.line : raw.line;
        const AttributeSchema* a = type->attribute(name);
        if (!a)
            throw ConfigError(file, line,
                              "unknown attribute '" + name + "' in " + type->short_name);
        if (!a->supported)
            throw ConfigError(file, line,
                              "attribute '" + name + "' of " + type->short_name +
                                  " is not supported by Trestle" +
                                  (a->instead.empty() ? std::string() : " (" + a->instead + ")"));
        if (a->operational && !(a->writable && !type->configurable))
            throw ConfigError(file, line,
                              "attribute '" + name + "' of " + type->short_name +
                                  " is reported by the router, not configured");
        if (e.explicit_lines.count(name))
            throw ConfigError(file, line, "attribute '" + name + "' set twice");
        json::Value typed;
        std::string err = coerce(*a, value, typed);
        if (!err.empty())
            throw ConfigError(file, line,
                              "bad value for " + type->short_name + " '" + name + "': " + err);
        e.attributes[name] = std::move(typed);
        e.explicit_lines[name] = line;
    }
    for (const auto& a : type->attributes) {
        if (e.attributes.count(a.name) || a.operational) continue;
        if (a.required)
            throw ConfigError(file, raw.line, type->short_name + " requires '" + a.name + "'");
        if (!a.default_value.is_null()) e.attributes[a.name] = a.default_value;
    }
    return e;
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

bool is_word(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
            return false;
    return true;
}

// Attributes whose values may contain '#' (qdrouterd treats only 'pattern' this way; the
// prefix of an address cannot contain it meaningfully, but a pattern needs it).
bool hash_allowed(std::string_view key) {
    return key == "pattern";
}

std::vector<RawSection> parse_sections(std::string_view text, const std::string& file) {
    std::vector<RawSection> sections;
    RawSection* open = nullptr;
    int line_no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++line_no;
        std::string_view t = trim(line);
        if (t.empty() || t.front() == '#') continue;

        // key: value   (the key decides whether '#' starts a comment)
        size_t colon = t.find(':');
        std::string_view maybe_key =
            colon == t.npos ? std::string_view{} : trim(t.substr(0, colon));

        // key: { JSON ... }  may span lines (vhost groups, as qdrouterd writes them); '#'
        // inside it is data (address patterns), not a comment.
        if (open && colon != t.npos && is_word(maybe_key) &&
            trim(t.substr(colon + 1)).starts_with('{')) {
            int start_line = line_no;
            std::string value(trim(t.substr(colon + 1)));
            auto balance = [](std::string_view v) {
                int depth = 0;
                bool in_string = false;
                for (size_t i = 0; i < v.size(); ++i) {
                    char c = v[i];
                    if (in_string) {
                        if (c == '\\')
                            ++i;
                        else if (c == '"')
                            in_string = false;
                    } else if (c == '"') {
                        in_string = true;
                    } else if (c == '{' || c == '[') {
                        ++depth;
                    } else if (c == '}' || c == ']') {
                        --depth;
                    }
                }
                return depth;
            };
            while (balance(value) > 0) {
                if (pos > text.size())
                    throw ConfigError(
                        file, start_line,
                        "the JSON value of '" + std::string(maybe_key) + "' is not closed");
                nl = text.find('\n', pos);
                std::string_view more =
                    text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
                pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
                ++line_no;
                value += '\n';
                value += trim(more);
            }
            json::Value v{std::move(value)};
            v.line = start_line;
            open->attributes.emplace_back(camel_case(maybe_key), std::move(v));
            continue;
        }
        if (!(colon != t.npos && is_word(maybe_key) && hash_allowed(maybe_key))) {
            size_t hash = t.find('#');
            if (hash != t.npos) t = trim(t.substr(0, hash));
            if (t.empty()) continue;
        }

        if (t.back() == '{') {
            std::string_view word = trim(t.substr(0, t.size() - 1));
            if (!is_word(word)) throw ConfigError(file, line_no, "expected 'SECTION {'");
            if (open)
                throw ConfigError(file, line_no,
                                  "section '" + std::string(word) + "' opened inside section '" +
                                      open->type + "' (missing '}'?)");
            sections.push_back({camel_case(word), line_no, {}});
            open = &sections.back();
            continue;
        }
        if (t == "}") {
            if (!open) throw ConfigError(file, line_no, "'}' without an open section");
            open = nullptr;
            continue;
        }
        colon = t.find(':');
        if (colon == t.npos)
            throw ConfigError(file, line_no, "expected 'attribute: value', 'SECTION {' or '}'");
        if (!open) throw ConfigError(file, line_no, "attribute outside of a section");
        std::string_view key = trim(t.substr(0, colon));
        std::string_view value = trim(t.substr(colon + 1));
        if (!is_word(key)) throw ConfigError(file, line_no, "invalid attribute name");
        if (hash_allowed(key)) {
            // qdrouterd keeps the first whitespace-free token of a pattern.
            size_t ws = value.find_first_of(" \t");
            if (ws != value.npos) value = value.substr(0, ws);
        }
        if (value.size() >= 2 && ((value.front() == '"' && value.back() == '"') ||
                                  (value.front() == '\'' && value.back() == '\'')))
            value = value.substr(1, value.size() - 2);
        if (value.empty())
            throw ConfigError(file, line_no, "attribute '" + std::string(key) + "' has no value");
        json::Value v{std::string(value)};
        v.line = line_no;
        open->attributes.emplace_back(camel_case(key), std::move(v));
    }
    if (open) throw ConfigError(file, open->line, "section '" + open->type + "' is not closed");
    return sections;
}

std::vector<RawSection> parse_json_sections(std::string_view text, const std::string& file) {
    json::Value doc;
    json::ParseError err;
    if (!json::parse(text, doc, err)) throw ConfigError(file, err.line, err.message);
    if (!doc.is_array())
        throw ConfigError(file, doc.line, "expected a JSON array of [\"section\", {attributes}]");
    std::vector<RawSection> sections;
    for (const auto& item : doc.as_array()) {
        if (!item.is_array() || item.as_array().size() != 2 || !item.as_array()[0].is_string() ||
            !item.as_array()[1].is_object())
            throw ConfigError(file, item.line, "expected [\"section\", {attributes}]");
        RawSection s;
        s.type = camel_case(item.as_array()[0].as_string());
        s.line = item.line;
        for (const auto& [k, v] : item.as_array()[1].as_object()) {
            json::Value val = v;
            if (!val.line) val.line = item.line;
            s.attributes.emplace_back(camel_case(k), std::move(val));
        }
        sections.push_back(std::move(s));
    }
    return sections;
}

}  // namespace

std::vector<Entity> parse_config(std::string_view text, const std::string& file, bool json_form) {
    std::vector<RawSection> raw =
        json_form ? parse_json_sections(text, file) : parse_sections(text, file);
    std::vector<Entity> out;
    std::map<std::string, std::set<std::string>> names;
    std::set<std::string> singletons;
    for (const auto& s : raw) {
        Entity e = validate(s, file);
        if (e.type->singleton && !singletons.insert(e.type->short_name).second)
            throw ConfigError(file, s.line,
                              "only one '" + e.type->short_name + "' section allowed");
        if (e.is_set("name") && !names[e.type->short_name].insert(e.str("name")).second)
            throw ConfigError(file, e.line_of("name"),
                              "duplicate name '" + e.str("name") + "' for " + e.type->short_name);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<Entity> load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path, 0, "cannot open the configuration file");
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw ConfigError(path, 0, "cannot read the configuration file");
    std::string text = ss.str();
    bool json_form = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
    return parse_config(text, path, json_form);
}

}  // namespace trestle::management
