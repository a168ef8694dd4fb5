// Plain TCP on the loop's shared epoll set: no read buffer of its own (reads go through one
// 64 KiB buffer per loop), no Asio state per socket, nothing allocated while idle; writes go
// straight to send() and only what the socket refuses is kept. Why an epoll set beside Asio:
// docs/architecture.md, "Departures".
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <memory>

#include "net/event_loop.hpp"
#include "net/transport.hpp"

namespace trestle::net {

// Takes ownership of the socket.
std::unique_ptr<Transport> epoll_transport(Poller& poller, boost::asio::ip::tcp::socket s);

}  // namespace trestle::net
