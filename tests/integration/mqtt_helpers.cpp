#include "mqtt_helpers.hpp"

#include <poll.h>

namespace trestle::test {

// --- Paho -------------------------------------------------------------------------------------

Paho::Paho(int port, std::string client_id, int version) : version_(version) {
    std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
    cli_ = std::make_unique<::mqtt::async_client>(uri, client_id, ::mqtt::create_options(version),
                                                  nullptr);
    cli_->set_disconnected_handler([this](const ::mqtt::properties&, ::mqtt::ReasonCode rc) {
        disconnect_reason_ = static_cast<int>(rc);
        lost_ = true;
    });
    cli_->set_connection_lost_handler([this](const std::string&) { lost_ = true; });
    cli_->start_consuming();
}

Paho::~Paho() {
    try {
        if (cli_->is_connected()) cli_->disconnect()->wait_for(2s);
    } catch (...) {
    }
}

::mqtt::connect_response Paho::connect(::mqtt::connect_options opts) {
    opts.set_mqtt_version(version_);
    auto tok = cli_->connect(opts);
    tok->wait_for(10s);
    return tok->get_connect_response();
}

::mqtt::connect_response Paho::connect(bool clean, int keep_alive, uint32_t session_expiry) {
    ::mqtt::connect_options opts;
    opts.set_keep_alive_interval(keep_alive);
    if (version_ == MQTTVERSION_5) {
        opts.set_clean_start(clean);
        if (session_expiry)
            opts.set_properties({{::mqtt::property::SESSION_EXPIRY_INTERVAL, int(session_expiry)}});
    } else {
        opts.set_clean_session(clean);
    }
    return connect(opts);
}

void Paho::subscribe(const std::string& filter, int qos, ::mqtt::subscribe_options so,
                     const ::mqtt::properties& props) {
    cli_->subscribe(filter, qos, so, props)->wait_for(10s);
}

int Paho::publish(const std::string& topic, const std::string& payload, int qos, bool retain,
                  const ::mqtt::properties& props) {
    auto msg = ::mqtt::make_message(topic, payload, qos, retain);
    msg->set_properties(props);
    auto tok = cli_->publish(msg);
    tok->wait_for(10s);
    return static_cast<int>(tok->get_reason_code());
}

::mqtt::const_message_ptr Paho::receive(std::chrono::milliseconds timeout) {
    ::mqtt::const_message_ptr m;
    if (!cli_->try_consume_message_for(&m, timeout)) return nullptr;
    return m;
}

void Paho::disconnect(int reason) {
    ::mqtt::disconnect_options opts;
    if (version_ == MQTTVERSION_5) opts.set_reason_code(static_cast<::mqtt::ReasonCode>(reason));
    cli_->disconnect(opts)->wait_for(5s);
}

bool Paho::wait_lost(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!lost_ && std::chrono::steady_clock::now() < deadline) {
        // Paho reports loss on its own thread; poll the flag with a short bound.
        ::mqtt::const_message_ptr m;
        cli_->try_consume_message_for(&m, 20ms);
    }
    return lost_;
}

// --- RawMqtt ----------------------------------------------------------------------------------

void RawMqtt::send(const mqtt::Packet& p) {
    std::string b;
    mqtt::encode(p, p.type == mqtt::PacketType::connect ? p.connect.level : level_, b);
    sock_.write(b);
}

std::optional<std::string> RawMqtt::receive_raw(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        mqtt::FrameInfo f = mqtt::frame(buf_, 0);
        if (f.status == mqtt::FrameInfo::Status::complete) {
            std::string pkt = buf_.substr(0, f.total_size);
            buf_.erase(0, f.total_size);
            return pkt;
        }
        if (closed_) return std::nullopt;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        bool closed = false;
        std::string more = sock_.read_some(left, &closed);
        buf_ += more;
        if (closed) closed_ = true;
    }
}

std::optional<mqtt::Packet> RawMqtt::receive(std::chrono::milliseconds timeout) {
    auto raw = receive_raw(timeout);
    if (!raw) return std::nullopt;
    mqtt::DecodeError err;
    return mqtt::decode(*raw, level_, err);
}

bool RawMqtt::wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        bool closed = false;
        buf_ += sock_.read_some(left, &closed);
        if (closed) closed_ = true;
    }
    return true;
}

mqtt::Connack RawMqtt::connect(const std::string& client_id, bool clean, uint16_t keep_alive,
                               mqtt::Properties props, std::optional<mqtt::Will> will) {
    mqtt::Packet p;
    p.type = mqtt::PacketType::connect;
    p.connect.level = level_;
    p.connect.client_id = client_id;
    p.connect.clean_start = clean;
    p.connect.keep_alive = keep_alive;
    p.connect.properties = std::move(props);
    p.connect.will = std::move(will);
    send(p);
    auto r = receive();
    if (!r || r->type != mqtt::PacketType::connack) return mqtt::Connack{false, 0xff, {}};
    return r->connack;
}

void RawMqtt::subscribe(uint16_t id, const std::string& filter, uint8_t qos) {
    mqtt::Packet p;
    p.type = mqtt::PacketType::subscribe;
    p.subscribe.packet_id = id;
    p.subscribe.subscriptions.push_back({filter, qos, false, false, 0});
    send(p);
}

void RawMqtt::publish(const std::string& topic, const std::string& payload, uint8_t qos,
                      uint16_t id, bool retain, mqtt::Properties props) {
    mqtt::Packet p;
    p.type = mqtt::PacketType::publish;
    p.publish.topic = topic;
    p.publish.payload = payload;
    p.publish.qos = qos;
    p.publish.packet_id = id;
    p.publish.retain = retain;
    p.publish.properties = std::move(props);
    send(p);
}

void RawMqtt::ack(mqtt::PacketType type, uint16_t id, uint8_t code) {
    mqtt::Packet p;
    p.type = type;
    p.ack.type = type;
    p.ack.packet_id = id;
    p.ack.code = code;
    send(p);
}

}  // namespace trestle::test
