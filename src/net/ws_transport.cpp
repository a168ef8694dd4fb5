#include "net/ws_transport.hpp"

#include <openssl/sha.h>

#include <cstring>

#include "security/crypto.hpp"
#include "security/log.hpp"

namespace trestle::net {

namespace {

constexpr size_t max_request = 8192;  // the upgrade request's head

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool has_token(std::string_view list, std::string_view token) {
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string_view t =
            trim(list.substr(start, comma == list.npos ? list.npos : comma - start));
        if (iequals(t, token)) return true;
        if (comma == list.npos) break;
        start = comma + 1;
    }
    return false;
}

std::string refusal(const char* status, const std::string& why) {
    return std::string("HTTP/1.1 ") + status +
           "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(why.size() + 1) +
           "\r\nConnection: close\r\n\r\n" + why + "\n";
}

// One frame header: the server sends binary (opcode 2) or control frames, unmasked.
void frame(std::string& out, uint8_t opcode, std::string_view payload) {
    out += static_cast<char>(0x80 | opcode);
    size_t n = payload.size();
    if (n < 126) {
        out += static_cast<char>(n);
    } else if (n <= 0xFFFF) {
        out += static_cast<char>(126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(127);
        for (int i = 7; i >= 0; --i) out += static_cast<char>((uint64_t(n) >> (8 * i)) & 0xFF);
    }
    out.append(payload);
}

// Incremental frame decoder: client frames are masked (RFC 6455 5.1); fragments are joined.
class Decoder {
  public:
    explicit Decoder(size_t max) : max_(max) {}
    // Consumes what it can of `buf`; appends payload to `data`, control answers to `reply`.
    // Returns false on a protocol error (`error` says which) or after a close frame.
    bool feed(std::string& buf, std::string& data, std::string& reply, std::string& error,
              bool& closed) {
        size_t pos = 0;
        while (true) {
            if (buf.size() - pos < 2) break;
            auto b = reinterpret_cast<const uint8_t*>(buf.data() + pos);
            bool fin = b[0] & 0x80;
            uint8_t opcode = b[0] & 0x0F;
            if (b[0] & 0x70) return fail(error, "reserved bits set");
            if (!(b[1] & 0x80)) return fail(error, "unmasked client frame");
            uint64_t len = b[1] & 0x7F;
            size_t head = 2;
            if (len == 126) {
                if (buf.size() - pos < 4) break;
                len = (uint64_t(b[2]) << 8) | b[3];
                head = 4;
            } else if (len == 127) {
                if (buf.size() - pos < 10) break;
                len = 0;
                for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
                head = 10;
            }
            bool control = opcode & 0x08;
            if (control && (len > 125 || !fin)) return fail(error, "bad control frame");
            size_t so_far = opcode == 0x0 ? message_ : 0;  // a continuation adds to it
            if (!control && len > max_ - std::min(max_, so_far))
                return fail(error, "message larger than the listener's maximum");
            if (buf.size() - pos < head + 4 + len) break;
            const uint8_t* mask = b + head;
            std::string payload(reinterpret_cast<const char*>(b + head + 4), size_t(len));
            for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= char(mask[i % 4]);
            pos += head + 4 + size_t(len);
            switch (opcode) {
                case 0x0:  // continuation
                    if (!in_message_) return fail(error, "continuation without a message");
                    break;
                case 0x1:
                    return fail(error, "text frame (MQTT over WebSocket is binary)");
                case 0x2:
                    if (in_message_) return fail(error, "new message inside a fragmented one");
                    in_message_ = true;
                    message_ = 0;
                    break;
                case 0x8:
                    closed = true;
                    frame(reply, 0x8, payload.substr(0, std::min<size_t>(payload.size(), 2)));
                    buf.erase(0, pos);
                    return false;
                case 0x9:
                    frame(reply, 0xA, payload);
                    continue;
                case 0xA:
                    continue;
                default:
                    return fail(error, "unknown opcode");
            }
            message_ += payload.size();
            data += payload;  // MQTT is a byte stream: frame boundaries do not matter
            if (fin) in_message_ = false;
        }
        buf.erase(0, pos);
        return true;
    }

  private:
    static bool fail(std::string& error, const char* why) {
        error = why;
        return false;
    }
    size_t max_;
    size_t message_ = 0;
    bool in_message_ = false;
};

class WsTransport final : public Transport, private Transport::Handler {
  public:
    WsTransport(std::unique_ptr<Transport> inner, WsSettings s)
        : inner_(std::move(inner)), s_(std::move(s)), decoder_(s_.max_message) {}
    ~WsTransport() override { close(); }

    void start(Transport::Handler& h) override {
        h_ = &h;
        inner_->start(*this);
    }
    void set_reading(bool on) override { inner_->set_reading(on); }
    void write(std::string_view d) override {
        if (closed_ || d.empty()) return;
        if (mode_ == Mode::plain) return inner_->write(d);
        out_.clear();
        frame(out_, 0x2, d);
        inner_->write(out_);
    }
    size_t buffered() const override { return inner_->buffered(); }
    void close() override {
        if (closed_) return;
        closed_ = true;
        inner_->close();
    }
    std::string remote() const override { return inner_->remote(); }
    bool websocket() const override { return mode_ == Mode::websocket; }
    bool encrypted() const override { return inner_->encrypted(); }
    TlsParameters tls_parameters() const override { return inner_->tls_parameters(); }
    std::string peer_identity(const std::string& f) const override {
        return inner_->peer_identity(f);
    }

  private:
    enum class Mode { sniffing, handshake, websocket, plain };

    void on_data(std::string_view d) override {
        if (closed_) return;
        if (mode_ == Mode::plain) return h_->on_data(d);
        if (mode_ == Mode::sniffing) {
            if (d.empty()) return;
            if (d[0] != 'G') {
                mode_ = Mode::plain;
                return h_->on_data(d);
            }
            mode_ = Mode::handshake;
        }
        buf_.append(d);
        if (mode_ == Mode::handshake) {
            size_t end = buf_.find("\r\n\r\n");
            if (end == std::string::npos) {
                if (buf_.size() > max_request)
                    refuse(refusal("431 Request Header Fields Too Large", "request too large"));
                return;
            }
            bool ok = false;
            std::string answer =
                ws_handshake_answer(std::string_view(buf_).substr(0, end + 4), s_, ok);
            buf_.erase(0, end + 4);
            if (!ok) return refuse(answer);
            mode_ = Mode::websocket;
            inner_->write(answer);
        }
        std::string data, reply, error;
        bool peer_closed = false;
        bool fine = decoder_.feed(buf_, data, reply, error, peer_closed);
        if (!reply.empty()) inner_->write(reply);
        if (!data.empty()) h_->on_data(data);
        if (closed_) return;
        if (!fine) {
            if (!peer_closed) {
                security::logger().info("WebSocket from {}: {}", remote(), error);
                std::string close;
                frame(close, 0x8, std::string_view("\x03\xea", 2));  // 1002 protocol error
                inner_->write(close);
            }
            end(!peer_closed);
        }
    }
    void on_writable() override {
        if (!closed_) h_->on_writable();
    }
    void on_closed(bool error) override {
        if (closed_) return;
        closed_ = true;
        h_->on_closed(error);
    }
    void refuse(const std::string& answer) {
        security::logger().info("WebSocket upgrade from {} refused: {}", remote(),
                                answer.substr(9, answer.find('\r') - 9));
        inner_->write(answer);
        end(false);
    }
    // The connection ends here: the handler hears it once.
    void end(bool error) {
        closed_ = true;
        inner_->close();
        h_->on_closed(error);
    }

    std::unique_ptr<Transport> inner_;
    WsSettings s_;
    Decoder decoder_;
    Transport::Handler* h_ = nullptr;
    Mode mode_ = Mode::sniffing;
    std::string buf_, out_;
    bool closed_ = false;
};

}  // namespace

std::string ws_handshake_answer(std::string_view req, const WsSettings& s, bool& ok) {
    ok = false;
    size_t line_end = req.find("\r\n");
    std::string_view line = req.substr(0, line_end);
    // GET <target> HTTP/1.1
    if (line.substr(0, 4) != "GET ") return refusal("400 Bad Request", "not a GET request");
    size_t sp = line.find(' ', 4);
    if (sp == line.npos || line.substr(sp + 1) != "HTTP/1.1")
        return refusal("400 Bad Request", "not an HTTP/1.1 request");
    std::string_view target = line.substr(4, sp - 4);
    if (target != s.path) return refusal("404 Not Found", "no such path");
    std::string_view upgrade, connection, key, version, protocols;
    size_t pos = line_end == req.npos ? req.size() : line_end + 2;
    while (pos < req.size()) {
        size_t e = req.find("\r\n", pos);
        if (e == req.npos) e = req.size();
        std::string_view h = req.substr(pos, e - pos);
        pos = e + 2;
        size_t colon = h.find(':');
        if (colon == h.npos) continue;
        std::string_view name = trim(h.substr(0, colon)), value = trim(h.substr(colon + 1));
        if (iequals(name, "upgrade"))
            upgrade = value;
        else if (iequals(name, "connection"))
            connection = value;
        else if (iequals(name, "sec-websocket-key"))
            key = value;
        else if (iequals(name, "sec-websocket-version"))
            version = value;
        else if (iequals(name, "sec-websocket-protocol"))
            protocols = value;
    }
    if (!iequals(upgrade, "websocket") || !has_token(connection, "upgrade") || key.empty())
        return refusal("400 Bad Request", "not a WebSocket upgrade");
    if (version != "13")
        return refusal("426 Upgrade Required\r\nSec-WebSocket-Version: 13",
                       "WebSocket version 13 required");
    std::string chosen;
    for (const auto& want : s.subprotocols)
        if (has_token(protocols, want)) {
            chosen = want;
            break;
        }
    if (chosen.empty()) return refusal("400 Bad Request", "WebSocket subprotocol 'mqtt' required");
    std::string k(key);
    k += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 1.3
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(k.data()), k.size(), digest);
    std::string accept = security::base64_encode(
        std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
    ok = true;
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " +
           accept + "\r\nSec-WebSocket-Protocol: " + chosen + "\r\n\r\n";
}

WsParse ws_parse_frames(std::string_view bytes, size_t max_message) {
    WsParse out;
    Decoder d(max_message);
    std::string buf(bytes);
    if (!d.feed(buf, out.data, out.reply, out.error, out.closed) && out.error.empty())
        out.closed = true;
    return out;
}

std::unique_ptr<Transport> ws_or_plain_server_transport(std::unique_ptr<Transport> inner,
                                                        WsSettings settings) {
    return std::make_unique<WsTransport>(std::move(inner), std::move(settings));
}

}  // namespace trestle::net
