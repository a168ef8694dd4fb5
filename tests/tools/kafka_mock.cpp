// A Kafka protocol endpoint for tests: librdkafka's mock cluster in a process of its own, so
// it outlives a trestled restart (or kill -9). Prints "bootstrap <servers>", then reads one
// command per line on stdin and answers "done <seq>" once it is applied:
//   <seq> topic <name> <partitions>        create a topic
//   <seq> down <broker> | up <broker>      take a broker down / bring it back
//   <seq> rtt <broker> <ms>                delay a broker's responses
//   <seq> errors <api-key> <count> <code>  fail the next <count> requests of an API
//   <seq> clear <api-key>                  forget pushed errors
// Exits when stdin closes.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    int brokers = argc > 1 ? std::atoi(argv[1]) : 1;
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        std::fprintf(stderr, "kafka_mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        std::fprintf(stderr, "kafka_mock: the mock cluster did not start\n");
        return 1;
    }
    std::printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string seq, cmd;
        in >> seq >> cmd;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (cmd == "topic") {
            std::string name;
            int parts = 1;
            in >> name >> parts;
            err = rd_kafka_mock_topic_create(mc, name.c_str(), parts, brokers < 3 ? brokers : 3);
        } else if (cmd == "down" || cmd == "up") {
            int b = 1;
            in >> b;
            err = cmd == "down" ? rd_kafka_mock_broker_set_down(mc, b)
                                : rd_kafka_mock_broker_set_up(mc, b);
        } else if (cmd == "rtt") {
            int b = 1, ms = 0;
            in >> b >> ms;
            err = rd_kafka_mock_broker_set_rtt(mc, b, ms);
        } else if (cmd == "errors") {
            int16_t api = 0;
            size_t count = 0;
            int code = 0;
            in >> api >> count >> code;
            std::vector<rd_kafka_resp_err_t> errs(count, static_cast<rd_kafka_resp_err_t>(code));
            rd_kafka_mock_push_request_errors_array(mc, api, count, errs.data());
        } else if (cmd == "clear") {
            int16_t api = 0;
            in >> api;
            rd_kafka_mock_clear_request_errors(mc, api);
        } else {
            std::printf("unknown command '%s'\n", cmd.c_str());
        }
        if (err) std::printf("error %s: %s\n", seq.c_str(), rd_kafka_err2str(err));
        std::printf("done %s\n", seq.c_str());
        std::fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
