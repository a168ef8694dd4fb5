// A synchronous test client over Proton C++: the container runs on its own thread, the test
// thread asks and waits (always with a deadline). Links are referred to by small integers.
#pragma once

#include <proton/container.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/transfer.hpp>
#include <proton/value.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace trestle::test {

using namespace std::chrono_literals;
using Duration = std::chrono::milliseconds;

// Proton names both the enum and the accessor `state`; this alias names the enum.
using DeliveryOutcome = enum proton::transfer::state;

struct Outcome {
    DeliveryOutcome state = proton::transfer::NONE;
    bool settled = false;
    std::string condition;    // rejected: error condition name
    std::string description;  // rejected: error description
    bool delivery_failed = false;
    bool undeliverable_here = false;
};

struct Received {
    int id = -1;
    proton::message message;
    bool settled = false;  // arrived presettled
};

struct LinkConfig {
    std::string name;          // default: generated
    bool dynamic = false;      // receiver: ask for a dynamic source
    int credit_window = 10;    // receiver: Proton's auto-replenished window; 0 = manual credit
    bool presettled = false;   // sender: send settled; receiver: ask for settled deliveries
    bool auto_accept = false;  // receiver
    bool second_mode = false;  // receiver settle mode `second`
    bool return_drained_credit = true;             // sender: answer a drain by returning its credit
    std::map<std::string, proton::value> filters;  // receiver: source filter-set (symbol keys)
};

class AmqpClient : public proton::messaging_handler {
  public:
    struct Options {
        bool sasl = true;
        uint32_t idle_timeout_ms = 0;
        std::string container_id;
    };

    explicit AmqpClient(std::string url, Options opts);
    explicit AmqpClient(std::string url) : AmqpClient(std::move(url), Options{}) {}
    ~AmqpClient() override;

    bool wait_open(Duration t = 10s);
    bool wait_closed(Duration t = 10s);
    bool is_closed();
    std::string error();  // "name: description" of the connection error, or ""

    // The router's side of the connection (valid after wait_open).
    std::map<std::string, std::string> remote_properties();
    std::vector<std::string> remote_offered_capabilities();
    uint32_t remote_max_frame_size();
    uint16_t remote_max_sessions();
    uint32_t remote_idle_timeout();

    int open_sender(const std::string& address, LinkConfig cfg = {});
    int open_receiver(const std::string& address, LinkConfig cfg = {});
    bool wait_link_open(int link, Duration t = 10s);
    bool wait_link_closed(int link, Duration t = 10s);
    bool link_closed(int link);
    std::string link_error(int link);  // condition name, or ""
    std::string link_error_description(int link);
    std::string link_remote_address(int link);  // remote source (receiver) or target (sender)
    bool link_remote_terminus_null(int link);   // the router answered without a terminus

    int credit(int link);
    bool wait_credit(int link, int at_least, Duration t = 10s);
    bool drain_requested(int link);
    int send(int link, const proton::message& m);  // index of the delivery on this link
    Outcome wait_outcome(int link, int index, Duration t = 10s);  // state NONE on timeout
    Outcome outcome(int link, int index);
    size_t sent(int link);

    std::optional<Received> receive(int link, Duration t = 10s);
    size_t pending(int link);  // received, not yet taken by receive()
    void accept(int link, int id);
    void release(int link, int id);
    void reject(int link, int id, const std::string& condition = "",
                const std::string& description = "");
    void modify(int link, int id, bool failed, bool undeliverable);
    void settle(int link, int id);  // settle without changing state (second mode)
    void add_credit(int link, int n);
    void drain(int link);

    void close_link(int link, const std::string& condition = "", const std::string& desc = "");
    void detach_link(int link);
    void close();
    // Round trip through the router: everything the router sent before is here afterwards.
    void sync(Duration t = 10s);

  private:
    struct LinkState;
    LinkState& state(int link);
    LinkState* by_name(const std::string& name);
    void run(std::function<void()> fn);  // on the container thread, and wait
    template <class P>
    bool wait(Duration t, P pred);

    void on_container_start(proton::container& c) override;
    void on_connection_open(proton::connection& c) override;
    void on_connection_close(proton::connection& c) override;
    void on_connection_error(proton::connection& c) override;
    void on_transport_error(proton::transport& t) override;
    void on_transport_close(proton::transport& t) override;
    void on_sender_open(proton::sender& s) override;
    void on_receiver_open(proton::receiver& r) override;
    void on_sendable(proton::sender& s) override;
    void on_sender_drain_start(proton::sender& s) override;
    void on_sender_close(proton::sender& s) override;
    void on_receiver_close(proton::receiver& r) override;
    void on_sender_detach(proton::sender& s) override;
    void on_receiver_detach(proton::receiver& r) override;
    void on_sender_error(proton::sender&) override {}
    void on_receiver_error(proton::receiver&) override {}
    void on_tracker_accept(proton::tracker& t) override;
    void on_tracker_reject(proton::tracker& t) override;
    void on_tracker_release(proton::tracker& t) override;
    void on_tracker_settle(proton::tracker& t) override;
    void on_message(proton::delivery& d, proton::message& m) override;
    void on_error(const proton::error_condition&) override {}
    void record_outcome(proton::tracker& t, bool settled);

    std::string url_;
    Options opts_;
    std::unique_ptr<proton::container> container_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
    bool closed_ = false;
    std::string error_;
    std::map<std::string, std::string> props_;
    std::vector<std::string> caps_;
    uint32_t max_frame_ = 0;
    uint16_t max_sessions_ = 0;
    uint32_t idle_timeout_ = 0;
    proton::work_queue* wq_ = nullptr;  // the connection's work queue (thread-safe)
    proton::connection conn_;           // container thread only
    std::vector<std::unique_ptr<LinkState>> links_;
    int next_name_ = 0;
};

}  // namespace trestle::test
