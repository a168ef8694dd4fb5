#include "amqp_client.hpp"

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/link.h>
#include <proton/terminus.h>
#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/delivery.hpp>
#include <proton/error_condition.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender.hpp>
#include <proton/sender_options.hpp>
#include <proton/source.hpp>
#include <proton/source_options.hpp>
#include <proton/target.hpp>
#include <proton/target_options.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <proton/work_queue.hpp>

#include <future>
#include <stdexcept>

namespace trestle::test {

namespace {

// Proton C++ does not expose the rejected condition or the modified flags of a disposition;
// reach the C delivery underneath (the wrapper is one pointer; no virtual functions).
template <class T>
struct ProtonAccess : T {
    using T::pn_object;
};
pn_delivery_t* pn_of(const proton::transfer& t) {
    return static_cast<const ProtonAccess<proton::transfer>&>(t).pn_object();
}
pn_link_t* pn_link_of(const proton::link& l) {
    return static_cast<const ProtonAccess<proton::link>&>(l).pn_object();
}
pn_connection_t* pn_connection_of(const proton::connection& c) {
    return static_cast<const ProtonAccess<proton::connection>&>(c).pn_object();
}

// Proton C++ 0.37's connection::offered_capabilities() reads the C data without rewinding it
// and returns nothing; read the symbols directly.
std::vector<std::string> symbols_of(pn_data_t* d) {
    std::vector<std::string> out;
    pn_data_rewind(d);
    if (!pn_data_next(d)) return out;
    if (pn_data_type(d) == PN_SYMBOL) {
        pn_bytes_t b = pn_data_get_symbol(d);
        out.emplace_back(b.start, b.size);
    } else if (pn_data_type(d) == PN_ARRAY) {
        size_t n = pn_data_get_array(d);
        pn_data_enter(d);
        for (size_t i = 0; i < n && pn_data_next(d); ++i) {
            pn_bytes_t b = pn_data_get_symbol(d);
            out.emplace_back(b.start, b.size);
        }
        pn_data_exit(d);
    }
    return out;
}

}  // namespace

struct AmqpClient::LinkState {
    std::string name;
    bool is_sender = false;
    LinkConfig cfg;
    proton::sender sender;      // container thread only
    proton::receiver receiver;  // container thread only
    bool opened = false;
    bool closed = false;
    bool remote_null_terminus = false;
    bool drain_requested = false;
    std::string error, error_description;
    std::string remote_address;
    std::vector<Outcome> outcomes;
    std::map<proton::tracker, int> trackers;  // container thread only
    std::deque<Received> inbox;
    std::map<int, proton::delivery> deliveries;  // container thread only
    int next_rx = 0;
};

AmqpClient::AmqpClient(std::string url, Options opts)
    : url_(std::move(url)), opts_(std::move(opts)) {
    container_ = opts_.container_id.empty()
                     ? std::make_unique<proton::container>(*this)
                     : std::make_unique<proton::container>(*this, opts_.container_id);
    thread_ = std::thread([this] {
        try {
            container_->run();
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> g(mu_);
            closed_ = true;
            if (error_.empty()) error_ = std::string("container: ") + e.what();
            cv_.notify_all();
        }
    });
}

AmqpClient::~AmqpClient() {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (wq_ && !closed_) {
            wq_->add([this] {
                if (conn_) conn_.close();
            });
        }
    }
    // Give the close a moment to go out, then stop regardless.
    wait(2s, [this] { return closed_; });
    container_->stop();
    if (thread_.joinable()) thread_.join();
}

template <class P>
bool AmqpClient::wait(Duration t, P pred) {
    std::unique_lock<std::mutex> g(mu_);
    return cv_.wait_for(g, t, pred);
}

void AmqpClient::run(std::function<void()> fn) {
    if (!wait_open()) throw std::runtime_error("connection not open: " + error());
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    bool queued;
    {
        std::lock_guard<std::mutex> g(mu_);
        queued = wq_ && !closed_ && wq_->add([fn = std::move(fn), done] {
            try {
                fn();
                done->set_value();
            } catch (...) {
                done->set_exception(std::current_exception());
            }
        });
    }
    if (!queued) throw std::runtime_error("connection closed: " + error());
    if (fut.wait_for(10s) != std::future_status::ready)
        throw std::runtime_error("client thread did not respond");
    fut.get();
}

AmqpClient::LinkState& AmqpClient::state(int link) {
    std::lock_guard<std::mutex> g(mu_);
    if (link < 0 || static_cast<size_t>(link) >= links_.size())
        throw std::out_of_range("no such link");
    return *links_[static_cast<size_t>(link)];
}

// Link names may be reused after a detach: the newest link of that name is the live one.
AmqpClient::LinkState* AmqpClient::by_name(const std::string& name) {
    for (auto it = links_.rbegin(); it != links_.rend(); ++it)
        if ((*it)->name == name) return it->get();
    return nullptr;
}

// --- connection ---------------------------------------------------------------------------

void AmqpClient::on_container_start(proton::container& c) {
    proton::connection_options co;
    co.sasl_enabled(opts_.sasl);
    if (opts_.sasl) co.sasl_allowed_mechs("ANONYMOUS");
    if (opts_.idle_timeout_ms) co.idle_timeout(proton::duration(opts_.idle_timeout_ms));
    c.connect(url_, co);
}

void AmqpClient::on_connection_open(proton::connection& c) {
    std::lock_guard<std::mutex> g(mu_);
    conn_ = c;
    wq_ = &c.work_queue();
    for (auto& [k, v] : c.properties()) {
        std::string val;
        try {
            val = proton::coerce<std::string>(v);
        } catch (...) {
            val = "?";
        }
        props_[k] = val;
    }
    caps_ = symbols_of(pn_connection_remote_offered_capabilities(pn_connection_of(c)));
    max_frame_ = c.max_frame_size();
    max_sessions_ = c.max_sessions();
    idle_timeout_ = c.idle_timeout();
    open_ = true;
    cv_.notify_all();
}

void AmqpClient::on_connection_close(proton::connection& c) {
    std::lock_guard<std::mutex> g(mu_);
    if (c.error() && error_.empty()) error_ = c.error().name() + ": " + c.error().description();
    closed_ = true;
    cv_.notify_all();
}

void AmqpClient::on_connection_error(proton::connection& c) {
    std::lock_guard<std::mutex> g(mu_);
    if (error_.empty()) error_ = c.error().name() + ": " + c.error().description();
    closed_ = true;
    cv_.notify_all();
}

void AmqpClient::on_transport_error(proton::transport& t) {
    std::lock_guard<std::mutex> g(mu_);
    if (error_.empty()) error_ = t.error().name() + ": " + t.error().description();
    closed_ = true;
    cv_.notify_all();
}

void AmqpClient::on_transport_close(proton::transport&) {
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
    for (auto& l : links_) l->closed = true;
    cv_.notify_all();
}

bool AmqpClient::wait_open(Duration t) {
    wait(t, [this] { return open_ || closed_; });
    std::lock_guard<std::mutex> g(mu_);
    return open_ && !closed_;
}

bool AmqpClient::wait_closed(Duration t) {
    return wait(t, [this] { return closed_; });
}

bool AmqpClient::is_closed() {
    std::lock_guard<std::mutex> g(mu_);
    return closed_;
}

std::string AmqpClient::error() {
    std::lock_guard<std::mutex> g(mu_);
    return error_;
}

std::map<std::string, std::string> AmqpClient::remote_properties() {
    wait_open();
    std::lock_guard<std::mutex> g(mu_);
    return props_;
}
std::vector<std::string> AmqpClient::remote_offered_capabilities() {
    wait_open();
    std::lock_guard<std::mutex> g(mu_);
    return caps_;
}
uint32_t AmqpClient::remote_max_frame_size() {
    wait_open();
    std::lock_guard<std::mutex> g(mu_);
    return max_frame_;
}
uint16_t AmqpClient::remote_max_sessions() {
    wait_open();
    std::lock_guard<std::mutex> g(mu_);
    return max_sessions_;
}
uint32_t AmqpClient::remote_idle_timeout() {
    wait_open();
    std::lock_guard<std::mutex> g(mu_);
    return idle_timeout_;
}

void AmqpClient::close() {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (!wq_ || closed_) return;
    }
    run([this] { conn_.close(); });
    wait_closed();
}

// --- links --------------------------------------------------------------------------------

int AmqpClient::open_sender(const std::string& address, LinkConfig cfg) {
    int idx;
    std::string name;
    {
        std::lock_guard<std::mutex> g(mu_);
        idx = static_cast<int>(links_.size());
        name = cfg.name.empty() ? "sender-" + std::to_string(next_name_++) : cfg.name;
        auto st = std::make_unique<LinkState>();
        st->name = name;
        st->is_sender = true;
        st->cfg = cfg;
        links_.push_back(std::move(st));
    }
    run([this, idx, name, address, cfg] {
        proton::sender_options so;
        so.name(name);
        if (cfg.presettled) so.delivery_mode(proton::delivery_mode::AT_MOST_ONCE);
        proton::target_options to;
        if (!address.empty()) to.address(address);
        so.target(to);
        proton::sender s = conn_.open_sender(address, so);
        std::lock_guard<std::mutex> g(mu_);
        links_[static_cast<size_t>(idx)]->sender = s;
    });
    return idx;
}

int AmqpClient::open_receiver(const std::string& address, LinkConfig cfg) {
    int idx;
    std::string name;
    {
        std::lock_guard<std::mutex> g(mu_);
        idx = static_cast<int>(links_.size());
        name = cfg.name.empty() ? "receiver-" + std::to_string(next_name_++) : cfg.name;
        auto st = std::make_unique<LinkState>();
        st->name = name;
        st->cfg = cfg;
        links_.push_back(std::move(st));
    }
    run([this, idx, name, address, cfg] {
        proton::receiver_options ro;
        ro.name(name);
        ro.auto_accept(cfg.auto_accept);
        ro.credit_window(cfg.credit_window);
        if (cfg.presettled) ro.delivery_mode(proton::delivery_mode::AT_MOST_ONCE);
        proton::source_options so;
        if (cfg.dynamic)
            so.dynamic(true);
        else
            so.address(address);
        if (!cfg.filters.empty()) {
            proton::source::filter_map fm;
            for (const auto& [k, v] : cfg.filters) fm.put(proton::symbol(k), v);
            so.filters(fm);
        }
        ro.source(so);
        proton::receiver r = conn_.open_receiver(cfg.dynamic ? "" : address, ro);
        if (cfg.second_mode) {
            // Proton C++ has no option for the receiver settle mode; set it on the C link
            // before the attach goes out (we are on the container thread).
            pn_link_set_rcv_settle_mode(pn_link_of(r), PN_RCV_SECOND);
        }
        std::lock_guard<std::mutex> g(mu_);
        links_[static_cast<size_t>(idx)]->receiver = r;
    });
    return idx;
}

void AmqpClient::on_sender_open(proton::sender& s) {
    std::lock_guard<std::mutex> g(mu_);
    if (auto* st = by_name(s.name())) {
        st->opened = true;
        st->remote_address = s.target().address();
        st->remote_null_terminus =
            pn_terminus_get_type(pn_link_remote_target(pn_link_of(s))) == PN_UNSPECIFIED;
    }
    cv_.notify_all();
}

void AmqpClient::on_receiver_open(proton::receiver& r) {
    std::lock_guard<std::mutex> g(mu_);
    if (auto* st = by_name(r.name())) {
        st->opened = true;
        st->remote_address = r.source().address();
        st->remote_null_terminus =
            pn_terminus_get_type(pn_link_remote_source(pn_link_of(r))) == PN_UNSPECIFIED;
    }
    cv_.notify_all();
}

void AmqpClient::on_sendable(proton::sender&) {
    cv_.notify_all();
}

void AmqpClient::on_sender_drain_start(proton::sender& s) {
    bool give_back = true;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (auto* st = by_name(s.name())) {
            st->drain_requested = true;
            give_back = st->cfg.return_drained_credit;
        }
        cv_.notify_all();
    }
    if (give_back) s.return_credit();
}

void AmqpClient::on_sender_close(proton::sender& s) {
    std::lock_guard<std::mutex> g(mu_);
    if (auto* st = by_name(s.name())) {
        st->closed = true;
        if (s.error()) {
            st->error = s.error().name();
            st->error_description = s.error().description();
        }
    }
    cv_.notify_all();
}

void AmqpClient::on_receiver_close(proton::receiver& r) {
    std::lock_guard<std::mutex> g(mu_);
    if (auto* st = by_name(r.name())) {
        st->closed = true;
        if (r.error()) {
            st->error = r.error().name();
            st->error_description = r.error().description();
        }
    }
    cv_.notify_all();
}

void AmqpClient::on_sender_detach(proton::sender& s) {
    proton::sender copy = s;
    on_sender_close(copy);
}
void AmqpClient::on_receiver_detach(proton::receiver& r) {
    proton::receiver copy = r;
    on_receiver_close(copy);
}

bool AmqpClient::wait_link_open(int link, Duration t) {
    LinkState* st = &state(link);
    return wait(t, [st] { return st->opened || st->closed; }) && st->opened && !st->closed;
}

bool AmqpClient::wait_link_closed(int link, Duration t) {
    LinkState* st = &state(link);
    return wait(t, [st] { return st->closed; });
}

bool AmqpClient::link_closed(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->closed;
}

std::string AmqpClient::link_error(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->error;
}

std::string AmqpClient::link_error_description(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->error_description;
}

std::string AmqpClient::link_remote_address(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->remote_address;
}

bool AmqpClient::link_remote_terminus_null(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->remote_null_terminus;
}

int AmqpClient::credit(int link) {
    LinkState* st = &state(link);
    int c = 0;
    run([&] { c = st->is_sender ? st->sender.credit() : st->receiver.credit(); });
    return c;
}

bool AmqpClient::wait_credit(int link, int at_least, Duration t) {
    auto deadline = std::chrono::steady_clock::now() + t;
    while (true) {
        if (credit(link) >= at_least) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        // Woken by on_sendable; the short bound only covers credit that arrives silently.
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait_for(g, 50ms);
    }
}

bool AmqpClient::drain_requested(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->drain_requested;
}

int AmqpClient::send(int link, const proton::message& m) {
    LinkState* st = &state(link);
    int idx = -1;
    run([&] {
        proton::tracker t = st->sender.send(m);
        std::lock_guard<std::mutex> g(mu_);
        idx = static_cast<int>(st->outcomes.size());
        st->outcomes.emplace_back();
        if (st->cfg.presettled) st->outcomes.back().settled = true;
        st->trackers[t] = idx;
    });
    return idx;
}

size_t AmqpClient::sent(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->outcomes.size();
}

void AmqpClient::record_outcome(proton::tracker& t, bool settled) {
    std::lock_guard<std::mutex> g(mu_);
    LinkState* st = by_name(t.sender().name());
    if (!st) return;
    auto it = st->trackers.find(t);
    if (it == st->trackers.end()) return;
    Outcome& o = st->outcomes[static_cast<size_t>(it->second)];
    o.state = t.state();
    pn_delivery_t* pd = pn_of(t);
    pn_disposition_t* disp = pn_delivery_remote(pd);
    if (o.state == proton::transfer::REJECTED) {
        pn_condition_t* c = pn_disposition_condition(disp);
        if (c && pn_condition_is_set(c)) {
            o.condition = pn_condition_get_name(c) ? pn_condition_get_name(c) : "";
            o.description = pn_condition_get_description(c) ? pn_condition_get_description(c) : "";
        }
    }
    if (o.state == proton::transfer::MODIFIED) {
        o.delivery_failed = pn_disposition_is_failed(disp);
        o.undeliverable_here = pn_disposition_is_undeliverable(disp);
    }
    if (settled) {
        o.settled = true;
        st->trackers.erase(it);
    }
    cv_.notify_all();
}

void AmqpClient::on_tracker_accept(proton::tracker& t) {
    record_outcome(t, false);
}
void AmqpClient::on_tracker_reject(proton::tracker& t) {
    record_outcome(t, false);
}
void AmqpClient::on_tracker_release(proton::tracker& t) {
    record_outcome(t, false);
}
void AmqpClient::on_tracker_settle(proton::tracker& t) {
    record_outcome(t, true);
}

Outcome AmqpClient::wait_outcome(int link, int index, Duration t) {
    LinkState* st = &state(link);
    auto i = static_cast<size_t>(index);
    wait(t, [&] { return i < st->outcomes.size() && st->outcomes[i].settled; });
    std::lock_guard<std::mutex> g(mu_);
    if (i >= st->outcomes.size()) return {};
    return st->outcomes[i];
}

Outcome AmqpClient::outcome(int link, int index) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    auto i = static_cast<size_t>(index);
    return i < st->outcomes.size() ? st->outcomes[i] : Outcome{};
}

void AmqpClient::on_message(proton::delivery& d, proton::message& m) {
    std::lock_guard<std::mutex> g(mu_);
    LinkState* st = by_name(d.receiver().name());
    if (!st) return;
    Received r;
    r.id = st->next_rx++;
    r.message = m;
    r.settled = d.settled();
    st->inbox.push_back(r);
    if (!d.settled()) st->deliveries[r.id] = d;
    cv_.notify_all();
}

std::optional<Received> AmqpClient::receive(int link, Duration t) {
    LinkState* st = &state(link);
    if (!wait(t, [st] { return !st->inbox.empty(); })) return std::nullopt;
    std::lock_guard<std::mutex> g(mu_);
    Received r = st->inbox.front();
    st->inbox.pop_front();
    return r;
}

size_t AmqpClient::pending(int link) {
    LinkState* st = &state(link);
    std::lock_guard<std::mutex> g(mu_);
    return st->inbox.size();
}

namespace {
void settle_with(proton::delivery& d, uint64_t type, const std::string& cond,
                 const std::string& desc, bool failed, bool undeliverable) {
    pn_delivery_t* pd = pn_of(d);
    pn_disposition_t* disp = pn_delivery_local(pd);
    if (type == PN_REJECTED && !cond.empty()) {
        pn_condition_t* c = pn_disposition_condition(disp);
        pn_condition_set_name(c, cond.c_str());
        pn_condition_set_description(c, desc.c_str());
    }
    if (type == PN_MODIFIED) {
        pn_disposition_set_failed(disp, failed);
        pn_disposition_set_undeliverable(disp, undeliverable);
    }
    pn_delivery_update(pd, type);
    d.settle();
}
}  // namespace

void AmqpClient::accept(int link, int id) {
    LinkState* st = &state(link);
    run([=] {
        auto it = st->deliveries.find(id);
        if (it == st->deliveries.end()) return;
        settle_with(it->second, PN_ACCEPTED, "", "", false, false);
        st->deliveries.erase(it);
    });
}

void AmqpClient::release(int link, int id) {
    LinkState* st = &state(link);
    run([=] {
        auto it = st->deliveries.find(id);
        if (it == st->deliveries.end()) return;
        settle_with(it->second, PN_RELEASED, "", "", false, false);
        st->deliveries.erase(it);
    });
}

void AmqpClient::reject(int link, int id, const std::string& condition,
                        const std::string& description) {
    LinkState* st = &state(link);
    run([=] {
        auto it = st->deliveries.find(id);
        if (it == st->deliveries.end()) return;
        settle_with(it->second, PN_REJECTED, condition, description, false, false);
        st->deliveries.erase(it);
    });
}

void AmqpClient::modify(int link, int id, bool failed, bool undeliverable) {
    LinkState* st = &state(link);
    run([=] {
        auto it = st->deliveries.find(id);
        if (it == st->deliveries.end()) return;
        settle_with(it->second, PN_MODIFIED, "", "", failed, undeliverable);
        st->deliveries.erase(it);
    });
}

void AmqpClient::settle(int link, int id) {
    LinkState* st = &state(link);
    run([=] {
        auto it = st->deliveries.find(id);
        if (it == st->deliveries.end()) return;
        it->second.settle();
        st->deliveries.erase(it);
    });
}

void AmqpClient::add_credit(int link, int n) {
    LinkState* st = &state(link);
    run([=] { st->receiver.add_credit(n); });
}

void AmqpClient::drain(int link) {
    LinkState* st = &state(link);
    run([=] { st->receiver.drain(); });
}

void AmqpClient::close_link(int link, const std::string& condition, const std::string& desc) {
    LinkState* st = &state(link);
    run([=] {
        proton::link l = st->is_sender ? proton::link(st->sender) : proton::link(st->receiver);
        if (condition.empty())
            l.close();
        else
            l.close(proton::error_condition(condition, desc));
    });
}

void AmqpClient::detach_link(int link) {
    LinkState* st = &state(link);
    run([=] {
        proton::link l = st->is_sender ? proton::link(st->sender) : proton::link(st->receiver);
        l.detach();
    });
}

void AmqpClient::sync(Duration t) {
    LinkConfig cfg;
    cfg.dynamic = true;
    cfg.credit_window = 0;
    int l = open_receiver("", cfg);
    if (!wait_link_open(l, t)) throw std::runtime_error("sync: no answer from the router");
    close_link(l);
}

}  // namespace trestle::test
