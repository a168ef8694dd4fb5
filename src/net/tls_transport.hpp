// TLS over another transport with OpenSSL memory BIOs: ciphertext flows through the inner
// transport (the epoll socket), plaintext to and from the handler, so MQTT over TLS keeps the
// epoll transport's small idle footprint (no Asio stream per connection).
#pragma once

#include <openssl/ssl.h>

#include <memory>

#include "net/transport.hpp"

namespace trestle::net {

// Server side: waits for the client's handshake. Bytes that are not a TLS handshake, a
// refused protocol version or certificate each end the connection with a log line.
std::unique_ptr<Transport> tls_server_transport(std::unique_ptr<Transport> inner, SSL_CTX* ctx);

}  // namespace trestle::net
