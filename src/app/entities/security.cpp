// sslProfile and userStore: configured, read by QUERY/READ (passwords as ***); changed by
// editing the files they name, which are reloaded.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider configured(const View& view, std::string_view type) {
    Provider p;
    p.query = [&view, t = std::string(type)] {
        std::vector<json::Object> rows;
        for (const auto& e : view.entities(t)) rows.push_back(entity_row(e));
        return rows;
    };
    return p;
}

}  // namespace trestle::app::entities
