#include "kafka_helpers.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace trestle::test {

KafkaMock::KafkaMock(int brokers) {
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{KAFKA_MOCK_PATH, std::to_string(brokers)});
    auto m = proc_->wait_for_line(std::regex("^bootstrap (\\S+)"), 10s);
    if (m.size() < 2) throw std::runtime_error("kafka_mock did not start: " + proc_->output());
    bootstrap_ = m[1];
}

void KafkaMock::command(const std::string& cmd) {
    int seq = ++seq_;
    proc_->write_stdin(std::to_string(seq) + " " + cmd + "\n");
    if (proc_->wait_for_line(std::regex("^done " + std::to_string(seq) + "$"), 10s).empty())
        throw std::runtime_error("kafka_mock did not apply '" + cmd + "'");
    if (proc_->has_line(std::regex("^error " + std::to_string(seq) + ":")))
        throw std::runtime_error("kafka_mock: '" + cmd + "' failed: " + proc_->output());
}

void kcat_produce(const std::string& bootstrap, const std::string& topic, const std::string& key,
                  const std::string& value,
                  const std::vector<std::pair<std::string, std::string>>& headers) {
    char path[] = "/tmp/trestle-kcat-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    if (write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        throw std::runtime_error("write failed");
    close(fd);
    // One file = one record (no delimiter splitting).
    std::vector<std::string> argv{"kcat", "-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"};
    if (!key.empty()) argv.insert(argv.end(), {"-k", key});
    for (const auto& [k, v] : headers) argv.insert(argv.end(), {"-H", k + "=" + v});
    argv.push_back(path);
    std::string out;
    int rc = run_command(argv, &out);
    unlink(path);
    if (rc != 0) throw std::runtime_error("kcat -P failed: " + out);
}

void kcat_produce_many(const std::string& bootstrap, const std::string& topic,
                       const std::vector<std::pair<std::string, std::string>>& records,
                       int partition) {
    char path[] = "/tmp/trestle-kcat-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    std::string all;
    for (const auto& [k, v] : records) all += k + "\t" + v + "\n";
    if (write(fd, all.data(), all.size()) != static_cast<ssize_t>(all.size()))
        throw std::runtime_error("write failed");
    close(fd);
    std::string out;
    // Batches of 16 records: a consumer's fetch size limits then hold (a broker returns at
    // least one whole batch, however large).
    std::vector<std::string> args{"kcat", "-P", "-b",       bootstrap, "-t",
                                  topic,  "-X", "acks=all", "-X",      "batch.num.messages=16",
                                  "-K",   "\t", "-l",       path};
    if (partition >= 0) args.insert(args.end() - 2, {"-p", std::to_string(partition)});
    int rc = run_command(args, &out);
    unlink(path);
    if (rc != 0) throw std::runtime_error("kcat -P -l failed: " + out);
}

std::vector<Record> kcat_consume(const std::string& bootstrap, const std::string& topic) {
    // Fields separated by control characters tests never use; headers as k=v pairs.
    std::string out;
    int rc = run_command({"kcat", "-C", "-q", "-e", "-b", bootstrap, "-t", topic, "-o", "beginning",
                          "-f", "%p\x1f%o\x1f%T\x1f%k\x1f%h\x1f%s\x1e"},
                         &out);
    std::vector<Record> recs;
    if (rc != 0) return recs;
    std::string all;
    for (char c : out) all += c;
    size_t pos = 0;
    while (true) {
        size_t end = all.find('\x1e', pos);
        if (end == std::string::npos) break;
        std::string rec = all.substr(pos, end - pos);
        pos = end + 1;
        if (!rec.empty() && rec[0] == '\n') rec.erase(0, 1);  // output() joins lines
        std::vector<std::string> f;
        size_t s = 0;
        for (int i = 0; i < 5; ++i) {
            size_t e = rec.find('\x1f', s);
            if (e == std::string::npos) break;
            f.push_back(rec.substr(s, e - s));
            s = e + 1;
        }
        if (f.size() < 5) continue;
        Record r;
        r.partition = std::stoi(f[0]);
        r.offset = std::stol(f[1]);
        r.timestamp_ms = std::stoll(f[2]);
        r.key = f[3];
        // kcat prints headers as k=v,k=v
        std::stringstream hs(f[4]);
        std::string kv;
        while (std::getline(hs, kv, ',')) {
            auto eq = kv.find('=');
            if (eq != std::string::npos) r.headers[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        r.value = rec.substr(s);
        recs.push_back(std::move(r));
    }
    return recs;
}

std::vector<Record> kcat_wait(const std::string& bootstrap, const std::string& topic, size_t n,
                              Duration timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<Record> r;
    while (true) {
        r = kcat_consume(bootstrap, topic);
        if (r.size() >= n || std::chrono::steady_clock::now() >= deadline) return r;
        std::this_thread::sleep_for(200ms);  // polling an external tool: no event to wait on
    }
}

std::string kafka_section(const std::string& bootstrap, const std::string& extra) {
    return "kafka {\n    bootstrapServers: " + bootstrap + "\n" + extra + "}\n";
}

}  // namespace trestle::test
