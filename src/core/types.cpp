#include "trestle/core/types.hpp"

namespace trestle::core {

std::string_view to_string(Distribution d) {
    switch (d) {
        case Distribution::closest:
            return "closest";
        case Distribution::balanced:
            return "balanced";
        case Distribution::multicast:
            return "multicast";
        case Distribution::unavailable:
            return "unavailable";
    }
    return "balanced";
}

std::optional<Distribution> parse_distribution(std::string_view s) {
    if (s == "closest") return Distribution::closest;
    if (s == "balanced") return Distribution::balanced;
    if (s == "multicast") return Distribution::multicast;
    if (s == "unavailable") return Distribution::unavailable;
    return std::nullopt;
}

std::string_view to_string(Outcome o) {
    switch (o) {
        case Outcome::none:
            return "none";
        case Outcome::accepted:
            return "accepted";
        case Outcome::rejected:
            return "rejected";
        case Outcome::released:
            return "released";
        case Outcome::modified:
            return "modified";
    }
    return "none";
}

int aggregation_rank(Outcome o) {
    switch (o) {
        case Outcome::rejected:
            return 3;
        case Outcome::accepted:
            return 2;
        case Outcome::modified:
            return 1;
        case Outcome::released:
            return 0;
        case Outcome::none:
            return -1;
    }
    return -1;
}

}  // namespace trestle::core
