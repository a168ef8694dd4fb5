// MQTT test clients: Paho C++ (the client library nobody here wrote) for normal flows, and a
// raw socket client for what no library sends (protocol violations, withheld acks, DUP checks).
#pragma once

#include <mqtt/async_client.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "mqtt/codec.hpp"
#include "raw_socket.hpp"

namespace trestle::test {

using namespace std::chrono_literals;

// A Paho async_client that queues what it receives; version 4 (3.1.1) or 5.
class Paho {
  public:
    Paho(int port, std::string client_id, int version = MQTTVERSION_5);
    ~Paho();
    ::mqtt::async_client& client() { return *cli_; }
    // Connects; returns the CONNACK (session present, properties) or throws.
    ::mqtt::connect_response connect(::mqtt::connect_options opts);
    ::mqtt::connect_response connect(bool clean = true, int keep_alive = 60,
                                     uint32_t session_expiry = 0);
    void subscribe(const std::string& filter, int qos,
                   ::mqtt::subscribe_options so = ::mqtt::subscribe_options(),
                   const ::mqtt::properties& props = {});
    // Publishes and waits for the acknowledgement; returns the v5 reason code.
    int publish(const std::string& topic, const std::string& payload, int qos, bool retain = false,
                const ::mqtt::properties& props = {});
    ::mqtt::const_message_ptr receive(std::chrono::milliseconds timeout = 5s);
    void disconnect(int reason = 0);
    bool connected() { return cli_->is_connected(); }
    // The reason code of a server DISCONNECT (v5), -1 if none seen.
    int disconnect_reason() const { return disconnect_reason_.load(); }
    bool wait_lost(std::chrono::milliseconds timeout = 5s);

  private:
    int version_;
    std::unique_ptr<::mqtt::async_client> cli_;
    std::atomic<int> disconnect_reason_{-1};
    std::atomic<bool> lost_{false};
};

// A bare MQTT client on a socket, encoding and decoding with Trestle's codec.
class RawMqtt {
  public:
    RawMqtt(int port, uint8_t level) : sock_(port), level_(level) {}
    void send(const mqtt::Packet& p);
    void send_bytes(const std::string& b) { sock_.write(b); }
    // The next packet, or nullopt on timeout/close.
    std::optional<mqtt::Packet> receive(std::chrono::milliseconds timeout = 5s);
    // Raw bytes of the next packet (to check flags such as DUP).
    std::optional<std::string> receive_raw(std::chrono::milliseconds timeout = 5s);
    bool wait_closed(std::chrono::milliseconds timeout = 5s);
    bool closed() const { return closed_; }
    mqtt::Connack connect(const std::string& client_id, bool clean = true, uint16_t keep_alive = 0,
                          mqtt::Properties props = {}, std::optional<mqtt::Will> will = {});
    void subscribe(uint16_t id, const std::string& filter, uint8_t qos);
    void publish(const std::string& topic, const std::string& payload, uint8_t qos, uint16_t id = 0,
                 bool retain = false, mqtt::Properties props = {});
    void ack(mqtt::PacketType type, uint16_t id, uint8_t code = 0);
    uint8_t level() const { return level_; }

  private:
    RawSocket sock_;
    uint8_t level_;
    std::string buf_;
    bool closed_ = false;
};

}  // namespace trestle::test
