// Fuzzes the HTTP request path (Beast's parser and our method/target handling): any input
// gets either no answer (incomplete) or one well-formed response with a known status; the
// Authorization header reaches the handler, and a 401 carries its challenge.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/endpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    bool called = false;
    auto handler = [&](const trestle::http::Request& r) {
        called = true;
        if (r.method != "GET" && r.method != "HEAD") __builtin_trap();
        if (r.path.find('?') != std::string_view::npos) __builtin_trap();
        trestle::http::Response resp;
        resp.content_type = "text/plain";
        resp.body = std::string(r.path);
        if (!r.authorization.empty()) {  // as a listener with basic auth refuses
            resp.status = 401;
            resp.www_authenticate = "Basic realm=\"trestle\"";
        }
        return resp;
    };
    std::string out = trestle::http::answer(bytes, handler);
    if (out.empty()) return 0;
    if (out.rfind("HTTP/1.", 0) != 0) __builtin_trap();
    std::string_view status = std::string_view(out).substr(9, 3);
    if (status != "200" && status != "401" && status != "400" && status != "405" &&
        status != "431" && status != "505")
        __builtin_trap();
    if (called != (status == "200" || status == "401")) __builtin_trap();
    if ((status == "401") != (out.find("WWW-Authenticate: Basic") != std::string::npos))
        __builtin_trap();
    return 0;
}
