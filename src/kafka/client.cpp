#include "kafka/client.hpp"

#include <cstdlib>
#include "util/log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

namespace trestle::kafka {

namespace {
// This module's logger (its level is set through the management `log` entity).
spdlog::logger& logger() {
    return logs::get(logs::Module::KAFKA);
}
}  // namespace

std::string make_consumer(const Properties& defaults, const Properties& props, Handle& out,
                          rd_kafka_queue_t*& queue,
                          const std::function<void(rd_kafka_conf_t*)>& setup) {
    std::string err;
    rd_kafka_conf_t* conf = make_conf(defaults, props, err, ClientKind::consumer);
    if (!conf) return err;
    if (setup) setup(conf);
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return errstr;
    }
    out.reset(rk);
    rd_kafka_poll_set_consumer(rk);
    queue = rd_kafka_queue_get_consumer(rk);
    return queue ? std::string() : "no consumer queue";
}

void FetchBurst::configure(rd_kafka_conf_t* conf) {
    char buf[32];
    size_t n = sizeof buf;
    if (rd_kafka_conf_get(conf, "queued.max.messages.kbytes", buf, &n) == RD_KAFKA_CONF_OK)
        at_ = static_cast<size_t>(std::strtoull(buf, nullptr, 10)) * 1024 / 2;
}

std::vector<std::pair<std::string_view, std::string_view>> record_headers(
    const rd_kafka_message_t* m) {
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    rd_kafka_headers_t* hs = nullptr;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR && hs) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hs, i, &name, &val, &size) == 0; ++i)
            headers.emplace_back(name,
                                 std::string_view(static_cast<const char*>(val), val ? size : 0));
    }
    return headers;
}

int64_t epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {

// librdkafka logs from its own threads; spdlog's default logger is thread-safe.
void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    const char* name = rk ? rd_kafka_name(rk) : "rdkafka";
    // Connection failures also arrive as error events (error_cb, deduplicated there): one
    // line per outage, not one per client, broker and retry.
    if (std::string_view(fac) == "FAIL") level = 7;
    if (level <= 3)
        logger().error("kafka {} {}: {}", name, fac, buf);
    else if (level <= 4)
        logger().warn("kafka {} {}: {}", name, fac, buf);
    else if (level <= 6)
        logger().info("kafka {} {}: {}", name, fac, buf);
    else
        logger().debug("kafka {} {}: {}", name, fac, buf);
}

}  // namespace

void log_error(rd_kafka_t* rk, int err, const char* reason) {
    static std::mutex mu;
    static std::map<std::pair<const rd_kafka_t*, std::string>,
                    std::chrono::steady_clock::time_point>
        seen;
    auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard<std::mutex> g(mu);
        auto& t = seen[{rk, reason}];
        if (t.time_since_epoch().count() && now - t < std::chrono::seconds(30)) return;
        t = now;
        if (seen.size() > 1000) seen.clear();
    }
    logger().warn("kafka {}: {}: {}", rd_kafka_name(rk),
                  rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
}

namespace {
void error_cb(rd_kafka_t* rk, int err, const char* reason, void*) {
    log_error(rk, err, reason);
}
}  // namespace

bool is_secret(std::string_view p) {
    return p.find("password") != std::string_view::npos ||
           p.find("secret") != std::string_view::npos || p == "ssl.key.pem" || p == "ssl_key" ||
           p.find("oauthbearer.config") != std::string_view::npos;
}

char property_scope(const std::string& name) {
    // rd_kafka_conf_properties_show prints "name | C/P | range | default | ...": read once.
    static const std::map<std::string, char, std::less<>> scopes = [] {
        std::map<std::string, char, std::less<>> m;
        char* buf = nullptr;
        size_t len = 0;
        FILE* f = open_memstream(&buf, &len);
        if (!f) return m;
        rd_kafka_conf_properties_show(f);
        std::fclose(f);
        auto trim = [](std::string_view v) {
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
            return v;
        };
        std::string_view all(buf, len);
        while (!all.empty()) {
            size_t eol = all.find('\n');
            std::string_view line = all.substr(0, eol);
            all.remove_prefix(eol == std::string_view::npos ? all.size() : eol + 1);
            size_t a = line.find('|');
            if (a == std::string_view::npos) continue;
            size_t b = line.find('|', a + 1);
            if (b == std::string_view::npos) continue;
            std::string_view key = trim(line.substr(0, a));
            std::string_view scope = trim(line.substr(a + 1, b - a - 1));
            if (key.empty() || scope.size() != 1 || !std::strchr("CP*", scope[0])) continue;
            m.emplace(std::string(key), scope[0]);  // the first listing (global before topic)
        }
        std::free(buf);
        return m;
    }();
    auto it = scopes.find(name);
    return it == scopes.end() ? '*' : it->second;
}

rd_kafka_conf_t* make_conf(const Properties& defaults, const Properties& props, std::string& err,
                           ClientKind kind) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char errstr[512];
    auto set = [&](const std::string& k, const std::string& v) {
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            err = "Kafka property '" + k + "': " + errstr;
            return false;
        }
        return true;
    };
    for (const auto& [k, v] : defaults)
        if (!props.count(k) && !set(k, v)) {
            rd_kafka_conf_destroy(conf);
            return nullptr;
        }
    auto applies = [kind](const std::string& k) {
        char scope = property_scope(k);
        return scope == '*' || (scope == 'P' && kind == ClientKind::producer) ||
               (scope == 'C' && kind == ClientKind::consumer);
    };
    for (const auto& [k, v] : props)
        if (applies(k) && !set(k, v)) {
            rd_kafka_conf_destroy(conf);
            return nullptr;
        }
    return conf;
}

QueueWaker::QueueWaker(net::EventLoop& loop, rd_kafka_queue_t* queue, std::function<bool()> serve)
    : loop_(loop), queue_(queue), serve_(std::move(serve)), alive_(std::make_shared<bool>(true)) {
    if (::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    desc_ = std::make_unique<boost::asio::posix::stream_descriptor>(loop_.io(), fds_[0]);
    static const char one = 1;
    rd_kafka_queue_io_event_enable(queue_, fds_[1], &one, 1);
    wait();
    poke();  // events enqueued before the IO event was enabled
}

QueueWaker::~QueueWaker() {
    *alive_ = false;
    rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
    boost::system::error_code ec;
    desc_->cancel(ec);
    desc_->close(ec);  // closes fds_[0]
    ::close(fds_[1]);
}

void QueueWaker::wait() {
    desc_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [this, alive = alive_](boost::system::error_code ec) {
                          if (ec || !*alive) return;
                          char buf[256];
                          while (::read(fds_[0], buf, sizeof buf) > 0) {
                          }
                          run();
                          if (*alive) wait();
                      });
}

void QueueWaker::poke() {
    if (poked_) return;
    poked_ = true;
    boost::asio::post(loop_.io(), [this, alive = alive_] {
        if (!*alive) return;
        poked_ = false;
        run();
    });
}

void QueueWaker::run() {
    loop_.begin_turn();
    // librdkafka only signals when the queue goes from empty to non-empty: whatever a bounded
    // batch leaves behind is served by a posted continuation.
    if (serve_()) poke();
}

}  // namespace trestle::kafka
