// Authentication's pieces without sockets: the crypto against published vectors, SCRAM both
// ways, the password file (trestle's and mosquitto's formats) and secrets.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "security/crypto.hpp"
#include "security/password_file.hpp"
#include "security/scram.hpp"
#include "security/secret.hpp"

using namespace trestle;
using namespace trestle::security;

namespace {

// A store over parsed lines.
UserTable store_of(const std::string& text) {
    std::string error;
    auto u = parse_password_file(text, error);
    EXPECT_TRUE(u) << error;
    return UserTable(u ? std::move(*u) : Users{});
}

// The whole exchange; returns the server's error ("" on success).
std::string exchange(Hash h, core::UserStore& store, const std::string& user,
                     const std::string& password) {
    ScramServer server(h, store);
    ScramClient client(h, user, password);
    std::string error;
    auto server_first = server.client_first(client.first(), error);
    if (!server_first) return error;
    auto client_final = client.server_first(*server_first, error);
    EXPECT_TRUE(client_final) << error;
    auto server_final = server.client_final(*client_final, error);
    if (!server_final) return error.empty() ? "failed" : error;
    EXPECT_TRUE(client.server_final(*server_final, error)) << error;
    return "";
}

}  // namespace

TEST(Crypto, Rfc7677ScramSha256Vector) {
    // RFC 7677 section 3: the client proof and server signature from the primitives.
    const std::string salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    std::string salted = pbkdf2(Hash::sha256, "pencil", salt, 4096, 32);
    std::string client_key = hmac(Hash::sha256, salted, "Client Key");
    std::string stored_key = digest(Hash::sha256, client_key);
    std::string auth =
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    std::string signature = hmac(Hash::sha256, stored_key, auth);
    std::string proof = client_key;
    for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    EXPECT_EQ(base64_encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    std::string server_key = hmac(Hash::sha256, salted, "Server Key");
    EXPECT_EQ(base64_encode(hmac(Hash::sha256, server_key, auth)),
              "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST(Crypto, Base64IsStrict) {
    EXPECT_EQ(base64_encode("pencil"), "cGVuY2ls");
    EXPECT_EQ(*base64_decode("cGVuY2ls"), "pencil");
    EXPECT_FALSE(base64_decode("cGVuY2l"));   // not a multiple of four
    EXPECT_FALSE(base64_decode("cGVu*2ls"));  // not the alphabet
    EXPECT_TRUE(equal_in_constant_time("abc", "abc"));
    EXPECT_FALSE(equal_in_constant_time("abc", "abd"));
    EXPECT_FALSE(equal_in_constant_time("abc", "ab"));
}

TEST(Scram, BothHashesRoundTripAndWrongPasswordsFail) {
    UserTable store =
        store_of(scram_line("alice", "s3cret", 4096) + "\n" + scram_line("bob,=x", "pw", 4096));
    for (Hash h : {Hash::sha256, Hash::sha512}) {
        EXPECT_EQ(exchange(h, store, "alice", "s3cret"), "");
        EXPECT_NE(exchange(h, store, "alice", "wrong"), "");
        // A name with ',' and '=' travels escaped (=2C, =3D).
        EXPECT_EQ(exchange(h, store, "bob,=x", "pw"), "");
        // An unknown user gets a challenge like anyone else and fails only at the end.
        ScramServer server(h, store);
        ScramClient client(h, "mallory", "pw");
        std::string error;
        auto first = server.client_first(client.first(), error);
        ASSERT_TRUE(first) << error;
        auto final_msg = client.server_first(*first, error);
        ASSERT_TRUE(final_msg);
        EXPECT_FALSE(server.client_final(*final_msg, error));
    }
}

TEST(Scram, MalformedMessagesAreErrors) {
    std::string error;
    for (const char* bad : {"", "n,,", "x,,n=a,r=b", "n,,r=abc", "n,,n=a", "p=tls-unique,,n=a,r=b",
                            "n,,n=a=ZZ,r=b", "n,,m=ext,n=a,r=b"}) {
        error.clear();
        EXPECT_FALSE(parse_client_first(bad, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
    auto ok = parse_client_first("n,,n=user,r=abc", error);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->user, "user");
    EXPECT_EQ(ok->bare, "n=user,r=abc");
    for (const char* bad : {"", "c=biws", "c=biws,r=x", "c=biws,r=x,p=***", "r=x,p=AAAA"}) {
        error.clear();
        EXPECT_FALSE(parse_client_final(bad, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
    // A final message whose nonce is not the server's is refused.
    UserTable store = store_of(scram_line("alice", "s3cret", 4096));
    ScramServer server(Hash::sha256, store);
    ASSERT_TRUE(server.client_first("n,,n=alice,r=abc", error));
    EXPECT_FALSE(server.client_final("c=biws,r=abcdef,p=AAAA", error));
}

TEST(PasswordFile, MosquittoFilesVerifyAsTheyAre) {
    // Written by mosquitto_passwd 2.0.11 (Debian 12) for bob / bob-pw, and 1.x's $6$ format.
    const char* pbkdf2 =
        "bob:$7$101$rG+MddOdk2uAqr+3$Z7eAtuyyg7lreGHo7gcf3qftQMnP2pT+sBVB0pWcyrMRdFPUnezM41zwmqDDE"
        "SG9Y2N+uGRVJLMnzOGdPpbRqA==";
    UserTable store = store_of(std::string(pbkdf2) + "\n");
    EXPECT_FALSE(store.verify("bob", "bob-pw"));  // that line's password was bobpw
    EXPECT_TRUE(store.verify("bob", "bobpw"));
    EXPECT_FALSE(store.verify("alice", "bobpw"));
    // $7$ is PBKDF2-SHA512: SCRAM-SHA-512 works from it, SCRAM-SHA-256 cannot.
    EXPECT_EQ(exchange(Hash::sha512, store, "bob", "bobpw"), "");
    EXPECT_FALSE(store.scram("bob", core::Hash::sha256));
}

TEST(PasswordFile, ErrorsNameTheLineNotTheHash) {
    std::string error;
    EXPECT_TRUE(
        parse_password_file("# users\n\nalice:" + scram_line("a", "b", 10).substr(2) + "\n", error))
        << error;
    struct Case {
        std::string text;
        std::string want;
    } cases[] = {
        {"alice\n", "line 1"},
        {"# c\nalice:plaintext\n", "line 2"},
        {"alice:$scram$0$AAAA$AAAA$AAAA$AAAA$AAAA\n", "line 1"},
        {"alice:$scram$4096$!!!!$AAAA$AAAA$AAAA$AAAA\n", "line 1"},
        {"alice:$7$101$AAAA\n", "line 1"},
        {":$7$101$AAAA$AAAA\n", "line 1"},
        {scram_line("a", "b", 10) + "\n" + scram_line("a", "c", 10) + "\n", "line 2"},
    };
    for (const auto& c : cases) {
        error.clear();
        EXPECT_FALSE(parse_password_file(c.text, error)) << c.text;
        EXPECT_NE(error.find(c.want), std::string::npos) << c.text << " -> " << error;
        EXPECT_EQ(error.find("AAAA"), std::string::npos) << error;  // no hash quoted
    }
}

TEST(Secret, Forms) {
    EXPECT_EQ(resolve_secret("plain"), "plain");
    EXPECT_EQ(resolve_secret("pass:env:x"), "env:x");
    setenv("TRESTLE_TEST_SECRET", "from-env", 1);
    EXPECT_EQ(resolve_secret("env:TRESTLE_TEST_SECRET"), "from-env");
    std::string path = testing::TempDir() + "trestle-secret";
    std::ofstream(path) << "from-file\nsecond line\n";
    EXPECT_EQ(resolve_secret("file:" + path), "from-file");
    try {
        resolve_secret("env:TRESTLE_NO_SUCH_VARIABLE");
        ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("TRESTLE_NO_SUCH_VARIABLE"), std::string::npos);
    }
    EXPECT_THROW(resolve_secret("file:/nonexistent/secret"), std::runtime_error);
}
