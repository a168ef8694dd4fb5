// The event loop every socket of a router runs on (Boost.Asio), plus a flush list: work that
// touches many connections marks them, and each is flushed once right after the current
// handler, not after every ready handler has run: the added latency costs more throughput
// under credit-window flow control than the saved syscalls gain (bench/RESULTS.md, "Profiles
// behind design choices").
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace trestle::net {

// Monotonic milliseconds and microseconds (steady clock).
uint64_t monotonic_ms();
uint64_t monotonic_us();

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
    // A handler that reads input (a socket, a Kafka queue) starts with this, so what it
    // stamps with the core's cached clock is not older than the handler.
    void begin_turn() {
        turn_us_ = monotonic_us();
        if (on_turn_) on_turn_();
    }
    // When the current turn began: one clock read per turn for whatever stamps messages.
    uint64_t turn_us() const { return turn_us_; }

  private:
    friend class Poller;
    void run_flushes();
    boost::asio::io_context io_{1};
    std::vector<std::shared_ptr<Flushable>> pending_;
    std::vector<std::shared_ptr<Flushable>> running_;
    bool posted_ = false;
    std::function<void()> on_turn_;
    uint64_t turn_us_ = 0;
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
std::string remote_endpoint(int fd);

// An epoll set of our own, waited on by the loop as one descriptor. Sockets registered here
// cost no per-socket Asio state and no pending operation while idle: what lets ten thousands
// of idle MQTT connections stay small. Events are delivered on the loop's thread.
class Poller {
  public:
    class Client {
      public:
        virtual ~Client() = default;
        virtual void on_events(uint32_t epoll_events) = 0;
    };
    explicit Poller(EventLoop& loop);
    ~Poller();
    bool add(int fd, Client* c, uint32_t events);
    void modify(int fd, Client* c, uint32_t events);
    void remove(int fd);
    // Runs after every client's on_events(): where output built while handling it is flushed.
    void after_each_event(std::function<void()> fn) { after_ = std::move(fn); }

  private:
    void wait();
    EventLoop& loop_;
    std::function<void()> after_;
    int epfd_;
    std::unique_ptr<boost::asio::posix::stream_descriptor> desc_;
};

}  // namespace trestle::net
