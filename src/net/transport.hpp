// Bytes in and out of one network connection, pushed to a handler: what a protocol adapter
// reads and writes through, whether the bytes travel over plain TCP on the shared epoll set
// (epoll_transport.hpp) or inside WebSocket frames (mqtt/websocket.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace trestle::net {

class Transport {
  public:
    class Handler {
      public:
        virtual void on_data(std::string_view data) = 0;  // valid during the call
        virtual void on_writable() = 0;                   // all written bytes have gone out
        virtual void on_closed(bool error) = 0;           // the peer closed, or the socket failed
      protected:
        ~Handler() = default;
    };
    virtual ~Transport() = default;
    virtual void start(Handler& h) = 0;
    virtual void set_reading(bool on) = 0;  // off = backpressure: the peer's TCP window fills
    // Sends what the socket takes now and keeps the rest; on_writable() when it has all gone.
    virtual void write(std::string_view data) = 0;
    virtual size_t buffered() const = 0;  // accepted by write() but not yet sent
    virtual void close() = 0;
    virtual std::string remote() const = 0;
    virtual bool websocket() const { return false; }
    virtual bool encrypted() const { return false; }
    struct TlsParameters {
        std::string protocol, cipher;
        int bits = 0;
    };
    virtual TlsParameters tls_parameters() const { return {}; }
    // TLS: the peer certificate's user id in an sslProfile uidFormat (empty format: its common
    // name); empty without a verified certificate.
    virtual std::string peer_identity(const std::string& /*uid_format*/) const { return {}; }
};

}  // namespace trestle::net
