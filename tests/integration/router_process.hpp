// Starts a real trestled on a temporary config, captures its log, finds its ephemeral ports.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace trestle::test {

using namespace std::chrono_literals;
using Duration = std::chrono::milliseconds;

// A child process whose stdout+stderr are captured line by line.
class Process {
  public:
    Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    // Waits until a line matching `re` appears; returns the whole match and its groups
    // (empty on timeout or exit).
    std::vector<std::string> wait_for_line(const std::regex& re, Duration timeout = 10s);
    // Waits until the process closed its output.
    bool wait_eof(Duration timeout);
    bool has_line(const std::regex& re);
    std::string output();
    // Sends `sig` and waits for exit; returns the exit status (-1 on timeout, 128+n if killed).
    int stop(int sig, Duration timeout = 10s);
    // Waits for exit without signalling.
    int wait_exit(Duration timeout);
    bool running();
    // Writes to the process's standard input (a pipe of ours).
    bool write_stdin(const std::string& data);
    void close_stdin();

  private:
    void reader();
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int in_fd_ = -1;
    std::thread reader_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    bool eof_ = false;
    int status_ = -1;
    bool reaped_ = false;
};

// trestled with a config written to a temp file.
class RouterProcess {
  public:
    explicit RouterProcess(const std::string& config, std::vector<std::string> extra_args = {},
                           bool json = false);
    ~RouterProcess();
    // The port a listener logged ("listener 'NAME' (...) listening on HOST:PORT").
    int port(const std::string& listener_name = "", Duration timeout = 10s);
    std::string url(const std::string& listener_name = "") {
        return "127.0.0.1:" + std::to_string(port(listener_name));
    }
    Process& process() { return *proc_; }
    int terminate(Duration timeout = 10s) { return proc_->stop(SIGTERM, timeout); }
    const std::string& config_path() const { return path_; }

  private:
    std::string path_;
    std::unique_ptr<Process> proc_;
};

// Waits until `pred` holds or the deadline passes, for state only observable by asking (an
// HTTP scrape, a management query): there is no event to wait on, so it asks again every
// 50 ms. Returns the last answer.
template <class Pred>
bool poll_until(Pred pred, Duration timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(50ms);  // the poll interval of a deadline-bound wait
    }
    return pred();
}

std::string trestled_path();
// A TCP port that was free a moment ago (for peers that need to restart on the same port).
int free_port();
// Runs a command to completion, returning exit status and output.
int run_command(const std::vector<std::string>& argv, std::string* output, Duration timeout = 20s);

}  // namespace trestle::test
