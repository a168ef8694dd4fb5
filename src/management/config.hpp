// Loads router configuration: qdrouterd's section syntax (`listener {` ... `}`) or its JSON
// form (`[["listener", {...}], ...]`), validated against the schema. Errors name file and line.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "management/schema.hpp"
#include "util/json.hpp"

namespace trestle::management {

class ConfigError : public std::runtime_error {
  public:
    ConfigError(std::string file, int line, const std::string& message)
        : std::runtime_error(file + ":" + std::to_string(line) + ": " + message),
          file_(std::move(file)),
          line_(line) {}
    const std::string& file() const { return file_; }
    int line() const { return line_; }

  private:
    std::string file_;
    int line_;
};

// One validated entity: every attribute of its type, typed, defaults filled in.
struct Entity {
    const EntityTypeSchema* type = nullptr;
    std::string file;
    int line = 0;                                   // where the section starts
    std::map<std::string, json::Value> attributes;  // only set or defaulted ones
    std::map<std::string, int> explicit_lines;      // attributes the file set, and their lines

    bool has(const std::string& name) const { return attributes.count(name) != 0; }
    bool is_set(const std::string& name) const { return explicit_lines.count(name) != 0; }
    std::string str(const std::string& name, const std::string& fallback = {}) const;
    int64_t integer(const std::string& name, int64_t fallback = 0) const;
    bool boolean(const std::string& name, bool fallback = false) const;
    // The line to blame for an attribute (its own line, else the section's).
    int line_of(const std::string& name) const;
};

// One raw section before validation.
struct RawSection {
    std::string type;
    int line = 0;
    std::vector<std::pair<std::string, json::Value>> attributes;  // value.line = its line
};

// Validates one section against the schema (also used by management CREATE).
Entity validate(const RawSection& raw, const std::string& file);

// Parses config text. `json_form` selects the JSON form. Throws ConfigError.
std::vector<Entity> parse_config(std::string_view text, const std::string& file, bool json_form);

// Reads and parses a file; the JSON form is chosen by a ".json" suffix. Throws ConfigError.
std::vector<Entity> load_config_file(const std::string& path);

}  // namespace trestle::management
