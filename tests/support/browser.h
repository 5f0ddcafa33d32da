// The headless browser the report tests render pages in: Debian's chromium (installed by
// scripts/install-deps.sh --test). A page's DOM after its scripts ran, what it wrote to the
// console, and a screenshot.
#pragma once

#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace cf::test {

// The chromium program, or "" when none is installed (the tests then skip, saying so).
std::string chromium_program();

struct RenderedPage {
  CommandResult run;
  std::string dom;                   // the DOM after the page's scripts ran (--dump-dom)
  std::vector<std::string> console;  // console messages and uncaught errors, one per line
};

// Loads `html_path` headless (no sandbox, no GPU: a container's root user has neither), lets
// its scripts run, and returns its DOM and console.
RenderedPage render_page(const std::string& html_path);

// Renders `html_path` in a `width` × `height` window to `png_path`.
CommandResult screenshot_page(const std::string& html_path, const std::string& png_path, int width,
                              int height);

}  // namespace cf::test
