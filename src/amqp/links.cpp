// AMQP links: attach (terminus to core attach request, link routing), detach and session end,
// and the links the core opens at a route container.
#include "amqp/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "amqp/link.hpp"

namespace trestle::amqp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

void AmqpConnection::on_link_remote_open(pn_link_t* l) {
    if (!core_) return;
    auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
    if (al) {
        // The remote container answered an attach the core initiated (link routing).
        if (!al->core) return;
        core::Terminus src = from_pn(pn_link_remote_source(l));
        core::Terminus tgt = from_pn(pn_link_remote_target(l));
        // An attach answered without the terminus we asked for is a refusal; its detach
        // (with the reason) follows and is relayed then.
        bool refused = pn_link_is_sender(l) ? !tgt.present : !src.present;
        if (!refused) router_.peer_attached(al->core, src, tgt);
        return;
    }

    al = new AmqpLink(*this, l);
    links_.insert(al);
    if (settings_.max_message_size && pn_link_is_receiver(l))
        pn_link_set_max_message_size(l, settings_.max_message_size);
    pn_terminus_t* rtarget = pn_link_remote_target(l);
    if (pn_terminus_get_type(rtarget) == PN_COORDINATOR) {
        pn_link_open(l);
        set_condition(pn_link_condition(l),
                      {core::condition::not_implemented, "Transactions are not supported"});
        pn_link_close(l);
        return;
    }
    if (pn_link_is_receiver(l)) {
        const char* ta = pn_terminus_get_address(rtarget);
        if (ta && std::string_view(ta) == "$lwt") {
            // The will's topic is checked when the will arrives (transfers.cpp).
            al->lwt = true;
            pn_terminus_copy(pn_link_target(l), rtarget);
            pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
            pn_link_open(l);
            pn_link_flow(l, 1);
            logger().debug("[C{}] will link '{}' attached", log_id_, pn_link_name(l));
            return;
        }
    }
    core::AttachRequest req;
    req.direction = pn_link_is_receiver(l) ? core::Direction::incoming : core::Direction::outgoing;
    req.name = pn_link_name(l);
    req.source = from_pn(pn_link_remote_source(l));
    req.target = from_pn(rtarget);
    req.snd_settle_mode = static_cast<core::SenderSettleMode>(pn_link_remote_snd_settle_mode(l));
    req.rcv_settle_mode = static_cast<core::ReceiverSettleMode>(pn_link_remote_rcv_settle_mode(l));
    pn_link_set_snd_settle_mode(l, pn_link_remote_snd_settle_mode(l));
    pn_link_set_rcv_settle_mode(l, pn_link_remote_rcv_settle_mode(l));
    if (policy_ && !policy_allows(*al, req)) return;
    if (!settings_.kafka_dialect.empty()) {
        // Direct Kafka access: link routed to the Kafka adapter (an anonymous sender too: each
        // message's `to` names its topic there).
        core::Terminus& t = req.direction == core::Direction::incoming ? req.target : req.source;
        t.address = dialect_prefix(settings_.kafka_dialect) + t.address;
        t.has_address = true;
        t.dynamic = false;
    }

    core::Link* link = nullptr;
    core::AttachResult res = router_.attach(*core_, req, *al, &link);
    al->core = link;
    switch (res.kind) {
        case core::AttachResult::Kind::open:
            al->anonymous = req.direction == core::Direction::incoming && link &&
                            !link->address() && !link->link_routed();
            pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
            pn_terminus_copy(pn_link_target(l), pn_link_remote_target(l));
            if (!res.dynamic_address.empty())
                pn_terminus_set_address(pn_link_source(l), res.dynamic_address.c_str());
            pn_link_open(l);
            logger().debug(
                "[C{}] link '{}' attached ({} '{}')", log_id_, req.name,
                req.direction == core::Direction::incoming ? "to" : "from",
                res.dynamic_address.empty() ? req.routed_terminus().address : res.dynamic_address);
            break;
        case core::AttachResult::Kind::pending:
            break;  // answered when the route container attaches
        case core::AttachResult::Kind::refused:
            logger().info("[C{}] link '{}' to '{}' refused: {}", log_id_, req.name,
                          req.routed_terminus().address, describe(res.error));
            pn_link_open(l);
            set_condition(pn_link_condition(l), res.error);
            pn_link_close(l);
            break;
    }
}

bool AmqpConnection::policy_allows(AmqpLink& al, const core::AttachRequest& req) {
    core::PolicyTicket& t = *policy_;
    bool sender = req.direction == core::Direction::incoming;  // the client sends
    const core::Terminus& term = req.routed_terminus();
    std::string why;
    if (sender) {
        if (t.senders >= t.max_senders())
            why = "sender limit of the policy reached (maxSenders " +
                  std::to_string(t.max_senders()) + ")";
        else if (!term.has_address && !t.allow_anonymous_sender())
            why = "anonymous senders are not allowed";
        else if (term.has_address && !t.allow_target(term.address))
            why = "target '" + term.address + "' is not allowed";
    } else {
        if (t.receivers >= t.max_receivers())
            why = "receiver limit of the policy reached (maxReceivers " +
                  std::to_string(t.max_receivers()) + ")";
        else if (term.dynamic && !t.allow_dynamic_source())
            why = "dynamic sources are not allowed";
        else if (!term.dynamic && !t.allow_source(term.address))
            why = "source '" + term.address + "' is not allowed";
    }
    if (why.empty()) {
        (sender ? t.senders : t.receivers)++;
        al.policy_counted = sender ? 1 : 2;
        return true;
    }
    core::ErrorCondition err =
        t.deny(sender ? core::Denial::sender : core::Denial::receiver,
               why + " for user '" + t.user() + "' (vhost '" + t.vhost() + "')");
    logs::get(logs::Module::SECURITY)
        .warn("[C{}] link '{}' refused by policy: {}", log_id_, req.name, err.description);
    pn_link_open(al.pn);
    set_condition(pn_link_condition(al.pn), err);
    pn_link_close(al.pn);
    return false;
}

void AmqpConnection::policy_forget(AmqpLink& al) {
    if (!policy_ || !al.policy_counted) return;
    (al.policy_counted == 1 ? policy_->senders : policy_->receivers)--;
    al.policy_counted = 0;
}

void AmqpConnection::detach_core_link(AmqpLink& al, const core::ErrorCondition* err) {
    if (!al.core) return;
    core::Link* cl = al.core;
    al.core = nullptr;
    router_.detach(cl, err);
}

void AmqpConnection::on_link_remote_close(pn_link_t* l) {
    for (AmqpLink* waiting : links_) {
        if (waiting->attach_after != l) continue;
        waiting->attach_after = nullptr;
        if (waiting->core) pn_link_open(waiting->pn);
    }
    auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
    if (al && al->lwt) {
        // detach-forced = the client went away brutally: publish; any other end discards it.
        core::ErrorCondition err = condition_of(pn_link_remote_condition(l));
        end_will(*al, err.name == core::condition::detach_forced,
                 "link detached with " + (err.empty() ? "no error" : err.name));
    }
    if (al && al->core) {
        core::ErrorCondition err = condition_of(pn_link_remote_condition(l));
        detach_core_link(*al, err.empty() ? nullptr : &err);
    }
    if (!(pn_link_state(l) & PN_LOCAL_CLOSED)) {
        if (pn_link_state(l) & PN_LOCAL_UNINIT) pn_link_open(l);
        pn_link_close(l);
    }
    pn_link_free(l);  // the engine releases it once the detach is written
}

void AmqpConnection::on_session_remote_close(pn_session_t* s) {
    // Ending a session ends its links without a detach for each.
    for (pn_link_t* l = pn_link_head(driver_.connection, 0); l; l = pn_link_next(l, 0)) {
        if (pn_link_session(l) != s) continue;
        auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
        if (al) detach_core_link(*al, nullptr);
    }
    if (s == routed_session_) routed_session_ = nullptr;
    if (policy_ && policy_sessions_.erase(s)) policy_->sessions--;
    if (!(pn_session_state(s) & PN_LOCAL_CLOSED)) pn_session_close(s);
    pn_session_free(s);
}

// ---------------------------------------------------------------------------------------------
// Link routing: the core asks this connection (to a route container) for a link.

core::LinkPort* AmqpConnection::open_link(core::Link& link, const core::AttachRequest& req,
                                          core::ErrorCondition&) {
    if (finished_ || !core_) return nullptr;
    if (!routed_session_) {
        routed_session_ = pn_session(driver_.connection);
        pn_session_open(routed_session_);
    }
    pn_link_t* l = req.direction == core::Direction::incoming
                       ? pn_receiver(routed_session_, req.name.c_str())
                       : pn_sender(routed_session_, req.name.c_str());
    to_pn(req.source, pn_link_source(l), PN_SOURCE);
    to_pn(req.target, pn_link_target(l), PN_TARGET);
    pn_link_set_snd_settle_mode(l, static_cast<pn_snd_settle_mode_t>(req.snd_settle_mode));
    pn_link_set_rcv_settle_mode(l, static_cast<pn_rcv_settle_mode_t>(req.rcv_settle_mode));
    auto* al = new AmqpLink(*this, l);
    al->core = &link;
    links_.insert(al);
    // A link name is free again only when both detaches were exchanged: a client that
    // detaches and re-attaches the same name at once must not reach the container before its
    // echo did ("link name already attached").
    for (pn_link_t* o = pn_link_head(driver_.connection, 0); o; o = pn_link_next(o, 0)) {
        if (o == l || pn_link_is_sender(o) != pn_link_is_sender(l)) continue;
        if (req.name != pn_link_name(o)) continue;
        pn_state_t st = pn_link_state(o);
        if ((st & PN_LOCAL_CLOSED) && !(st & PN_REMOTE_CLOSED)) {
            al->attach_after = o;
            break;
        }
    }
    if (!al->attach_after) pn_link_open(l);
    wake();
    return al;
}

}  // namespace trestle::amqp
