// MQTT over WebSocket (subprotocol "mqtt") with Boost.Beast, on the same port as plain MQTT:
// the first byte tells an MQTT CONNECT (0x10) from an HTTP request. Beast stays in this one
// translation unit (it is heavy to compile).
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include "mqtt/listener.hpp"
#include "net/epoll_transport.hpp"
#include "util/log.hpp"

namespace trestle::mqtt {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::MQTT);
}
}  // namespace

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// Beast completions may run after the connection is gone: the stream and buffers live in a
// shared state that pending operations keep alive; `handler` is cleared on close.
struct WsState : std::enable_shared_from_this<WsState> {
    explicit WsState(websocket::stream<tcp::socket> w) : ws(std::move(w)) { ws.binary(true); }
    websocket::stream<tcp::socket> ws;
    beast::flat_buffer in;
    std::string queued, writing;
    Transport::Handler* handler = nullptr;
    bool reading = true, read_pending = false, write_pending = false, closed = false;

    void read() {
        if (!reading || read_pending || closed) return;
        read_pending = true;
        ws.async_read(in, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->read_pending = false;
            if (self->closed || !self->handler) return;
            if (ec) return self->handler->on_closed(ec != websocket::error::closed);
            // The handler may start the next read on this buffer: take the bytes out first.
            auto data = self->in.data();
            std::string bytes(static_cast<const char*>(data.data()), data.size());
            self->in.consume(self->in.size());
            if (self->in.capacity() > 64 * 1024) self->in.shrink_to_fit();
            self->handler->on_data(bytes);
            self->read();
        });
    }
    void write() {
        if (write_pending || queued.empty() || closed) return;
        writing.swap(queued);
        write_pending = true;
        ws.async_write(asio::buffer(writing),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                           self->write_pending = false;
                           self->writing.clear();
                           if (self->closed || !self->handler) return;
                           if (ec) return self->handler->on_closed(true);
                           if (!self->queued.empty())
                               self->write();
                           else
                               self->handler->on_writable();
                       });
    }
};

class WsTransport final : public Transport {
  public:
    WsTransport(websocket::stream<tcp::socket> ws, std::string remote)
        : st_(std::make_shared<WsState>(std::move(ws))), remote_(std::move(remote)) {}
    ~WsTransport() override { close(); }
    void start(Handler& h) override {
        st_->handler = &h;
        st_->read();
    }
    void set_reading(bool on) override {
        st_->reading = on;
        st_->read();
    }
    void write(std::string_view d) override {
        st_->queued.append(d);
        st_->write();
    }
    size_t buffered() const override { return st_->queued.size() + st_->writing.size(); }
    void close() override {
        if (st_->closed) return;
        st_->closed = true;
        st_->handler = nullptr;
        beast::error_code ec;
        st_->ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
        st_->ws.next_layer().close(ec);
    }
    std::string remote() const override { return remote_; }
    bool websocket() const override { return true; }

  private:
    std::shared_ptr<WsState> st_;
    std::string remote_;
};

// Reads the HTTP upgrade request and completes the WebSocket handshake.
class Upgrade : public std::enable_shared_from_this<Upgrade> {
  public:
    using Ready = std::function<void(std::unique_ptr<Transport>)>;
    Upgrade(tcp::socket s, const ListenerSettings& st, Ready ready)
        : ws_(std::move(s)), settings_(st), ready_(std::move(ready)) {
        remote_ = net::remote_endpoint(ws_.next_layer());
    }
    void start() {
        http::async_read(
            ws_.next_layer(), buffer_, req_,
            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
    }

  private:
    void refuse(http::status status, const std::string& why) {
        logger().info("WebSocket upgrade from {} refused: {}", remote_, why);
        auto res = std::make_shared<http::response<http::string_body>>(status, req_.version());
        res->set(http::field::content_type, "text/plain");
        res->set(http::field::connection, "close");
        res->body() = why + "\n";
        res->prepare_payload();
        http::async_write(ws_.next_layer(), *res,
                          [self = shared_from_this(), res](beast::error_code, size_t) {
                              beast::error_code ec;
                              self->ws_.next_layer().close(ec);
                          });
    }
    void on_request(beast::error_code ec) {
        if (ec) return;  // not even a complete HTTP request: nothing to answer
        std::string_view target(req_.target().data(), req_.target().size());
        if (target != settings_.websocket_path)
            return refuse(http::status::not_found, "no such path");
        if (!websocket::is_upgrade(req_))
            return refuse(http::status::bad_request, "not a WebSocket upgrade");
        // The MQTT spec's subprotocol is "mqtt"; old clients ask for "mqttv3.1".
        std::string_view protocols(req_[http::field::sec_websocket_protocol].data(),
                                   req_[http::field::sec_websocket_protocol].size());
        std::string chosen;
        for (std::string_view want : {"mqtt", "mqttv3.1"})
            if (protocols.find(want) != std::string_view::npos) {
                chosen = std::string(want);
                break;
            }
        if (chosen.empty())
            return refuse(http::status::bad_request, "WebSocket subprotocol 'mqtt' required");
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
            res.set(http::field::sec_websocket_protocol, chosen);
        }));
        ws_.async_accept(req_, [self = shared_from_this()](beast::error_code e) {
            if (e) {
                logger().info("WebSocket handshake with {} failed: {}", self->remote_, e.message());
                return;
            }
            self->ready_(std::make_unique<WsTransport>(std::move(self->ws_), self->remote_));
        });
    }

    websocket::stream<tcp::socket> ws_;
    const ListenerSettings& settings_;
    Ready ready_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> req_;
    std::string remote_;
};

}  // namespace

void accept_mqtt_or_websocket(net::Poller& poller, tcp::socket s, const ListenerSettings& st,
                              std::function<void(std::unique_ptr<Transport>)> ready) {
    auto sock = std::make_shared<tcp::socket>(std::move(s));
    sock->async_wait(tcp::socket::wait_read,
                     [sock, &st, &poller, ready = std::move(ready)](boost::system::error_code ec) {
                         if (ec) return;
                         char first = 0;
                         ssize_t n =
                             ::recv(sock->native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
                         if (n <= 0) {
                             boost::system::error_code ignore;
                             sock->close(ignore);
                             return;
                         }
                         if (first == 'G') {
                             std::make_shared<Upgrade>(std::move(*sock), st, ready)->start();
                         } else {
                             ready(net::epoll_transport(poller, std::move(*sock)));
                         }
                     });
}

}  // namespace trestle::mqtt
