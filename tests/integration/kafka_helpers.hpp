// Kafka for the tests: librdkafka's mock cluster in a process of its own (tests/tools/
// kafka_mock.cpp, so it outlives a trestled restart), and kcat to read and write topics
// independently of Trestle.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "router_process.hpp"

namespace trestle::test {

class KafkaMock {
  public:
    explicit KafkaMock(int brokers = 1);
    const std::string& bootstrap() const { return bootstrap_; }
    // Sends a command (see kafka_mock.cpp) and waits until it is applied.
    void command(const std::string& cmd);
    void topic(const std::string& name, int partitions) {
        command("topic " + name + " " + std::to_string(partitions));
    }

  private:
    std::unique_ptr<Process> proc_;
    std::string bootstrap_;
    int seq_ = 0;
};

struct Record {
    std::string key, value;
    std::map<std::string, std::string> headers;
    int partition = -1;
    long offset = -1;
    int64_t timestamp_ms = -1;  // the record's timestamp (CreateTime)
};

// Produces one record with kcat (acks=all); an empty key produces none.
void kcat_produce(const std::string& bootstrap, const std::string& topic, const std::string& key,
                  const std::string& value,
                  const std::vector<std::pair<std::string, std::string>>& headers = {});
// Everything in the topic now, in partition/offset order (kcat -C -e).
// Records from (key, value) pairs (neither with a tab or newline), in one kcat run, in
// batches of 16 records; to `partition` if it is not -1.
void kcat_produce_many(const std::string& bootstrap, const std::string& topic,
                       const std::vector<std::pair<std::string, std::string>>& records,
                       int partition = -1);
std::vector<Record> kcat_consume(const std::string& bootstrap, const std::string& topic);
// Waits until the topic holds at least `n` records; returns them.
std::vector<Record> kcat_wait(const std::string& bootstrap, const std::string& topic, size_t n,
                              Duration timeout = 20s);

// A trestled config section binding addresses to Kafka.
std::string kafka_section(const std::string& bootstrap, const std::string& extra = "");

}  // namespace trestle::test
