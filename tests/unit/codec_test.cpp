// The AMQP message scanner against messages Proton encodes, and against damaged bytes.
#include <gtest/gtest.h>
#include <proton/codec.h>
#include <proton/message.h>

#include <set>
#include <string>

#include "amqp/codec.hpp"
#include "util/json.hpp"

using namespace trestle::amqp;

namespace {

std::string encode(pn_message_t* m) {
    std::string buf(65536, '\0');
    size_t size = buf.size();
    EXPECT_EQ(pn_message_encode(m, buf.data(), &size), 0);
    buf.resize(size);
    return buf;
}

std::string sample(const char* to, bool annotations) {
    pn_message_t* m = pn_message();
    pn_message_set_durable(m, true);
    if (annotations) {
        pn_data_t* ma = pn_message_annotations(m);
        pn_data_put_map(ma);
        pn_data_enter(ma);
        pn_data_put_symbol(ma, pn_bytes(12, "x-opt-custom"));
        pn_data_put_int(ma, 7);
        pn_data_exit(ma);
    }
    if (to) pn_message_set_address(m, to);
    pn_message_set_reply_to(m, "replies");
    pn_message_set_subject(m, "subj");
    pn_data_t* body = pn_message_body(m);
    pn_data_put_string(body, pn_bytes(5, "hello"));
    std::string bytes = encode(m);
    pn_message_free(m);
    return bytes;
}

TEST(Scan, FindsSectionsAndProperties) {
    std::string bytes = sample("orders/eu", true);
    MessageLayout l;
    ASSERT_EQ(scan_message(bytes, l), "");
    EXPECT_TRUE(l.header.present());
    EXPECT_TRUE(l.message_annotations.present());
    EXPECT_TRUE(l.properties.present());
    EXPECT_TRUE(l.body.present());
    EXPECT_EQ(l.to, "orders/eu");
    EXPECT_EQ(l.reply_to, "replies");
    EXPECT_EQ(l.subject, "subj");
    EXPECT_EQ(l.body.offset + l.body.size, bytes.size());
}

TEST(Scan, MessageWithoutTo) {
    MessageLayout l;
    ASSERT_EQ(scan_message(sample(nullptr, false), l), "");
    EXPECT_TRUE(l.to.empty());
}

TEST(Scan, EveryTruncationIsAnErrorNotACrash) {
    std::string bytes = sample("a", true);
    MessageLayout full;
    ASSERT_EQ(scan_message(bytes, full), "");
    std::set<size_t> boundaries;
    for (const Span* s : {&full.header, &full.message_annotations, &full.properties, &full.body})
        if (s->present()) boundaries.insert(s->offset + s->size);
    for (size_t n = 1; n < bytes.size(); ++n) {
        MessageLayout l;
        std::string err = scan_message(std::string_view(bytes).substr(0, n), l);
        // A cut at a section boundary is a valid shorter message; anywhere else must fail.
        if (boundaries.count(n))
            EXPECT_EQ(err, "") << "cut at " << n;
        else
            EXPECT_NE(err, "") << "cut at " << n;
    }
    MessageLayout l;
    EXPECT_NE(scan_message(std::string("\x00\x53\x73\xc0\x10", 5), l), "");
    EXPECT_NE(scan_message(std::string("\x00\x53\x75\xb0\xff\xff\xff\xff", 8), l), "");
    EXPECT_NE(scan_message(std::string("\x01\x02", 2), l), "");
    EXPECT_NE(scan_message(std::string("\x00\x53\x90\x40", 4), l), "") << "unknown section";
}

TEST(Scan, SectionsOutOfOrderAreRejected) {
    // properties (0x73) then header (0x70)
    std::string bytes("\x00\x53\x73\x45\x00\x53\x70\x45", 8);
    MessageLayout l;
    EXPECT_NE(scan_message(bytes, l), "");
}

TEST(Scan, DeepNestingIsBounded) {
    // A described value nested 10000 deep must not exhaust the stack.
    std::string bytes("\x00\x53\x77", 3);
    for (int i = 0; i < 10000; ++i) bytes += std::string("\x00\x53\x01", 3);
    bytes += '\x40';
    MessageLayout l;
    EXPECT_NE(scan_message(bytes, l), "");
}

TEST(Json, RoundTripAndErrors) {
    trestle::json::Value v;
    trestle::json::ParseError err;
    ASSERT_TRUE(trestle::json::parse(R"({"a": [1, 2.5, "x\u00e9", true, null], "b": {}})", v, err));
    EXPECT_EQ(trestle::json::dump(v), R"({"a":[1,2.5,"xé",true,null],"b":{}})");
    EXPECT_FALSE(trestle::json::parse("[1,\n2,\n]", v, err));
    EXPECT_EQ(err.line, 3);
    EXPECT_FALSE(trestle::json::parse(std::string(1000, '['), v, err)) << "nesting is bounded";
    // Found by fuzz_json: a double must dump as something that parses back as a double.
    ASSERT_TRUE(trestle::json::parse("-0e3", v, err));
    EXPECT_EQ(trestle::json::dump(v), "-0.0");
    ASSERT_TRUE(trestle::json::parse(trestle::json::dump(v), v, err));
    EXPECT_TRUE(v.is_double());
}

}  // namespace
