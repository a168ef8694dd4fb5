// mqtt_load: an MQTT 3.1.1 load generator for comparing brokers (same program, same load).
// One process, one thread, epoll over all connections. Closed loop: a publisher keeps at most
// `window` messages outstanding (published but not yet received by every subscriber), so a
// broker is measured at its sustainable rate, never pushed into dropping QoS 0.
//
//   mqtt_load flow --port P --publishers 1 --subscribers 1 --qos 0 --count 500000
//                  [--payload 100] [--window 1000]
//   mqtt_load idle --port P --connections 10000 --hold-ms 3000
//
// --cafile CA.pem: every connection is TLS to "localhost", verified against CA (MQTT over TLS;
// the handshake is done before the run's clock starts).
//
// --subscribers 0: an ingest run, done when every QoS 1 publish is acknowledged (the window is
// then on PUBACKs). --publishers 0: an egress run, done when the subscriber has `count`
// messages from elsewhere (Kafka). --topic / --filter change the topic and the subscription
// (default bench/t, bench/#); --deadline-s bounds the run (default 120).
//
// Prints one JSON line: rate (messages published per second, each delivered to every
// subscriber), deliveries/s, p50/p99 latency in microseconds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void put_varint(uint32_t v, std::string& o) {
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if (v) b |= 0x80;
        o += static_cast<char>(b);
    } while (v);
}
void put_str(const std::string& s, std::string& o) {
    o += static_cast<char>(s.size() >> 8);
    o += static_cast<char>(s.size() & 0xff);
    o += s;
}

std::string connect_packet(const std::string& id, uint16_t keep_alive) {
    std::string b;
    put_str("MQTT", b);
    b += '\x04';
    b += '\x02';  // clean session
    b += static_cast<char>(keep_alive >> 8);
    b += static_cast<char>(keep_alive & 0xff);
    put_str(id, b);
    std::string p = "\x10";
    put_varint(static_cast<uint32_t>(b.size()), p);
    return p + b;
}

std::string subscribe_packet(const std::string& filter, uint8_t qos) {
    std::string b("\x00\x01", 2);  // packet id 1
    put_str(filter, b);
    b += static_cast<char>(qos);
    std::string p = "\x82";
    put_varint(static_cast<uint32_t>(b.size()), p);
    return p + b;
}

SSL_CTX* g_tls = nullptr;  // --cafile: TLS on every connection

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    bool subscriber = false;
    bool connected = false;   // CONNACK seen
    bool subscribed = false;  // SUBACK seen
    std::string in;
    std::string out;
    uint16_t next_id = 1;
    uint64_t unacked = 0;  // publisher QoS 1: PUBACKs outstanding
    uint64_t sent = 0;
    uint64_t received = 0;
};

int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return fd;
}

// TLS over a connected socket: a blocking handshake, then non-blocking like the rest.
SSL* tls_over(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK);
    SSL* ssl = SSL_new(g_tls);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        fprintf(stderr, "TLS handshake failed\n");
        exit(1);
    }
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return ssl;
}

// send()/recv() through TLS when the connection has it; -1 = would block.
ssize_t io_send(int fd, SSL* ssl, const char* p, size_t n) {
    if (!ssl) return ::send(fd, p, n, MSG_NOSIGNAL);
    int r = SSL_write(ssl, p, static_cast<int>(n));
    return r > 0 ? r : -1;
}
ssize_t io_recv(int fd, SSL* ssl, char* p, size_t n) {
    if (!ssl) return ::recv(fd, p, n, 0);
    int r = SSL_read(ssl, p, static_cast<int>(n));
    if (r > 0) return r;
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : 0;
}

struct Load {
    int port = 0;
    int publishers = 1, subscribers = 1;
    int qos = 0;
    uint64_t count = 100000;
    size_t payload = 100;
    uint64_t window = 1000;
    std::string topic = "bench/t", filter = "bench/#";
    int deadline_s = 120;
    uint64_t acked = 0;  // PUBACKs, all publishers
    int ep = -1;
    std::vector<Conn> conns;
    std::vector<int64_t> latencies;
    uint64_t published = 0;
    uint64_t min_received_all = 0;
    int64_t first_send = 0, last_receive = 0;

    void flush(Conn& c) {
        while (!c.out.empty()) {
            ssize_t n = io_send(c.fd, c.ssl, c.out.data(), c.out.size());
            if (n <= 0) break;
            c.out.erase(0, static_cast<size_t>(n));
        }
        epoll_event ev{};
        ev.events = c.out.empty() ? uint32_t(EPOLLIN) : uint32_t(EPOLLIN | EPOLLOUT);
        ev.data.u32 = static_cast<uint32_t>(&c - conns.data());
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void publish(Conn& c) {
        std::string b;
        put_str(topic, b);
        if (qos) {
            b += static_cast<char>(c.next_id >> 8);
            b += static_cast<char>(c.next_id & 0xff);
            c.next_id = static_cast<uint16_t>(c.next_id == 65535 ? 1 : c.next_id + 1);
        }
        int64_t t = now_ns();
        if (!first_send) first_send = t;
        std::string body(payload, 'x');
        std::memcpy(body.data(), &t, std::min(sizeof t, payload));
        b += body;
        c.out += static_cast<char>(0x30 | (qos << 1));
        put_varint(static_cast<uint32_t>(b.size()), c.out);
        c.out += b;
        ++c.sent;
        ++published;
        if (qos) ++c.unacked;
    }

    uint64_t min_received() const {
        if (subscribers == 0) return acked;  // ingest: done = acknowledged
        uint64_t m = UINT64_MAX;
        for (const auto& c : conns)
            if (c.subscriber) m = std::min(m, c.received);
        return m == UINT64_MAX ? 0 : m;
    }

    // Publishers send while the window allows.
    void pump_publishers() {
        uint64_t done = min_received();
        for (auto& c : conns) {
            if (c.subscriber || !c.connected) continue;
            uint64_t per_pub_window = std::max<uint64_t>(1, window / std::max(1, publishers));
            uint64_t share =
                count / std::max(1, publishers) +
                (static_cast<uint64_t>(&c - conns.data()) < count % std::max(1, publishers));
            // Publish until the window is full or the socket pushes back (not just one 64 KiB
            // chunk per wake-up: a broker that acknowledges late would otherwise be starved).
            while (c.sent < share && published - done < window &&
                   (qos == 0 || c.unacked < per_pub_window)) {
                publish(c);
                if (c.out.size() > 64 * 1024) {
                    flush(c);
                    if (!c.out.empty()) break;
                }
            }
            flush(c);
        }
    }

    void on_packet(Conn& c, uint8_t type, const char* body, size_t len) {
        switch (type) {
            case 2:  // CONNACK
                c.connected = true;
                if (c.subscriber) {
                    c.out += subscribe_packet(filter, static_cast<uint8_t>(qos));
                    flush(c);
                }
                break;
            case 9:  // SUBACK
                c.subscribed = true;
                break;
            case 4:  // PUBACK
                if (c.unacked) --c.unacked;
                ++acked;
                if (subscribers == 0) last_receive = now_ns();
                break;
            case 3: {  // PUBLISH
                uint8_t q = 0;
                size_t tl = (uint8_t(body[0]) << 8) | uint8_t(body[1]);
                size_t off = 2 + tl;
                uint16_t id = 0;
                q = static_cast<uint8_t>(last_flags_ >> 1) & 3;
                if (q) {
                    id = static_cast<uint16_t>((uint8_t(body[off]) << 8) | uint8_t(body[off + 1]));
                    off += 2;
                }
                int64_t t;
                if (len - off >= sizeof t) {
                    std::memcpy(&t, body + off, sizeof t);
                    int64_t now = now_ns();
                    last_receive = now;
                    if (!first_send) first_send = now;  // egress: timed from the first arrival
                    if (latencies.size() < 2000000) latencies.push_back(now - t);
                }
                ++c.received;
                if (q == 1) {
                    c.out += "\x40\x02";
                    c.out += static_cast<char>(id >> 8);
                    c.out += static_cast<char>(id & 0xff);
                }
                break;
            }
            default:
                break;
        }
    }
    uint8_t last_flags_ = 0;

    void on_readable(Conn& c) {
        char buf[65536];
        while (true) {
            ssize_t n = io_recv(c.fd, c.ssl, buf, sizeof buf);
            if (n == 0) {
                fprintf(stderr, "connection closed by the broker\n");
                exit(1);
            }
            if (n < 0) break;
            c.in.append(buf, static_cast<size_t>(n));
        }
        size_t pos = 0;
        while (c.in.size() - pos >= 2) {
            uint32_t len = 0;
            size_t i = pos + 1;
            int shift = 0;
            bool complete = false;
            while (i < c.in.size() && shift <= 21) {
                uint8_t b = static_cast<uint8_t>(c.in[i++]);
                len |= uint32_t(b & 0x7f) << shift;
                shift += 7;
                if (!(b & 0x80)) {
                    complete = true;
                    break;
                }
            }
            if (!complete || c.in.size() - i < len) break;
            uint8_t first = static_cast<uint8_t>(c.in[pos]);
            last_flags_ = first & 0x0f;
            on_packet(c, first >> 4, c.in.data() + i, len);
            pos = i + len;
        }
        c.in.erase(0, pos);
        if (!c.out.empty()) flush(c);
    }

    void add(Conn c) { conns.push_back(std::move(c)); }

    void run_flow() {
        ep = epoll_create1(0);
        conns.reserve(static_cast<size_t>(publishers + subscribers));
        for (int i = 0; i < subscribers; ++i) {
            Conn c;
            c.subscriber = true;
            c.fd = dial(port);
            if (g_tls) c.ssl = tls_over(c.fd);
            c.out = connect_packet("sub-" + std::to_string(i), 0);
            add(std::move(c));
        }
        for (int i = 0; i < publishers; ++i) {
            Conn c;
            c.fd = dial(port);
            if (g_tls) c.ssl = tls_over(c.fd);
            c.out = connect_packet("pub-" + std::to_string(i), 0);
            add(std::move(c));
        }
        for (auto& c : conns) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u32 = static_cast<uint32_t>(&c - conns.data());
            epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
            flush(c);
        }
        // Subscribers first: publishing starts once every subscription is in place.
        std::vector<epoll_event> evs(1024);
        int64_t deadline = now_ns() + deadline_s * 1'000'000'000LL;
        bool started = false;
        while (now_ns() < deadline) {
            if (!started) {
                bool all = true;
                for (auto& c : conns) all &= c.connected && (!c.subscriber || c.subscribed);
                if (all) started = true;
            }
            if (started) {
                pump_publishers();
                if (min_received() >= count) break;
            }
            int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
            for (int k = 0; k < n; ++k) {
                Conn& c = conns[evs[k].data.u32];
                if (evs[k].events & EPOLLIN) on_readable(c);
                if (evs[k].events & EPOLLOUT) flush(c);
            }
        }
        uint64_t got = min_received();
        double secs = (last_receive - first_send) / 1e9;
        std::sort(latencies.begin(), latencies.end());
        auto pct = [&](double p) {
            return latencies.empty()
                       ? 0.0
                       : latencies[static_cast<size_t>(p * (latencies.size() - 1))] / 1e3;
        };
        printf(
            "{\"published\": %llu, \"received_by_all\": %llu, \"rate\": %.0f, "
            "\"deliveries_per_s\": %.0f, "
            "\"p50_us\": %.1f, \"p99_us\": %.1f}\n",
            static_cast<unsigned long long>(published), static_cast<unsigned long long>(got),
            got / secs, got * subscribers / secs, pct(0.50), pct(0.99));
    }

    void run_idle(int n, int hold_ms) {
        std::vector<int> fds;
        std::string pending;
        for (int i = 0; i < n; ++i) {
            int fd = dial(port);
            std::string p = connect_packet("idle-" + std::to_string(i), 0);
            ::send(fd, p.data(), p.size(), MSG_NOSIGNAL);
            fds.push_back(fd);
        }
        // Wait for every CONNACK (4 bytes each).
        int ok = 0;
        int64_t deadline = now_ns() + 60'000'000'000LL;
        std::vector<int> got(fds.size(), 0);
        while (ok < n && now_ns() < deadline) {
            for (size_t i = 0; i < fds.size(); ++i) {
                if (got[i] >= 4) continue;
                char b[8];
                ssize_t r = ::recv(fds[i], b, sizeof b, 0);
                if (r > 0) {
                    got[i] += static_cast<int>(r);
                    if (got[i] >= 4) ++ok;
                }
            }
        }
        printf("{\"connected\": %d}\n", ok);
        fflush(stdout);
        usleep(static_cast<useconds_t>(hold_ms) * 1000);  // the broker is measured meanwhile
        for (int fd : fds) close(fd);
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mqtt_load flow|idle --port P ...\n");
        return 2;
    }
    Load l;
    std::string mode = argv[1];
    int connections = 10000, hold_ms = 3000;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        long v = std::atol(argv[i + 1]);
        if (k == "--port")
            l.port = static_cast<int>(v);
        else if (k == "--publishers")
            l.publishers = static_cast<int>(v);
        else if (k == "--subscribers")
            l.subscribers = static_cast<int>(v);
        else if (k == "--qos")
            l.qos = static_cast<int>(v);
        else if (k == "--count")
            l.count = static_cast<uint64_t>(v);
        else if (k == "--payload")
            l.payload = static_cast<size_t>(v);
        else if (k == "--window")
            l.window = static_cast<uint64_t>(v);
        else if (k == "--connections")
            connections = static_cast<int>(v);
        else if (k == "--hold-ms")
            hold_ms = static_cast<int>(v);
        else if (k == "--topic")
            l.topic = argv[i + 1];
        else if (k == "--filter")
            l.filter = argv[i + 1];
        else if (k == "--deadline-s")
            l.deadline_s = static_cast<int>(v);
        else if (k == "--cafile") {
            g_tls = SSL_CTX_new(TLS_client_method());
            SSL_CTX_set_verify(g_tls, SSL_VERIFY_PEER, nullptr);
            if (SSL_CTX_load_verify_locations(g_tls, argv[i + 1], nullptr) != 1) {
                fprintf(stderr, "cannot load %s\n", argv[i + 1]);
                return 2;
            }
        } else {
            fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (mode == "flow")
        l.run_flow();
    else
        l.run_idle(connections, hold_ms);
    return 0;
}
