// The page the HTTP gateway serves at "/": server/web/index.html (plain HTML,
// CSS and JS, no external resources), compiled into the binary by CMake
// (server/web/embed.cmake).
#ifndef TRANSFORMER_SERVING_SERVER_WEB_WEB_PAGE_H_
#define TRANSFORMER_SERVING_SERVER_WEB_WEB_PAGE_H_

#include <string_view>

namespace ts::server::web {

// The bytes of index.html (UTF-8).
std::string_view IndexPage();

}  // namespace ts::server::web

#endif  // TRANSFORMER_SERVING_SERVER_WEB_WEB_PAGE_H_
