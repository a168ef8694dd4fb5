#include "net/event_loop.hpp"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <chrono>

namespace trestle::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

uint64_t monotonic_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

uint64_t monotonic_us() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

void EventLoop::schedule_flush(const std::shared_ptr<Flushable>& f) {
    if (f->flush_scheduled_) return;
    f->flush_scheduled_ = true;
    pending_.push_back(f);
    if (!posted_) {
        posted_ = true;
        asio::post(io_, [this] { run_flushes(); });
    }
}

void EventLoop::run_flushes() {
    posted_ = false;
    if (pending_.empty()) return;
    begin_turn();
    // A flush may schedule others (work crossing connections); bounded rounds.
    for (int round = 0; round < 8 && !pending_.empty(); ++round) {
        running_.swap(pending_);
        for (auto& f : running_) {
            f->flush_scheduled_ = false;
            f->flush();
        }
        running_.clear();
    }
}

void EventLoop::run() {
    io_.run();
}

TcpListener::TcpListener(EventLoop& loop, AcceptFn on_accept)
    : loop_(loop), acceptor_(loop.io()), retry_(loop.io()), on_accept_(std::move(on_accept)) {}

std::string TcpListener::listen(const std::string& host, uint16_t port) {
    boost::system::error_code ec;
    asio::ip::address addr;
    if (host.empty()) {
        addr = asio::ip::address_v6::any();
    } else if (host == "localhost") {
        addr = asio::ip::address_v4::loopback();
    } else {
        addr = asio::ip::make_address(host, ec);
        if (ec) {
            tcp::resolver resolver(loop_.io());
            auto results = resolver.resolve(host, "", ec);
            if (ec || results.empty()) return "cannot resolve host '" + host + "'";
            addr = results.begin()->endpoint().address();
        }
    }
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (ec) return ec.message();
    if (addr.is_v6() && host.empty()) acceptor_.set_option(asio::ip::v6_only(false), ec);
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor_.bind(ep, ec);
    if (ec) return "cannot bind " + host + ":" + std::to_string(port) + ": " + ec.message();
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec.message();
    port_ = acceptor_.local_endpoint().port();
    return {};
}

void TcpListener::start() {
    accept_next();
}

void TcpListener::accept_next() {
    acceptor_.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
            if (self->closed_) return;
            if (!ec) {
                s.set_option(tcp::no_delay(true), ec);
                self->on_accept_(std::move(s));
                self->accept_next();
                return;
            }
            // Out of descriptors or another transient error: retry shortly instead of spinning.
            self->retry_.expires_after(std::chrono::milliseconds(100));
            self->retry_.async_wait([self](boost::system::error_code e) {
                if (!e && !self->closed_) self->accept_next();
            });
        });
}

void TcpListener::close() {
    closed_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
}

std::string TcpListener::local_address() const {
    boost::system::error_code ec;
    auto ep = acceptor_.local_endpoint(ec);
    if (ec) return "?";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::string remote_endpoint(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    return std::string(host) + ":" + std::to_string(port);
}

Poller::Poller(EventLoop& loop) : loop_(loop), epfd_(epoll_create1(EPOLL_CLOEXEC)) {
    desc_ = std::make_unique<asio::posix::stream_descriptor>(loop_.io(), epfd_);
    wait();
}

Poller::~Poller() {
    boost::system::error_code ec;
    desc_->cancel(ec);
    desc_->release();  // the fd is closed below
    ::close(epfd_);
}

bool Poller::add(int fd, Client* c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Poller::modify(int fd, Client* c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void Poller::remove(int fd) {
    epoll_event ev{};
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
}

void Poller::wait() {
    desc_->async_wait(asio::posix::stream_descriptor::wait_read,
                      [this](boost::system::error_code ec) {
                          if (ec) return;
                          loop_.begin_turn();
                          epoll_event evs[256];
                          // Bounded rounds: other handlers of the loop get their turn.
                          for (int round = 0; round < 4; ++round) {
                              int n = epoll_wait(epfd_, evs, 256, 0);
                              for (int i = 0; i < n; ++i) {
                                  static_cast<Client*>(evs[i].data.ptr)->on_events(evs[i].events);
                                  if (after_) after_();
                              }
                              if (n < 256) break;
                          }
                          wait();
                      });
}

std::string remote_endpoint(const tcp::socket& s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    if (ec) return "?";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace trestle::net
