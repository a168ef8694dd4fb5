// amqp_arrow: a minimal, fast AMQP load client on Proton's C proactor (after quiver's C arrow).
// One process is a sender or a receiver; it connects (to a router) or listens (for the direct,
// no-router ceiling). It prints one JSON line with its count and first/last timestamps.
//
//   amqp_arrow send    --connect H:P | --listen H:P  --address A --count N [--body 100]
//                      [--presettled] [--durable-data]
//   amqp_arrow receive --connect H:P | --listen H:P  --address A --count N [--credit 1000]
//                      [--idle-exit-ms 2000]
//   Either, connecting: [--tls CA.pem] (TLS, the router's certificate checked against CA.pem)
//                       [--user U --password P] (SASL PLAIN)
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/listener.h>
#include <proton/message.h>
#include <proton/netaddr.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/ssl.h>
#include <proton/transport.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

struct Options {
    bool sender = true;
    bool listen = false;
    std::string host = "127.0.0.1", port;
    std::string address = "bench";
    long count = 1000000;
    size_t body = 100;
    bool presettled = false;
    bool durable_data = false;  // durable, body a data section (else: amqp-value string)
    int credit = 1000;
    int idle_exit_ms = 2000;
    std::string tls_ca;          // connect with TLS, trusting this CA
    std::string user, password;  // SASL PLAIN
};

int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Arrow {
    Options o;
    pn_proactor_t* proactor = nullptr;
    pn_listener_t* listener = nullptr;
    std::vector<char> encoded;  // the message, encoded once
    std::vector<char> rbuf = std::vector<char>(4096);
    long sent = 0, settled = 0, received = 0;
    int64_t first = 0, last = 0;
    uint64_t tag = 0;
    bool done = false;
    int64_t last_activity = 0;

    void encode_message() {
        pn_message_t* m = pn_message();
        pn_message_set_address(m, o.address.c_str());
        pn_message_set_durable(m, o.durable_data);
        std::string body(o.body, 'x');
        if (o.durable_data) {
            pn_message_set_inferred(m, true);  // a data section, not an amqp-value
            pn_data_put_binary(pn_message_body(m), pn_bytes(body.size(), body.data()));
        } else {
            pn_data_put_string(pn_message_body(m), pn_bytes(body.size(), body.data()));
        }
        encoded.resize(o.body + 256);
        size_t size = encoded.size();
        if (pn_message_encode(m, encoded.data(), &size) != 0) {
            std::fprintf(stderr, "encode failed\n");
            std::exit(1);
        }
        encoded.resize(size);
        pn_message_free(m);
    }

    void open_link(pn_connection_t* c) {
        pn_session_t* s = pn_session(c);
        pn_session_open(s);
        if (o.sender) {
            pn_link_t* l = pn_sender(s, "arrow-sender");
            pn_terminus_set_address(pn_link_target(l), o.address.c_str());
            if (o.presettled) pn_link_set_snd_settle_mode(l, PN_SND_SETTLED);
            pn_link_open(l);
        } else {
            pn_link_t* l = pn_receiver(s, "arrow-receiver");
            pn_terminus_set_address(pn_link_source(l), o.address.c_str());
            pn_link_open(l);
            pn_link_flow(l, o.credit);
        }
    }

    void send(pn_link_t* l) {
        while (pn_link_credit(l) > 0 && sent < o.count) {
            if (sent == 0) first = now_ns();
            ++tag;
            pn_delivery_t* d = pn_delivery(l, pn_dtag(reinterpret_cast<char*>(&tag), sizeof tag));
            pn_link_send(l, encoded.data(), encoded.size());
            pn_link_advance(l);
            ++sent;
            if (o.presettled) {
                pn_delivery_settle(d);
                ++settled;
            }
        }
        if (o.presettled && sent == o.count && !done)
            finish(pn_session_connection(pn_link_session(l)));
    }

    void finish(pn_connection_t* c) {
        done = true;
        last = now_ns();
        pn_connection_close(c);
        if (listener) pn_listener_close(listener);
    }

    void receive(pn_delivery_t* d) {
        pn_link_t* l = pn_delivery_link(d);
        if (!pn_delivery_readable(d) || pn_delivery_partial(d)) return;
        size_t n = pn_delivery_pending(d);
        if (n > rbuf.size()) rbuf.resize(n);
        pn_link_recv(l, rbuf.data(), n);
        pn_link_advance(l);
        if (!pn_delivery_settled(d)) pn_delivery_update(d, PN_ACCEPTED);
        pn_delivery_settle(d);
        int64_t t = now_ns();
        if (received == 0) first = t;
        last = t;
        last_activity = t;
        ++received;
        // Top the window up in batches, as quiver does, not per message.
        if (pn_link_credit(l) < o.credit / 2) pn_link_flow(l, o.credit - pn_link_credit(l));
        if (received == o.count) finish(pn_session_connection(pn_link_session(l)));
    }

    bool handle(pn_event_t* e) {
        switch (pn_event_type(e)) {
            case PN_LISTENER_OPEN: {
                char port[PN_MAX_ADDR];
                pn_netaddr_host_port(pn_listener_addr(pn_event_listener(e)), nullptr, 0, port,
                                     sizeof port);
                std::printf("{\"listening\": %s}\n", port);
                std::fflush(stdout);
                break;
            }
            case PN_LISTENER_ACCEPT:
                pn_listener_accept2(pn_event_listener(e), nullptr, nullptr);
                break;
            case PN_CONNECTION_INIT: {
                pn_connection_t* c = pn_event_connection(e);
                pn_connection_set_container(c, o.sender ? "arrow-sender" : "arrow-receiver");
                if (!o.listen) {
                    pn_connection_open(c);
                    open_link(c);
                }
                break;
            }
            case PN_CONNECTION_REMOTE_OPEN:
                if (o.listen) pn_connection_open(pn_event_connection(e));
                break;
            case PN_SESSION_REMOTE_OPEN:
                if (pn_session_state(pn_event_session(e)) & PN_LOCAL_UNINIT)
                    pn_session_open(pn_event_session(e));
                break;
            case PN_LINK_REMOTE_OPEN: {
                pn_link_t* l = pn_event_link(e);
                if (pn_link_state(l) & PN_LOCAL_UNINIT) {  // listen mode: the peer attached
                    pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
                    pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
                    pn_link_open(l);
                    if (pn_link_is_receiver(l)) pn_link_flow(l, o.credit);
                }
                break;
            }
            case PN_LINK_FLOW:
                if (o.sender && pn_link_is_sender(pn_event_link(e))) send(pn_event_link(e));
                break;
            case PN_DELIVERY: {
                pn_delivery_t* d = pn_event_delivery(e);
                if (o.sender) {
                    if (pn_delivery_remote_state(d) || pn_delivery_settled(d)) {
                        pn_delivery_settle(d);
                        if (++settled == o.count && !done)
                            finish(pn_session_connection(pn_link_session(pn_delivery_link(d))));
                    }
                } else {
                    receive(d);
                }
                break;
            }
            case PN_CONNECTION_REMOTE_CLOSE:
                pn_connection_close(pn_event_connection(e));
                break;
            case PN_TRANSPORT_CLOSED:
                if (!o.listen || done) return false;
                break;
            case PN_PROACTOR_TIMEOUT:
                // Presettled messages may be dropped on the way: stop once nothing arrives.
                if (!o.sender && received > 0 &&
                    now_ns() - last_activity > o.idle_exit_ms * 1000000LL)
                    return false;
                pn_proactor_set_timeout(proactor, 200);
                break;
            case PN_PROACTOR_INACTIVE:
                return false;
            default:
                break;
        }
        return true;
    }

    void run() {
        encode_message();
        proactor = pn_proactor();
        std::string addr = o.host + ":" + o.port;
        if (o.listen) {
            listener = pn_listener();
            pn_proactor_listen(proactor, listener, addr.c_str(), 16);
        } else {
            pn_connection_t* c = pn_connection();
            pn_transport_t* t = pn_transport();
            if (!o.tls_ca.empty()) {
                pn_ssl_domain_t* d = pn_ssl_domain(PN_SSL_MODE_CLIENT);
                pn_ssl_domain_set_trusted_ca_db(d, o.tls_ca.c_str());
                pn_ssl_domain_set_peer_authentication(d, PN_SSL_VERIFY_PEER, nullptr);
                pn_ssl_init(pn_ssl(t), d, nullptr);
                pn_ssl_domain_free(d);
            }
            if (!o.user.empty()) {
                pn_sasl_allowed_mechs(pn_sasl(t), "PLAIN");
                pn_connection_set_user(c, o.user.c_str());
                pn_connection_set_password(c, o.password.c_str());
            }
            pn_proactor_connect2(proactor, c, t, addr.c_str());
        }
        if (!o.sender) pn_proactor_set_timeout(proactor, 200);
        bool running = true;
        while (running) {
            pn_event_batch_t* b = pn_proactor_wait(proactor);
            while (pn_event_t* e = pn_event_batch_next(b))
                if (!handle(e)) running = false;
            pn_proactor_done(proactor, b);
        }
        long count = o.sender ? (o.presettled ? sent : settled) : received;
        std::printf("{\"role\": \"%s\", \"count\": %ld, \"first_ns\": %lld, \"last_ns\": %lld}\n",
                    o.sender ? "sender" : "receiver", count, static_cast<long long>(first),
                    static_cast<long long>(last));
        std::fflush(stdout);
        pn_proactor_free(proactor);
    }
};

void split(const std::string& hp, Options& o) {
    auto c = hp.rfind(':');
    o.host = hp.substr(0, c);
    o.port = hp.substr(c + 1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: amqp_arrow send|receive --connect H:P|--listen H:P ...\n");
        return 2;
    }
    Arrow a;
    a.o.sender = std::strcmp(argv[1], "send") == 0;
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        auto v = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (k == "--connect") {
            split(v(), a.o);
        } else if (k == "--listen") {
            split(v(), a.o);
            a.o.listen = true;
        } else if (k == "--address") {
            a.o.address = v();
        } else if (k == "--count") {
            a.o.count = std::atol(v().c_str());
        } else if (k == "--body") {
            a.o.body = static_cast<size_t>(std::atol(v().c_str()));
        } else if (k == "--credit") {
            a.o.credit = std::atoi(v().c_str());
        } else if (k == "--presettled") {
            a.o.presettled = true;
        } else if (k == "--durable-data") {
            a.o.durable_data = true;
        } else if (k == "--tls") {
            a.o.tls_ca = v();
        } else if (k == "--user") {
            a.o.user = v();
        } else if (k == "--password") {
            a.o.password = v();
        } else if (k == "--idle-exit-ms") {
            a.o.idle_exit_ms = std::atoi(v().c_str());
        } else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    a.run();
    return 0;
}
