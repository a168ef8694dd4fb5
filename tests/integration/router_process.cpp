#include "router_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace trestle::test {

std::string trestled_path() {
    if (const char* p = std::getenv("TRESTLED")) return p;
    return TRESTLED_PATH;  // set by CMake
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
    int fds[2], in[2];
    if (pipe2(fds, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    for (auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    // posix_spawnp: commands such as mosquitto_pub are found on PATH.
    int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    close(in[0]);
    in_fd_ = in[1];
    if (rc != 0) {
        close(fds[0]);
        close_stdin();
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
    out_fd_ = fds[0];
    reader_ = std::thread([this] { reader(); });
}

bool Process::write_stdin(const std::string& data) {
    signal(SIGPIPE, SIG_IGN);  // a child that exited must not take the test with it
    size_t off = 0;
    while (in_fd_ >= 0 && off < data.size()) {
        ssize_t n = write(in_fd_, data.data() + off, data.size() - off);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return in_fd_ >= 0;
}

void Process::close_stdin() {
    if (in_fd_ >= 0) close(in_fd_);
    in_fd_ = -1;
}

Process::~Process() {
    close_stdin();
    if (running()) stop(SIGKILL, 5s);
    if (reader_.joinable()) reader_.join();
    if (out_fd_ >= 0) close(out_fd_);
}

void Process::reader() {
    std::string partial;
    char buf[4096];
    while (true) {
        ssize_t n = read(out_fd_, buf, sizeof buf);
        if (n <= 0) break;
        partial.append(buf, static_cast<size_t>(n));
        size_t nl;
        std::lock_guard<std::mutex> g(mu_);
        while ((nl = partial.find('\n')) != std::string::npos) {
            lines_.push_back(partial.substr(0, nl));
            if (std::getenv("TRESTLE_TEST_VERBOSE"))
                fprintf(stderr, "  | %s\n", lines_.back().c_str());
            partial.erase(0, nl + 1);
        }
        cv_.notify_all();
    }
    std::lock_guard<std::mutex> g(mu_);
    if (!partial.empty()) lines_.push_back(partial);
    eof_ = true;
    cv_.notify_all();
}

std::vector<std::string> Process::wait_for_line(const std::regex& re, Duration timeout) {
    std::unique_lock<std::mutex> g(mu_);
    size_t checked = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        for (; checked < lines_.size(); ++checked) {
            std::smatch m;
            if (std::regex_search(lines_[checked], m, re)) {
                std::vector<std::string> groups;
                for (const auto& sub : m) groups.push_back(sub.str());
                return groups;
            }
        }
        if (eof_) return {};
        if (cv_.wait_until(g, deadline) == std::cv_status::timeout) return {};
    }
}

bool Process::wait_eof(Duration timeout) {
    std::unique_lock<std::mutex> g(mu_);
    return cv_.wait_for(g, timeout, [this] { return eof_; });
}

bool Process::has_line(const std::regex& re) {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& l : lines_)
        if (std::regex_search(l, re)) return true;
    return false;
}

std::string Process::output() {
    std::lock_guard<std::mutex> g(mu_);
    std::string s;
    for (auto& l : lines_) s += l + "\n";
    return s;
}

bool Process::running() {
    if (reaped_) return false;
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        reaped_ = true;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return false;
    }
    return true;
}

int Process::wait_exit(Duration timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() > deadline) return -1;
        // Poll the output pipe as a cheap wait (wakes on any output or EOF).
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait_for(g, 20ms);
    }
    return status_;
}

int Process::stop(int sig, Duration timeout) {
    if (!running()) return status_;
    kill(pid_, sig);
    int rc = wait_exit(timeout);
    if (rc == -1 && sig != SIGKILL) {
        kill(pid_, SIGKILL);
        wait_exit(5s);
        return -1;
    }
    return rc;
}

RouterProcess::RouterProcess(const std::string& config, std::vector<std::string> extra_args,
                             bool json) {
    char tmpl[] = "/tmp/trestle-test-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    close(fd);
    path_ = std::string(tmpl) + (json ? ".json" : ".conf");
    std::rename(tmpl, path_.c_str());
    std::ofstream(path_) << config;
    std::vector<std::string> argv{trestled_path(), "--config", path_, "--log-level", "debug"};
    for (auto& a : extra_args) argv.push_back(a);
    proc_ = std::make_unique<Process>(argv);
}

RouterProcess::~RouterProcess() {
    proc_.reset();
    std::remove(path_.c_str());
}

int RouterProcess::port(const std::string& name, Duration timeout) {
    std::string n = name.empty() ? "[^']*" : name;
    std::regex re("listener '" + n + "' \\([a-z-]+\\) listening on [^ ]*:([0-9]+)");
    auto m = proc_->wait_for_line(re, timeout);
    if (m.empty())
        throw std::runtime_error("router did not report listener '" + name + "'; output:\n" +
                                 proc_->output());
    return std::stoi(m[1]);
}

int free_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);
    close(s);
    return port;
}

int run_command(const std::vector<std::string>& argv, std::string* output, Duration timeout) {
    Process p(argv);
    p.close_stdin();  // commands that read standard input see its end
    int rc = p.wait_exit(timeout);
    if (rc == -1) rc = p.stop(SIGKILL);
    p.wait_eof(2s);  // the reader may still be draining the pipe
    if (output) *output = p.output();
    return rc;
}

}  // namespace trestle::test
