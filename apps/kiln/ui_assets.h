// The web UI built into the binary (docs/ui.md); defined by the source that cmake/embed_ui.cmake
// generates from ui/ at build time.
#pragma once

#include <span>

#include "kiln/http/static_site.h"

namespace kiln::app {

std::span<const http::StaticAsset> embedded_ui();
// False when the build had no Node.js/npm packages: the UI is then one page saying so.
bool embedded_ui_built();

}  // namespace kiln::app
