// The HTTP endpoint for probes and Prometheus: HTTP/1.1 with keep-alive on the shared event
// loop (Boost.Beast), GET and HEAD only, small bounded requests. What a path answers is the
// application's business (a Handler); this module only speaks HTTP.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;

namespace trestle::http {

struct Request {
    std::string_view method;         // GET or HEAD (others are answered 405 before the handler)
    std::string_view path;           // the target without its query
    std::string_view authorization;  // the Authorization header, if any
    bool encrypted = false;          // arrived over TLS
};

struct Response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string www_authenticate;  // 401: the challenge (e.g. Basic realm="trestle")
};

using Handler = std::function<Response(const Request&)>;

struct Settings {
    std::string name;
    size_t max_connections = 32;       // beyond it new connections are closed at once
    uint32_t idle_timeout_ms = 30000;  // a connection with no complete request in time is closed
    // TLS on every connection: returns a server SSL_CTX with a reference for the caller (the
    // current certificate, so a rotated one is used by new connections), with no password
    // callback userdata or app data (asio's ssl::context frees both as its own). Empty: plain
    // HTTP.
    std::function<SSL_CTX*()> tls;
};

// Largest request header accepted (431 beyond); requests have no body (400 if they do).
constexpr size_t max_header_bytes = 8192;

class Endpoint {
  public:
    // Connections run on the executor of the sockets they are accepted on.
    Endpoint(Settings settings, Handler handler);
    ~Endpoint();
    Endpoint(const Endpoint&) = delete;
    Endpoint& operator=(const Endpoint&) = delete;

    // Takes an accepted connection.
    void accept(boost::asio::ip::tcp::socket s);
    size_t connections() const;
    const Settings& settings() const;
    // Closes every connection (shutdown).
    void close_all();

    struct Shared;

  private:
    std::shared_ptr<Shared> shared_;
};

// Parses `bytes` as one request and returns the bytes the server would send back (the same
// code path as a connection; for fuzzing and tests). Incomplete input answers nothing.
std::string answer(std::string_view bytes, const Handler& handler);

}  // namespace trestle::http
