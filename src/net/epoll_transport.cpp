#include "net/epoll_transport.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace trestle::net {

namespace {

class EpollTransport final : public Transport, private net::Poller::Client {
  public:
    EpollTransport(net::Poller& p, int fd) : poller_(p), fd_(fd) {}
    ~EpollTransport() override { close(); }

    void start(Handler& h) override {
        h_ = &h;
        events_ = EPOLLIN | EPOLLRDHUP;
        if (!poller_.add(fd_, this, events_)) h_->on_closed(true);
    }
    void set_reading(bool on) override {
        reading_ = on;
        update();
    }
    void write(std::string_view d) override {
        if (closed_ || d.empty()) return;
        if (pending_) {
            pending_->append(d);
            return;
        }
        ssize_t n = ::send(fd_, d.data(), d.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return;  // the read side reports the failure
            n = 0;
        }
        if (static_cast<size_t>(n) < d.size()) {
            pending_ = std::make_unique<std::string>(d.substr(static_cast<size_t>(n)));
            update();
        }
    }
    size_t buffered() const override { return pending_ ? pending_->size() : 0; }
    void close() override {
        if (closed_) return;
        closed_ = true;
        poller_.remove(fd_);
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
    }
    std::string remote() const override { return closed_ ? "?" : net::remote_endpoint(fd_); }

  private:
    void update() {
        if (closed_) return;
        uint32_t want =
            (reading_ ? uint32_t(EPOLLIN | EPOLLRDHUP) : 0u) | (pending_ ? uint32_t(EPOLLOUT) : 0u);
        if (want != events_) {
            events_ = want;
            poller_.modify(fd_, this, want);
        }
    }
    void on_events(uint32_t ev) override {
        if (closed_) return;
        if (ev & EPOLLOUT) {
            while (pending_ && !pending_->empty()) {
                ssize_t n =
                    ::send(fd_, pending_->data(), pending_->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n <= 0) break;
                pending_->erase(0, static_cast<size_t>(n));
            }
            if (pending_ && pending_->empty()) {
                pending_.reset();
                update();
                h_->on_writable();
                if (closed_) return;
            }
        }
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            static thread_local std::vector<char> scratch(64 * 1024);
            // A few reads per event, then other connections get their turn.
            for (int i = 0; i < 4 && reading_ && !closed_; ++i) {
                ssize_t n = ::recv(fd_, scratch.data(), scratch.size(), MSG_DONTWAIT);
                if (n > 0) {
                    h_->on_data(std::string_view(scratch.data(), static_cast<size_t>(n)));
                    if (static_cast<size_t>(n) < scratch.size()) break;
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                h_->on_closed(n < 0);
                return;
            }
        }
    }

    net::Poller& poller_;
    int fd_;
    Handler* h_ = nullptr;
    std::unique_ptr<std::string> pending_;  // what the socket did not take yet; null = none
    uint32_t events_ = 0;
    bool reading_ = true;
    bool closed_ = false;
};

}  // namespace

std::unique_ptr<Transport> epoll_transport(Poller& poller, boost::asio::ip::tcp::socket s) {
    int fd = s.release();  // the epoll transport owns the descriptor from here
    return std::make_unique<EpollTransport>(poller, fd);
}

}  // namespace trestle::net
