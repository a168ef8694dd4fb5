#include "amqp/sasl.hpp"

#include <proton/sasl.h>
#include <proton/sasl_plugin.h>

#include <sstream>

#include "security/log.hpp"
#include "security/tls.hpp"

namespace trestle::amqp {

using security::logger;

namespace {

SaslSession* session(pn_transport_t* t) {
    return static_cast<SaslSession*>(pnx_sasl_get_context(t));
}

bool contains(std::string_view list, std::string_view word) {
    std::istringstream in{std::string(list)};
    std::string w;
    while (in >> w)
        if (w == word) return true;
    return false;
}

std::string_view bytes(const pn_bytes_t* b) {
    return b && b->start ? std::string_view(b->start, b->size) : std::string_view();
}

// The plugin's C entry points, forwarding to the transport's SaslSession.
void sasl_free(pn_transport_t*) {}  // the connection owns its SaslSession
const char* sasl_list(pn_transport_t* t) {
    return session(t)->offered().c_str();
}
bool sasl_init_server(pn_transport_t* t) {
    pnx_sasl_set_desired_state(t, SASL_POSTED_MECHANISMS);
    return true;
}
bool sasl_init_client(pn_transport_t*) {
    return true;
}
void sasl_prepare(pn_transport_t*) {}
void sasl_process_init(pn_transport_t* t, const char* mech, const pn_bytes_t* recv) {
    session(t)->process_init(mech, recv);
}
void sasl_process_response(pn_transport_t* t, const pn_bytes_t* recv) {
    session(t)->process_response(recv);
}
bool sasl_process_mechanisms(pn_transport_t* t, const char* mechs) {
    return session(t)->process_mechanisms(mechs);
}
void sasl_process_challenge(pn_transport_t* t, const pn_bytes_t* recv) {
    session(t)->process_challenge(recv);
}
void sasl_process_outcome(pn_transport_t* t, const pn_bytes_t* recv) {
    session(t)->process_outcome(recv);
}
bool sasl_can_encrypt(pn_transport_t*) {
    return false;
}
ssize_t sasl_max_encrypt_size(pn_transport_t*) {
    return 0;
}
ssize_t sasl_encode(pn_transport_t*, pn_bytes_t, pn_bytes_t*) {
    return 0;
}
ssize_t sasl_decode(pn_transport_t*, pn_bytes_t, pn_bytes_t*) {
    return 0;
}

const pnx_sasl_implementation implementation = {sasl_free,
                                                sasl_list,
                                                sasl_init_server,
                                                sasl_init_client,
                                                sasl_prepare,
                                                sasl_process_init,
                                                sasl_process_response,
                                                sasl_process_mechanisms,
                                                sasl_process_challenge,
                                                sasl_process_outcome,
                                                sasl_can_encrypt,
                                                sasl_max_encrypt_size,
                                                sasl_encode,
                                                sasl_decode};

}  // namespace

void install_sasl(pn_transport_t* t, SaslSession* s) {
    pnx_sasl_set_implementation(t, &implementation, s);
}

SaslCounters& SaslSession::counters() {
    static SaslCounters c;
    return c;
}

SaslSession::SaslSession(const SaslConfig& config, pn_transport_t* t, pn_ssl_t* ssl, bool server,
                         std::string log_prefix)
    : config_(config), t_(t), ssl_(ssl), server_(server), log_prefix_(std::move(log_prefix)) {}

bool SaslSession::offers(std::string_view mech) {
    return contains(offered(), mech);
}

const std::string& SaslSession::offered() {
    if (listed_) return offered_;
    listed_ = true;
    bool encrypted = ssl_ && pnx_sasl_is_transport_encrypted(t_);
    std::istringstream in(config_.mechanisms);
    std::string m;
    while (in >> m) {
        bool ok = false;
        if (m == "ANONYMOUS")
            ok = !server_ || !config_.authenticate_peer;
        else if (m == "PLAIN")
            ok = (server_ ? config_.users != nullptr : !config_.username.empty()) &&
                 (encrypted || config_.allow_insecure);
        else if (security::scram_hash(m))
            ok = server_ ? config_.users != nullptr : !config_.username.empty();
        else if (m == "EXTERNAL")
            ok = server_ ? ssl_ && pn_ssl_get_remote_subject(ssl_) != nullptr : ssl_ != nullptr;
        if (!ok) continue;
        if (!offered_.empty()) offered_ += ' ';
        offered_ += m;
    }
    return offered_;
}

void SaslSession::send(std::string b) {
    out_ = std::move(b);
    pnx_sasl_set_bytes_out(t_, pn_bytes(out_.size(), out_.data()));
}

void SaslSession::succeed(std::string user) {
    user_ = std::move(user);
    pnx_sasl_set_succeeded(t_, user_.c_str(), nullptr);
    pnx_sasl_set_desired_state(t_, SASL_POSTED_OUTCOME);
    ++counters().succeeded;
    logger().debug("{} authenticated as '{}' ({})", log_prefix_, user_, mech_);
}

void SaslSession::fail(const std::string& why) {
    failure_ = why;
    pnx_sasl_set_failed(t_);
    pnx_sasl_set_desired_state(t_, SASL_POSTED_OUTCOME);
    ++counters().failed;
    logger().warn("{} authentication failed ({}{}{}): {}", log_prefix_, mech_,
                  user_.empty() ? "" : ", user '", user_.empty() ? "" : user_ + "'", why);
}

void SaslSession::refused(const std::string& why) {
    failure_ = why;
    ++counters().failed;
    logger().warn("{} authentication failed: {}", log_prefix_, why);
}

void SaslSession::process_init(const char* mech, const pn_bytes_t* recv) {
    mech_ = mech ? mech : "";
    if (!offers(mech_)) return fail("mechanism " + mech_ + " not offered on this connection");
    std::string_view in = bytes(recv);
    if (mech_ == "ANONYMOUS") return succeed("anonymous");
    if (mech_ == "EXTERNAL") {
        std::string uid = config_.uid_format.empty() ? std::string(pn_ssl_get_remote_subject(ssl_))
                                                     : security::user_id(config_.uid_format, ssl_);
        if (uid.empty()) return fail("the client certificate has none of the uidFormat fields");
        return succeed(uid);
    }
    if (mech_ == "PLAIN") {
        // authzid NUL authcid NUL password
        size_t a = in.find('\0');
        size_t b = a == std::string_view::npos ? a : in.find('\0', a + 1);
        if (b == std::string_view::npos) return fail("malformed PLAIN response");
        std::string_view authz = in.substr(0, a), user = in.substr(a + 1, b - a - 1);
        user_ = std::string(user);
        if (!authz.empty() && authz != user)
            return fail("authorization identity differs from the user (no proxying)");
        if (!config_.users->verify(user, in.substr(b + 1))) return fail("wrong user or password");
        return succeed(std::string(user));
    }
    auto h = security::scram_hash(mech_);
    if (!h) return fail("unknown mechanism");
    scram_server_ = std::make_unique<security::ScramServer>(*h, *config_.users);
    std::string error;
    auto first = scram_server_->client_first(in, error);
    user_ = scram_server_->user();
    if (!first) return fail(error);
    send(std::move(*first));
    pnx_sasl_set_desired_state(t_, SASL_POSTED_CHALLENGE);
}

void SaslSession::process_response(const pn_bytes_t* recv) {
    if (!scram_server_) return fail("unexpected SASL response");
    std::string error;
    auto final = scram_server_->client_final(bytes(recv), error);
    if (!final) return fail(error);
    send(std::move(*final));
    succeed(scram_server_->user());
}

bool SaslSession::process_mechanisms(const char* mechs) {
    std::string_view theirs = mechs ? mechs : "";
    std::istringstream in(offered());
    std::string m;
    while (in >> m) {
        if (!contains(theirs, m)) continue;
        mech_ = m;
        pnx_sasl_set_selected_mechanism(t_, mech_.c_str());
        if (m == "ANONYMOUS")
            send(config_.username.empty() ? "anonymous" : config_.username);
        else if (m == "EXTERNAL")
            send("");
        else if (m == "PLAIN")
            send(std::string(1, '\0') + config_.username + '\0' + config_.password);
        else {
            scram_client_ = std::make_unique<security::ScramClient>(
                *security::scram_hash(m), config_.username, config_.password);
            send(scram_client_->first());
        }
        pnx_sasl_set_desired_state(t_, SASL_POSTED_INIT);
        return true;
    }
    failure_ = "the peer offers none of our mechanisms (" + offered() + "), it offers " +
               std::string(theirs);
    logger().warn("{} {}", log_prefix_, failure_);
    return false;
}

void SaslSession::process_challenge(const pn_bytes_t* recv) {
    std::string error;
    auto final = scram_client_ ? scram_client_->server_first(bytes(recv), error) : std::nullopt;
    if (!final) {
        failure_ = scram_client_ ? error : "unexpected SASL challenge";
        logger().warn("{} authentication failed: {}", log_prefix_, failure_);
        pnx_sasl_error(t_, failure_.c_str(), "amqp:unauthorized-access");
        pnx_sasl_set_desired_state(t_, SASL_ERROR);
        return;
    }
    send(std::move(*final));
    pnx_sasl_set_desired_state(t_, SASL_POSTED_RESPONSE);
}

void SaslSession::process_outcome(const pn_bytes_t* recv) {
    // Proton 0.37 calls this for every outcome, a refusal too.
    if (pn_sasl_outcome(pn_sasl(t_)) != PN_SASL_OK) {
        failure_ = "refused by the peer (" + mech_ + ", user '" + config_.username + "')";
        logger().warn("{} authentication {}", log_prefix_, failure_);
        return;
    }
    if (!scram_client_) return;
    std::string error;
    if (!scram_client_->server_final(bytes(recv), error)) {
        failure_ = error;
        logger().warn("{} authentication failed: {}", log_prefix_, failure_);
        pnx_sasl_error(t_, failure_.c_str(), "amqp:unauthorized-access");
        pnx_sasl_set_desired_state(t_, SASL_ERROR);
    }
}

}  // namespace trestle::amqp
