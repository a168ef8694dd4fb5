// Fuzzes the $management request decoder and the agent behind it: any bytes either fail to
// decode with a reason or get a response with a status code, which encodes to a valid message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "amqp/codec.hpp"
#include "management/agent.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace trestle;
    static management::Agent agent = [] {
        management::Agent a;
        management::Provider p;
        p.query = [] {
            return std::vector<json::Object>{{{"name", "a"}, {"identity", "1"}, {"prefix", "x"}}};
        };
        a.set_provider("router.config.address", p);
        return a;
    }();
    std::string_view in(reinterpret_cast<const char*>(data), size);
    management::Request req;
    std::string reply_to, correlation;
    std::string err = management::decode_request(in, req, reply_to, correlation);
    management::Response resp;
    if (err.empty()) {
        resp = agent.handle(req);
        if (resp.code < 200 || resp.code > 599) __builtin_trap();
    } else {
        resp.code = management::status::bad_request;
        resp.description = err;
    }
    std::string out = management::encode_response(resp, reply_to, correlation);
    amqp::MessageLayout l;
    if (!amqp::scan_message(out, l).empty()) __builtin_trap();
    return 0;
}
