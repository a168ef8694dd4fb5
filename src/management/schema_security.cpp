// Security: sslProfile (qdrouterd's attributes) and userStore (docs/security.md).
#include "management/schema_attributes.hpp"

namespace trestle::management::schema {

void add_ssl_profile(Types& types) {
    EntityTypeSchema t;
    t.short_name = "sslProfile";
    t.long_name = std::string(prefix) + "sslProfile";
    t.description =
        "Certificates and TLS settings, named by listener, connector, mqttListener and "
        "httpListener sslProfile attributes. Files are reloaded when they change on disk "
        "(checked at most once a second, as connections arrive): new connections use the "
        "new certificate, existing ones go on.";
    t.attributes.push_back(required(str("name", "Unique name that listeners refer to.")));
    t.attributes.push_back(
        str("certFile", "PEM certificate (chain) presented to peers; needed to listen."));
    t.attributes.push_back(str("privateKeyFile", "PEM private key of certFile."));
    t.attributes.push_back(secret("password", "Passphrase of an encrypted privateKeyFile."));
    t.attributes.push_back(str("caCertFile",
                               "PEM CA certificates that peers' certificates must chain to: "
                               "client certificates on listeners; servers on connectors "
                               "(default there: the system's CAs)."));
    t.attributes.push_back(str("ciphers", "OpenSSL cipher list for TLS 1.2 (empty: OpenSSL's)."));
    t.attributes.push_back(str("protocols",
                               "Space-separated TLS versions allowed: TLSv1, TLSv1.1, TLSv1.2, "
                               "TLSv1.3 (Debian's OpenSSL refuses the first two anyway).",
                               "TLSv1.2 TLSv1.3"));
    t.attributes.push_back(str("uidFormat",
                               "Client certificate fields that form its user id (SASL EXTERNAL, "
                               "useIdentityAsUsername), joined with ';': c country, s state, "
                               "l locality, o organization, u unit, n common name, 1/2/5 "
                               "SHA-1/256/512 fingerprint. Empty: EXTERNAL uses the whole "
                               "subject, MQTT the common name."));
    t.attributes.push_back(unsupported("uidNameMappingFile"));
    types.push_back(std::move(t));
}

void add_user_store(Types& types) {
    EntityTypeSchema t;
    t.short_name = "userStore";
    t.long_name = "io.trestle.userStore";
    t.description =
        "Users and salted password hashes, one user:hash per line, written by "
        "trestle-passwd; mosquitto_passwd files are read as they are. Checks AMQP SASL "
        "PLAIN/SCRAM and MQTT CONNECT credentials; reloaded when the file changes.";
    t.attributes.push_back(required(str("name", "Unique name that listeners refer to.")));
    t.attributes.push_back(required(str("passwordFile", "Path of the password file.")));
    types.push_back(std::move(t));
}

}  // namespace trestle::management::schema
