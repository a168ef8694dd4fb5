#include "security/secret.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace trestle::security {

std::string resolve_secret(const std::string& value) {
    if (value.starts_with("env:")) {
        std::string name = value.substr(4);
        const char* v = std::getenv(name.c_str());
        if (!v) throw std::runtime_error("environment variable " + name + " is not set");
        return v;
    }
    if (value.starts_with("file:")) {
        std::string path = value.substr(5);
        std::ifstream in(path);
        if (!in) throw std::runtime_error("secret file " + path + " cannot be read");
        std::string line;
        std::getline(in, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }
    if (value.starts_with("pass:")) return value.substr(5);
    return value;
}

}  // namespace trestle::security
