// The event loop every socket of a router runs on (Boost.Asio), plus a flush list: work that
// touches many connections marks them, and each is flushed once right after the current
// handler. (Deferring output until every ready handler had run was measured: fewer syscalls,
// but the added latency halved throughput under credit-window flow control.)
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace trestle::net {

// Monotonic milliseconds (steady clock).
uint64_t monotonic_ms();

class Flushable {
public:
    virtual ~Flushable() = default;
    virtual void flush() = 0;
    bool flush_scheduled() const { return flush_scheduled_; }

private:
    friend class EventLoop;
    bool flush_scheduled_ = false;
};

class EventLoop {
public:
    boost::asio::io_context& io() { return io_; }

    // Flush `f` once after the current handler returns (coalesced).
    void schedule_flush(const std::shared_ptr<Flushable>& f);

    void run();
    void stop() { io_.stop(); }

    // Called at the start of every flush batch, e.g. to advance the core's clock.
    void on_turn(std::function<void()> fn) { on_turn_ = std::move(fn); }

private:
    void run_flushes();
    boost::asio::io_context io_{1};
    std::vector<std::shared_ptr<Flushable>> pending_;
    std::vector<std::shared_ptr<Flushable>> running_;
    bool posted_ = false;
    std::function<void()> on_turn_;
};

// Accepts TCP connections and hands each socket to `on_accept`.
class TcpListener : public std::enable_shared_from_this<TcpListener> {
public:
    using AcceptFn = std::function<void(boost::asio::ip::tcp::socket)>;
    TcpListener(EventLoop& loop, AcceptFn on_accept);
    // Binds and listens; returns an error description, or empty on success.
    std::string listen(const std::string& host, uint16_t port);
    void start();
    void close();
    uint16_t port() const { return port_; }
    std::string local_address() const;

private:
    void accept_next();
    EventLoop& loop_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    AcceptFn on_accept_;
    uint16_t port_ = 0;
    bool closed_ = false;
};

// "host:port" of a socket's remote end, or "?" when it is gone.
std::string remote_endpoint(const boost::asio::ip::tcp::socket& s);

}  // namespace trestle::net
