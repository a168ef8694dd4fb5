#include "trestle/core/topic_filter.hpp"

namespace trestle::core {

bool valid_topic_name(std::string_view t) {
    if (t.empty() || t.size() > 65535) return false;
    for (char c : t)
        if (c == '+' || c == '#' || c == '\0') return false;
    return true;
}

bool valid_topic_filter(std::string_view f) {
    if (f.empty() || f.size() > 65535) return false;
    for (size_t i = 0; i < f.size(); ++i) {
        char c = f[i];
        if (c == '\0') return false;
        if (c == '+' || c == '#') {
            // A wildcard occupies a whole level; '#' is also the last character.
            if (i > 0 && f[i - 1] != '/') return false;
            if (c == '#' && i != f.size() - 1) return false;
            if (c == '+' && i + 1 < f.size() && f[i + 1] != '/') return false;
        }
    }
    return true;
}

bool has_wildcards(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if ((c == '+' || c == '#') && (i == 0 || s[i - 1] == '/') &&
            (i + 1 == s.size() || s[i + 1] == '/'))
            return true;
    }
    return false;
}

namespace {
constexpr std::string_view share_prefix = "$share/";
}

std::string_view filter_of(std::string_view s) {
    if (s.substr(0, share_prefix.size()) != share_prefix) return s;
    std::string_view rest = s.substr(share_prefix.size());
    size_t slash = rest.find('/');
    return slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
}

bool parse_shared(std::string_view s, SharedFilter& out) {
    out = {};
    if (s.substr(0, share_prefix.size()) != share_prefix) {
        out.filter = std::string(s);
        return true;
    }
    std::string_view rest = s.substr(share_prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return false;
    std::string_view group = rest.substr(0, slash);
    for (char c : group)
        if (c == '+' || c == '#') return false;
    std::string_view filter = rest.substr(slash + 1);
    if (filter.empty()) return false;
    out.group = std::string(group);
    out.filter = std::string(filter);
    return true;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
    if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
        (filter[0] == '+' || filter[0] == '#'))
        return false;
    size_t fi = 0, ti = 0;
    while (true) {
        size_t fe = filter.find('/', fi);
        std::string_view fl =
            filter.substr(fi, fe == std::string_view::npos ? std::string_view::npos : fe - fi);
        if (fl == "#") return true;
        size_t te = topic.find('/', ti);
        bool topic_done = ti > topic.size();
        if (topic_done) return false;
        std::string_view tl =
            topic.substr(ti, te == std::string_view::npos ? std::string_view::npos : te - ti);
        if (fl != "+" && fl != tl) return false;
        bool f_last = fe == std::string_view::npos;
        bool t_last = te == std::string_view::npos;
        if (f_last && t_last) return true;
        if (f_last) return false;
        if (t_last) {
            // The topic ended; only a trailing "/#" still matches ("a/#" matches "a").
            return filter.substr(fe + 1) == "#";
        }
        fi = fe + 1;
        ti = te + 1;
    }
}

}  // namespace trestle::core
