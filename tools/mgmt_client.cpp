#include "mgmt_client.hpp"

#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/scalar.hpp>
#include <proton/sender.hpp>
#include <proton/source.hpp>
#include <proton/source_options.hpp>
#include <proton/ssl.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <proton/timestamp.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <proton/types.hpp>
#include <proton/uuid.hpp>
#include <proton/value.hpp>
#include <proton/work_queue.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace trestle::tools {

namespace {

json::Value to_json(const proton::value& v) {
    using proton::type_id;
    switch (v.type()) {
        case proton::NULL_TYPE:
            return nullptr;
        case proton::BOOLEAN:
            return proton::get<bool>(v);
        case proton::UBYTE:
        case proton::USHORT:
        case proton::UINT:
        case proton::ULONG:
        case proton::BYTE:
        case proton::SHORT:
        case proton::INT:
        case proton::LONG:
            return json::Value(proton::coerce<int64_t>(v));
        case proton::FLOAT:
        case proton::DOUBLE:
            return proton::coerce<double>(v);
        case proton::TIMESTAMP:
            return json::Value(proton::get<proton::timestamp>(v).milliseconds());
        case proton::STRING:
            return proton::get<std::string>(v);
        case proton::SYMBOL:
            return std::string(proton::get<proton::symbol>(v));
        case proton::BINARY: {
            proton::binary b = proton::get<proton::binary>(v);
            return std::string(b.begin(), b.end());
        }
        case proton::UUID:
            return proton::get<proton::uuid>(v).str();
        case proton::LIST:
        case proton::ARRAY: {
            std::vector<proton::value> items;
            proton::get(v, items);
            json::Array a;
            for (const auto& i : items) a.push_back(to_json(i));
            return a;
        }
        case proton::MAP: {
            std::vector<std::pair<proton::value, proton::value>> entries;
            proton::get(v, entries);
            json::Object o;
            for (const auto& [k, val] : entries) {
                json::Value kj = to_json(k);
                o.emplace_back(kj.is_string() ? kj.as_string() : json::dump(kj), to_json(val));
            }
            return o;
        }
        default:
            return proton::to_string(v);
    }
}

proton::value to_proton(const json::Value& v) {
    if (v.is_null()) return proton::value();
    if (v.is_bool()) return v.as_bool();
    if (v.is_int()) return v.as_int();
    if (v.is_double()) return v.as_double();
    if (v.is_string()) return v.as_string();
    if (v.is_array()) {
        std::vector<proton::value> items;
        for (const auto& i : v.as_array()) items.push_back(to_proton(i));
        return items;  // a list (mixed types), as Python clients send
    }
    std::vector<std::pair<std::string, proton::value>> entries;
    for (const auto& [k, val] : v.as_object()) entries.emplace_back(k, to_proton(val));
    return entries;
}

// Application properties are scalars.
proton::scalar to_scalar(const json::Value& v) {
    if (v.is_bool()) return proton::scalar(v.as_bool());
    if (v.is_int()) return proton::scalar(v.as_int());
    if (v.is_double()) return proton::scalar(v.as_double());
    if (v.is_string()) return proton::scalar(v.as_string());
    return proton::scalar();
}

class Client : public proton::messaging_handler {
  public:
    Client(const MgmtOptions& o, const std::vector<MgmtRequest>& reqs) : o_(o), reqs_(reqs) {}

    std::vector<MgmtResponse> responses;
    std::string error;

    void on_container_start(proton::container& c) override {
        container_ = &c;
        proton::connection_options co;
        if (o_.sasl_mechanisms.empty() && o_.user.empty()) {
            co.sasl_enabled(false);
        } else {
            // A user name alone means PLAIN, as qdstat does (Proton's client side has no SCRAM
            // without Cyrus); over plaintext too, as qdstat's Python Proton allows.
            co.sasl_enabled(true).sasl_allowed_mechs(
                o_.sasl_mechanisms.empty() ? std::string("PLAIN") : o_.sasl_mechanisms);
            co.sasl_allow_insecure_mechs(true);
            if (!o_.user.empty()) co.user(o_.user);
            if (!o_.password.empty()) co.password(o_.password);
        }
        if (o_.tls) {
            auto verify =
                o_.ssl_verify_peer_name ? proton::ssl::VERIFY_PEER_NAME : proton::ssl::VERIFY_PEER;
            if (!o_.ssl_certificate.empty())
                co.ssl_client_options(proton::ssl_client_options(
                    proton::ssl_certificate(o_.ssl_certificate, o_.ssl_key, o_.ssl_password),
                    o_.ssl_trustfile, verify));
            else if (!o_.ssl_trustfile.empty())
                co.ssl_client_options(proton::ssl_client_options(o_.ssl_trustfile, verify));
            else
                co.ssl_client_options(proton::ssl_client_options(verify));
        }
        co.idle_timeout(proton::duration::FOREVER);
        std::string url = (o_.tls ? "amqps://" : "amqp://") + o_.url;
        conn_ = c.connect(url, co);
    }
    void on_connection_open(proton::connection& c) override {
        receiver_ = c.open_receiver("", proton::receiver_options()
                                            .source(proton::source_options().dynamic(true))
                                            .credit_window(1));
        sender_ = c.open_sender("$management");
    }
    void on_receiver_open(proton::receiver& r) override {
        reply_to_ = r.source().address();
        send_next();
    }
    void on_sendable(proton::sender&) override { send_next(); }
    void on_message(proton::delivery&, proton::message& m) override {
        MgmtResponse resp;
        auto props = m.properties();
        if (props.exists("statusCode"))
            resp.status = static_cast<int>(proton::coerce<int64_t>(props.get("statusCode")));
        if (props.exists("statusDescription"))
            resp.description = proton::coerce<std::string>(props.get("statusDescription"));
        resp.body = to_json(m.body());
        responses.push_back(std::move(resp));
        if (responses.size() == reqs_.size()) {
            conn_.close();
            return;
        }
        in_flight_ = false;
        send_next();
    }
    // Done (or failed): stop now rather than when the timeout task fires.
    void on_transport_error(proton::transport& t) override {
        if (error.empty() && responses.size() < reqs_.size())
            error = "Connection to " + o_.url + " failed: " + t.error().what();
    }
    void on_connection_error(proton::connection& c) override {
        if (error.empty()) error = "Connection closed by " + o_.url + ": " + c.error().what();
    }
    // A link the router refused (a policy that denies $management, say): say why and stop.
    void on_sender_error(proton::sender& l) override {
        if (error.empty()) error = "The router refused $management: " + l.error().what();
        conn_.close();
    }
    void on_receiver_error(proton::receiver& l) override {
        if (error.empty()) error = "The router refused a reply address: " + l.error().what();
        conn_.close();
    }
    void on_error(const proton::error_condition& e) override {
        if (error.empty()) error = e.what();
    }
    void on_tracker_reject(proton::tracker&) override {
        if (error.empty()) error = "The router rejected a management request";
        conn_.close();
    }

  private:
    void send_next() {
        if (reply_to_.empty() || in_flight_ || next_ >= reqs_.size() || !sender_ ||
            sender_.credit() <= 0)
            return;
        const MgmtRequest& r = reqs_[next_];
        proton::message m;
        m.reply_to(reply_to_);
        m.correlation_id(std::to_string(++next_));
        for (const auto& [k, v] : r.properties) m.properties().put(k, to_scalar(v));
        m.body(to_proton(r.body));
        sender_.send(m);
        in_flight_ = true;
    }

    const MgmtOptions& o_;
    const std::vector<MgmtRequest>& reqs_;
    proton::container* container_ = nullptr;
    proton::connection conn_;
    proton::sender sender_;
    proton::receiver receiver_;
    std::string reply_to_;
    size_t next_ = 0;
    bool in_flight_ = false;
};

}  // namespace

std::vector<MgmtResponse> management_call(const MgmtOptions& o,
                                          const std::vector<MgmtRequest>& reqs) {
    Client client(o, reqs);
    proton::container c(client);
    c.auto_stop(true);
    // The timeout is a watchdog thread: a task scheduled on the container would keep run()
    // busy until it fires, even after the answer arrived.
    std::mutex m;
    std::condition_variable cv;
    bool finished = false, timed_out = false;
    std::thread watchdog([&] {
        std::unique_lock<std::mutex> lock(m);
        if (!cv.wait_for(lock, std::chrono::duration<double>(o.timeout_s),
                         [&] { return finished; })) {
            timed_out = true;
            c.stop();
        }
    });
    try {
        c.run();
    } catch (const std::exception& e) {
        if (client.error.empty()) client.error = e.what();
    }
    {
        std::lock_guard<std::mutex> lock(m);
        finished = true;
    }
    cv.notify_one();
    watchdog.join();
    if (timed_out && client.responses.size() < reqs.size())
        throw std::runtime_error("Timeout: no response from " + o.url + " within " +
                                 std::to_string(static_cast<int>(o.timeout_s)) + " s");
    if (!client.error.empty()) throw std::runtime_error(client.error);
    if (client.responses.size() < reqs.size())
        throw std::runtime_error("Connection closed before all responses arrived");
    return client.responses;
}

MgmtResponse management_query(const MgmtOptions& o, const std::string& type,
                              const std::vector<std::string>& attributes, int64_t limit) {
    json::Array names;
    for (const auto& a : attributes) names.emplace_back(a);
    MgmtResponse all;
    all.status = 200;
    json::Array rows;
    json::Value attribute_names = names;
    int64_t offset = 0;
    const int64_t page = limit > 0 && limit < 500 ? limit : 500;
    for (;;) {
        MgmtRequest r;
        r.properties = {
            {"operation", "QUERY"}, {"entityType", type}, {"type", "org.amqp.management"},
            {"name", "self"},       {"offset", offset},   {"count", page}};
        r.body = json::Object{{"attributeNames", names}};
        MgmtResponse resp = management_call(o, {r}).front();
        if (resp.status != 200) return resp;
        const json::Value* res = resp.body.is_object() ? resp.body.find("results") : nullptr;
        if (const json::Value* an =
                resp.body.is_object() ? resp.body.find("attributeNames") : nullptr)
            attribute_names = *an;
        size_t got = res && res->is_array() ? res->as_array().size() : 0;
        for (size_t i = 0; i < got; ++i) rows.push_back(res->as_array()[i]);
        offset += static_cast<int64_t>(got);
        if (static_cast<int64_t>(got) < page || (limit > 0 && offset >= limit)) break;
    }
    all.body = json::Object{{"attributeNames", attribute_names}, {"results", rows}};
    return all;
}

namespace {

// A password from the first line of a file (kept off the command line and out of ps).
std::string read_secret(const std::string& path) {
    std::ifstream f(path);
    std::string line;
    if (!f || !std::getline(f, line)) {
        std::fprintf(stderr, "cannot read the password file '%s'\n", path.c_str());
        std::exit(2);  // a usage error, as for any bad option
    }
    return line;
}

}  // namespace

const char* const connection_options_usage =
    "  -b, --bus URL         router to connect to, host:port or amqp(s)://host:port\n"
    "                        (default 127.0.0.1:5672)\n"
    "  -t, --timeout SECS    give up after SECS (default 5)\n"
    "      --ssl             connect with TLS (implied by any --ssl-* option)\n"
    "      --ssl-trustfile FILE        CA certificates (PEM) to trust the router with\n"
    "      --ssl-certificate FILE      client certificate (PEM)\n"
    "      --ssl-key FILE              its private key (PEM)\n"
    "      --ssl-password PASS, --ssl-password-file FILE   the key's password\n"
    "      --ssl-disable-peer-name-verify   trust the certificate whatever its host name\n"
    "      --sasl-mechanisms MECHS     SASL mechanisms (default: none; PLAIN with a user name)\n"
    "      --sasl-username USER, --sasl-password PASS, --sasl-password-file FILE\n";

bool connection_option(const std::string& arg, const std::string& key,
                       const std::function<std::string()>& value, MgmtOptions& o) {
    if (arg == "--ssl")
        o.tls = true;
    else if (arg == "--ssl-disable-peer-name-verify")
        o.ssl_verify_peer_name = false;
    else if (key == "-b" || key == "--bus" || key == "-r")
        o.url = value();
    else if (key == "-t" || key == "--timeout")
        o.timeout_s = std::atof(value().c_str());
    else if (key == "--ssl-trustfile")
        o.ssl_trustfile = value();
    else if (key == "--ssl-certificate")
        o.ssl_certificate = value();
    else if (key == "--ssl-key")
        o.ssl_key = value();
    else if (key == "--ssl-password")
        o.ssl_password = value();
    else if (key == "--ssl-password-file")
        o.ssl_password = read_secret(value());
    else if (key == "--sasl-mechanisms")
        o.sasl_mechanisms = value();
    else if (key == "--sasl-username")
        o.user = value();
    else if (key == "--sasl-password")
        o.password = value();
    else if (key == "--sasl-password-file")
        o.password = read_secret(value());
    else
        return false;
    return true;
}

void finish_connection_options(MgmtOptions& o) {
    if (o.url.rfind("amqp://", 0) == 0) o.url = o.url.substr(7);
    if (o.url.rfind("amqps://", 0) == 0) {
        o.url = o.url.substr(8);
        o.tls = true;
    }
    if (!o.ssl_trustfile.empty() || !o.ssl_certificate.empty() || !o.ssl_verify_peer_name)
        o.tls = true;
}

}  // namespace trestle::tools
