// A plain TCP client for feeding a router bytes no AMQP library would send.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>

#include <chrono>
#include <stdexcept>
#include <string>

namespace trestle::test {

class RawSocket {
  public:
    explicit RawSocket(int port) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(port));
        if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect failed");
    }
    ~RawSocket() {
        if (fd_ >= 0) close(fd_);
    }
    void write(const std::string& bytes) {
        size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;  // the peer may already have closed
            off += static_cast<size_t>(n);
        }
    }
    // Reads until the peer closes or the deadline passes. `closed` tells which happened.
    std::string read_until_closed(std::chrono::milliseconds timeout, bool* closed) {
        std::string out;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        *closed = false;
        while (true) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return out;
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                *closed = true;
                return out;
            }
            out.append(buf, static_cast<size_t>(n));
        }
    }

    // Waits up to `timeout` for some bytes; `closed` tells if the peer closed instead.
    std::string read_some(std::chrono::milliseconds timeout, bool* closed) {
        *closed = false;
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
        char buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            *closed = true;
            return {};
        }
        return std::string(buf, static_cast<size_t>(n));
    }
    // Writes `chunk` repeatedly without blocking until the peer stops taking bytes (no progress
    // for `stall`) or `limit` bytes went out; returns the bytes written.
    size_t write_until_blocked(const std::string& chunk, size_t limit,
                               std::chrono::milliseconds stall) {
        int flags = fcntl(fd_, F_GETFL, 0);
        fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
        size_t total = 0, off = 0;
        auto last_progress = std::chrono::steady_clock::now();
        while (total < limit) {
            ssize_t n = ::send(fd_, chunk.data() + off, chunk.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                total += static_cast<size_t>(n);
                off = (off + static_cast<size_t>(n)) % chunk.size();
                last_progress = std::chrono::steady_clock::now();
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
            if (std::chrono::steady_clock::now() - last_progress > stall) break;
            pollfd p{fd_, POLLOUT, 0};
            poll(&p, 1, 20);  // wait for room (or the stall deadline above)
        }
        fcntl(fd_, F_SETFL, flags);
        return total;
    }
    // Stops reading: the kernel buffers fill and the peer's writes back up.
    void shrink_receive_buffer() {
        int v = 4096;
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    }

  private:
    int fd_ = -1;
};

// AMQP protocol header and a minimal open frame (container-id "raw").
inline std::string amqp_header() {
    return std::string("AMQP\x00\x01\x00\x00", 8);
}
inline std::string open_frame() {
    // performative: described(0x10 open) list8 { container-id: str8 "raw" }
    std::string body("\x00\x53\x10\xc0\x06\x01\xa1\x03raw", 11);
    uint32_t size = static_cast<uint32_t>(8 + body.size());
    std::string f;
    f += static_cast<char>(size >> 24);
    f += static_cast<char>(size >> 16);
    f += static_cast<char>(size >> 8);
    f += static_cast<char>(size);
    f += std::string("\x02\x00\x00\x00", 4);  // doff 2, AMQP frame, channel 0
    return f + body;
}

}  // namespace trestle::test
