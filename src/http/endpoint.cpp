#include "http/endpoint.hpp"
#include "util/log.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>
#include <sstream>
#include <unordered_set>

namespace trestle::http {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::HTTP);
}
}  // namespace

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

using Parser = bhttp::request_parser<bhttp::empty_body>;
using Reply = bhttp::response<bhttp::string_body>;

Reply error_reply(bhttp::status st, std::string text) {
    Reply r{st, 11};
    r.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    r.set(bhttp::field::connection, "close");
    r.keep_alive(false);
    r.body() = std::move(text) + "\n";
    r.prepare_payload();
    return r;
}

// The response to a parsed request: method check, then the handler; HEAD gets GET's headers.
Reply respond(const bhttp::request<bhttp::empty_body>& req, const Handler& handler,
              bool encrypted = false) {
    if (req.version() != 10 && req.version() != 11)
        return error_reply(bhttp::status::http_version_not_supported,
                           "HTTP/1.0 and HTTP/1.1 are served");
    bool head = req.method() == bhttp::verb::head;
    if (req.method() != bhttp::verb::get && !head) {
        Reply r = error_reply(bhttp::status::method_not_allowed, "only GET and HEAD are served");
        r.set(bhttp::field::allow, "GET, HEAD");
        r.keep_alive(req.keep_alive());
        return r;
    }
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    auto auth = req[bhttp::field::authorization];
    Response out = handler(Request{head ? "HEAD" : "GET", path,
                                   std::string_view(auth.data(), auth.size()), encrypted});
    Reply r{static_cast<bhttp::status>(out.status), req.version()};
    r.set(bhttp::field::content_type, out.content_type);
    if (!out.www_authenticate.empty()) r.set(bhttp::field::www_authenticate, out.www_authenticate);
    r.set(bhttp::field::cache_control, "no-store");
    r.keep_alive(req.keep_alive());
    if (head) {
        r.content_length(out.body.size());
    } else {
        r.body() = std::move(out.body);
        r.prepare_payload();
    }
    return r;
}

// A request that does not parse: 431 for an oversized header, 400 otherwise.
Reply parse_error_reply(const beast::error_code& ec) {
    if (ec == bhttp::error::header_limit)
        return error_reply(
            bhttp::status::request_header_fields_too_large,
            "request header larger than " + std::to_string(max_header_bytes) + " bytes");
    if (ec == bhttp::error::buffer_overflow)
        return error_reply(bhttp::status::request_header_fields_too_large, "request too large");
    return error_reply(bhttp::status::bad_request, "bad request: " + ec.message());
}

}  // namespace

struct Endpoint::Shared {
    Settings settings;
    Handler handler;
    std::unordered_set<beast::tcp_stream*> streams;
};

namespace {

// One connection: plain (beast::tcp_stream) or TLS (beast::ssl_stream over one).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  public:
    static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

    Session(asio::ip::tcp::socket s, std::shared_ptr<Endpoint::Shared> shared)
        : stream_(std::move(s)), shared_(std::move(shared)), buffer_(max_header_bytes) {
        shared_->streams.insert(&lowest());
    }
    // TLS: the stream is made with the context, which must outlive it.
    Session(asio::ip::tcp::socket s, std::shared_ptr<Endpoint::Shared> shared,
            std::unique_ptr<asio::ssl::context> ctx)
        : ctx_(std::move(ctx)),
          stream_(std::move(s), *ctx_),
          shared_(std::move(shared)),
          buffer_(max_header_bytes) {
        shared_->streams.insert(&lowest());
    }
    ~Session() { shared_->streams.erase(&lowest()); }

    void start() {
        if constexpr (tls) {
            lowest().expires_after(std::chrono::milliseconds(shared_->settings.idle_timeout_ms));
            stream_.async_handshake(asio::ssl::stream_base::server,
                                    [self = this->shared_from_this()](beast::error_code ec) {
                                        if (ec) {
                                            // Plaintext HTTP, an untrusting client, old TLS.
                                            logger().info("http '{}': TLS handshake failed: {}",
                                                          self->shared_->settings.name,
                                                          ec.message());
                                            return self->close();
                                        }
                                        self->read();
                                    });
        } else {
            read();
        }
    }

  private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    void read() {
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(max_header_bytes));
        parser_->body_limit(0);
        lowest().expires_after(std::chrono::milliseconds(shared_->settings.idle_timeout_ms));
        bhttp::async_read(
            stream_, buffer_, *parser_,
            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::eof) {
            return close();
        }
        if (ec) {
            // A request that does not parse is answered (then closed); a socket error is not.
            if (ec.category() != bhttp::make_error_code(bhttp::error::need_more).category())
                return close();
            logger().debug("http '{}': bad request: {}", shared_->settings.name, ec.message());
            return write(parse_error_reply(ec));
        }
        write(respond(parser_->get(), shared_->handler, tls));
    }

    void write(Reply r) {
        reply_ = std::move(r);
        lowest().expires_after(std::chrono::milliseconds(shared_->settings.idle_timeout_ms));
        bhttp::async_write(stream_, reply_,
                           [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec || !self->reply_.keep_alive()) return self->close();
                               self->read();
                           });
    }

    void close() {
        beast::error_code ignored;
        lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        lowest().close();
    }

    std::unique_ptr<asio::ssl::context> ctx_;  // TLS only; declared before the stream
    Stream stream_;
    std::shared_ptr<Endpoint::Shared> shared_;
    beast::flat_buffer buffer_;
    std::optional<Parser> parser_;
    Reply reply_;
};

}  // namespace

Endpoint::Endpoint(Settings settings, Handler handler) : shared_(std::make_shared<Shared>()) {
    shared_->settings = std::move(settings);
    shared_->handler = std::move(handler);
}

Endpoint::~Endpoint() {
    close_all();
}

void Endpoint::accept(asio::ip::tcp::socket s) {
    if (shared_->streams.size() >= shared_->settings.max_connections) {
        logger().warn("http '{}': {} connections open, the limit: closing a new one",
                      shared_->settings.name, shared_->streams.size());
        beast::error_code ignored;
        s.close(ignored);
        return;
    }
    if (!shared_->settings.tls) {
        std::make_shared<Session<beast::tcp_stream>>(std::move(s), shared_)->start();
        return;
    }
    SSL_CTX* ctx = shared_->settings.tls();
    if (!ctx) {
        logger().warn("http '{}': no TLS context (certificate not loaded): closing a connection",
                      shared_->settings.name);
        beast::error_code ignored;
        s.close(ignored);
        return;
    }
    // asio's context takes over the reference tls() returned.
    auto c = std::make_unique<asio::ssl::context>(ctx);
    std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(s), shared_,
                                                                    std::move(c))
        ->start();
}

size_t Endpoint::connections() const {
    return shared_->streams.size();
}

const Settings& Endpoint::settings() const {
    return shared_->settings;
}

void Endpoint::close_all() {
    // Cancels their operations; each session ends in its completion handler.
    for (auto* s : shared_->streams) s->cancel();
    for (auto* s : shared_->streams) {
        beast::error_code ignored;
        s->socket().close(ignored);
    }
}

std::string answer(std::string_view bytes, const Handler& handler) {
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
    parser.body_limit(0);
    parser.eager(true);
    beast::error_code ec;
    size_t used = 0;
    while (used < bytes.size() && !parser.is_done()) {
        size_t n = parser.put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        if (ec == bhttp::error::need_more) return {};
        if (ec) break;
        if (n == 0) return {};
        used += n;
    }
    if (!ec && !parser.is_done()) return {};
    Reply r = ec ? parse_error_reply(ec) : respond(parser.get(), handler);
    std::ostringstream out;
    out << r;
    return out.str();
}

}  // namespace trestle::http
