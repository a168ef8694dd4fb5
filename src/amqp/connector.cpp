// Connectors: outgoing AMQP connections, reconnecting with backoff.
#include "amqp/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "amqp/link.hpp"

namespace trestle::amqp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

AmqpConnector::AmqpConnector(net::EventLoop& loop, core::Router& router, AmqpSettings settings,
                             std::string host, uint16_t port, uint32_t max_delay_ms)
    : loop_(loop),
      router_(router),
      settings_(std::move(settings)),
      host_(std::move(host)),
      port_(port),
      max_delay_ms_(max_delay_ms),
      timer_(loop.io()),
      resolver_(loop.io()) {
    if (settings_.virtual_host.empty()) settings_.virtual_host = host_;
}

void AmqpConnector::start() {
    connect();
}

void AmqpConnector::stop() {
    stopped_ = true;
    timer_.cancel();
    resolver_.cancel();
    if (socket_) {
        boost::system::error_code ec;
        socket_->close(ec);
    }
    if (auto c = conn_.lock()) c->shutdown();
}

void AmqpConnector::connect() {
    if (stopped_) return;
    status_ = "CONNECTING";
    auto self = shared_from_this();
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self](boost::system::error_code ec, tcp::resolver::results_type results) {
            if (self->stopped_) return;
            if (ec) return self->retry_later("cannot resolve " + self->host_ + ": " + ec.message());
            self->socket_ = std::make_unique<tcp::socket>(self->loop_.io());
            asio::async_connect(*self->socket_, results,
                                [self](boost::system::error_code ec2, const tcp::endpoint&) {
                                    if (self->stopped_) return;
                                    if (ec2) return self->retry_later(ec2.message());
                                    boost::system::error_code ignore;
                                    self->socket_->set_option(tcp::no_delay(true), ignore);
                                    auto conn = std::make_shared<AmqpConnection>(
                                        self->loop_, self->router_, std::move(*self->socket_),
                                        self->settings_, AmqpConnection::Side::client);
                                    self->socket_.reset();
                                    self->conn_ = conn;
                                    self->status_ = "SUCCESS";
                                    self->message_ = "Connection Opened";
                                    std::weak_ptr<AmqpConnector> weak = self;
                                    conn->start([weak](AmqpConnection& c) {
                                        auto me = weak.lock();
                                        if (!me || me->stopped_) return;
                                        // A connection that got as far as open earns a fresh
                                        // backoff.
                                        if (c.was_opened()) me->delay_ms_ = 100;
                                        me->retry_later("connection closed");
                                    });
                                });
        });
}

void AmqpConnector::retry_later(const std::string& why) {
    if (stopped_) return;
    status_ = "FAILED";
    message_ = why;
    logger().info("connector '{}' to {}:{}: {}; retrying in {} ms", settings_.name, host_, port_,
                  why, delay_ms_);
    timer_.expires_after(std::chrono::milliseconds(delay_ms_));
    delay_ms_ = std::min(delay_ms_ * 2, max_delay_ms_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->connect();
    });
}

}  // namespace trestle::amqp
