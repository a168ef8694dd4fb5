// kafka_plain: the plain-librdkafka baseline for bench/kafka_bench.py — the same producer
// settings trestled uses (enable.idempotence, acks=all, linger.ms=5), and a plain consumer.
//
//   kafka_plain produce --bootstrap B --topic T --count N [--size 100] [--key K] [--partitions P]
//   kafka_plain consume --bootstrap B --topic T --count N
//
// Prints one JSON line: {"count": N, "rate": msgs/s} (produce: delivery reports; consume:
// first to last record). --partitions P spreads the records round-robin over partitions
// 0..P-1 (the mock cluster keeps only the newest few MB of each partition).
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

long delivered = 0, failed = 0;

void dr(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err)
        ++failed;
    else
        ++delivered;
}

rd_kafka_conf_t* conf_with(const std::string& bootstrap) {
    rd_kafka_conf_t* c = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
    return c;
}

void set(rd_kafka_conf_t* c, const char* k, const char* v) {
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s: %s\n", k, err);
        exit(2);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: kafka_plain produce|consume --bootstrap B --topic T --count N\n");
        return 2;
    }
    std::string mode = argv[1], bootstrap, topic, key, in_flight, batch;
    std::vector<std::string> props;  // --prop name=value, any number (applied last)
    long count = 100000, size = 100, partitions = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--bootstrap")
            bootstrap = argv[i + 1];
        else if (k == "--topic")
            topic = argv[i + 1];
        else if (k == "--count")
            count = std::atol(argv[i + 1]);
        else if (k == "--size")
            size = std::atol(argv[i + 1]);
        else if (k == "--key")
            key = argv[i + 1];
        else if (k == "--partitions")
            partitions = std::atol(argv[i + 1]);
        else if (k == "--in-flight")
            in_flight = argv[i + 1];
        else if (k == "--batch")
            batch = argv[i + 1];
        else if (k == "--prop")
            props.emplace_back(argv[i + 1]);
    }
    char err[512];
    if (mode == "produce") {
        rd_kafka_conf_t* c = conf_with(bootstrap);
        set(c, "enable.idempotence", "true");
        set(c, "acks", "all");
        set(c, "linger.ms", "5");
        // Records produced and not yet acknowledged, at most (trestled: maxInFlight).
        if (!in_flight.empty()) set(c, "queue.buffering.max.messages", in_flight.c_str());
        if (!batch.empty()) set(c, "batch.num.messages", batch.c_str());
        rd_kafka_conf_set_dr_msg_cb(c, dr);
        rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
        if (!rk) return fprintf(stderr, "%s\n", err), 1;
        std::string value(static_cast<size_t>(size), 'x');
        // A topic handle, as trestled's routes use: producing by name costs a lock per record.
        rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        int64_t t0 = now_ns();
        for (long i = 0; i < count;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt),
                RD_KAFKA_V_PARTITION(partitions > 0 ? static_cast<int32_t>(i % partitions)
                                                    : RD_KAFKA_PARTITION_UA),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
                RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 10);
                continue;
            }
            if (e) return fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e)), 1;
            ++i;
            rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 60000);
        int64_t t1 = now_ns();
        printf("{\"count\": %ld, \"failed\": %ld, \"rate\": %.0f}\n", delivered, failed,
               delivered / ((t1 - t0) / 1e9));
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return failed ? 1 : 0;
    }
    if (mode == "consume") {
        rd_kafka_conf_t* c = conf_with(bootstrap);
        std::string group = "kafka-plain-" + std::to_string(now_ns());
        set(c, "group.id", group.c_str());
        set(c, "auto.offset.reset", "earliest");
        set(c, "enable.auto.commit", "true");
        for (const auto& p : props)
            if (auto eq = p.find('='); eq != std::string::npos)
                set(c, p.substr(0, eq).c_str(), p.substr(eq + 1).c_str());
        rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
        if (!rk) return fprintf(stderr, "%s\n", err), 1;
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic.c_str(), RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        long got = 0;
        int64_t first = 0, last = 0, deadline = now_ns() + 120'000'000'000LL;
        while (got < count && now_ns() < deadline) {
            rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
            if (!m) continue;
            if (!m->err) {
                if (!got) first = now_ns();
                ++got;
                last = now_ns();
            }
            rd_kafka_message_destroy(m);
        }
        printf("{\"count\": %ld, \"rate\": %.0f}\n", got,
               got > 1 ? got / ((last - first) / 1e9) : 0.0);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return got < count ? 1 : 0;
    }
    return 2;
}
