// trestle-passwd: adds, changes and deletes users in a Trestle password file (salted SCRAM
// keys, never the password). Its options follow mosquitto_passwd's.
//
//   trestle-passwd [-c] [-I ITERATIONS] FILE USER          asks for the password (twice on a tty)
//   trestle-passwd -b [-c] [-I ITERATIONS] FILE USER PASSWORD
//   trestle-passwd -D FILE USER
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "security/password_file.hpp"

namespace {

int usage() {
    std::cerr << "usage: trestle-passwd [-c] [-I iterations] FILE USER\n"
                 "       trestle-passwd -b [-c] [-I iterations] FILE USER PASSWORD\n"
                 "       trestle-passwd -D FILE USER\n"
                 "  -c  create (or overwrite) FILE\n"
                 "  -b  take the password from the command line (it shows in ps: prefer stdin)\n"
                 "  -D  delete USER\n"
                 "  -I  PBKDF2 iterations (default 4096)\n"
                 "Without -b the password is read from standard input (asked for twice on a "
                 "terminal).\n";
    return 2;
}

std::string read_password(const char* prompt) {
    bool tty = isatty(STDIN_FILENO);
    termios old{};
    if (tty) {
        std::cerr << prompt << std::flush;
        tcgetattr(STDIN_FILENO, &old);
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string pw;
    std::getline(std::cin, pw);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        std::cerr << "\n";
    }
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    return pw;
}

bool valid_user(const std::string& u) {
    if (u.empty()) return false;
    for (char c : u)
        if (c == ':' || c == '\n' || c == '\r' || c == '\0') return false;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    bool create = false, batch = false, del = false;
    uint32_t iterations = 4096;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-c")
            create = true;
        else if (a == "-b")
            batch = true;
        else if (a == "-D")
            del = true;
        else if (a == "-I" && i + 1 < argc) {
            long v = std::strtol(argv[++i], nullptr, 10);
            if (v < 1 || v > 10000000) {
                std::cerr << "trestle-passwd: iterations must be 1..10000000\n";
                return 2;
            }
            iterations = static_cast<uint32_t>(v);
        } else if (a == "-h" || a == "--help")
            return usage(), 0;
        else if (!a.empty() && a[0] == '-' && a.size() > 1)
            return usage();
        else
            args.push_back(a);
    }
    if (args.size() != (batch ? 3u : 2u) || (del && (batch || create))) return usage();
    const std::string& file = args[0];
    const std::string& user = args[1];
    if (!valid_user(user)) {
        std::cerr << "trestle-passwd: a user name cannot be empty or contain ':'\n";
        return 2;
    }

    std::vector<std::string> lines;
    if (!create) {
        std::ifstream in(file);
        if (!in) {
            std::cerr << "trestle-passwd: " << file << " cannot be read (-c creates it)\n";
            return 1;
        }
        std::stringstream ss;
        ss << in.rdbuf();
        std::string error;
        if (!trestle::security::parse_password_file(ss.str(), error)) {
            std::cerr << "trestle-passwd: " << file << ": " << error << "\n";
            return 1;
        }
        std::string line;
        std::istringstream text(ss.str());
        while (std::getline(text, line)) lines.push_back(line);
    }
    auto is_user = [&](const std::string& l) { return l.rfind(user + ":", 0) == 0; };
    bool found = false;
    for (const auto& l : lines) found |= is_user(l);
    if (del && !found) {
        std::cerr << "trestle-passwd: no user '" << user << "' in " << file << "\n";
        return 1;
    }
    std::string new_line;
    if (!del) {
        std::string pw = batch ? args[2] : read_password("Password: ");
        if (!batch && isatty(STDIN_FILENO) && read_password("Reenter password: ") != pw) {
            std::cerr << "trestle-passwd: passwords do not match\n";
            return 1;
        }
        if (pw.empty()) {
            std::cerr << "trestle-passwd: empty password\n";
            return 1;
        }
        new_line = trestle::security::scram_line(user, pw, iterations);
    }
    std::string out;
    bool written = false;
    for (const auto& l : lines) {
        if (!is_user(l)) {
            out += l + "\n";
        } else if (!del && !written) {
            out += new_line + "\n";
            written = true;
        }
    }
    if (!del && !written) out += new_line + "\n";

    // Written whole to a temporary file and renamed: a reader (the router reloading) never sees
    // half a file. Owner-only: the hashes are offline-attackable.
    std::string tmp = file + ".tmp";
    mode_t old = umask(077);
    std::ofstream o(tmp, std::ios::trunc);
    umask(old);
    if (!(o << out) || !(o.close(), o)) {
        std::cerr << "trestle-passwd: cannot write " << tmp << "\n";
        return 1;
    }
    if (std::rename(tmp.c_str(), file.c_str()) != 0) {
        std::cerr << "trestle-passwd: cannot replace " << file << ": " << std::strerror(errno)
                  << "\n";
        return 1;
    }
    return 0;
}
