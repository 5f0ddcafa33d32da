#include "tests/support/browser.h"

#include <filesystem>
#include <sstream>

namespace cf::test {
namespace {

std::vector<std::string> headless_args() {
  return {"--headless",     "--no-sandbox",         "--disable-gpu",           "--hide-scrollbars",
          "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0"};
}

std::string file_url(const std::string& path) {
  return "file://" + std::filesystem::absolute(path).string();
}

}  // namespace

std::string chromium_program() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return "";
}

RenderedPage render_page(const std::string& html_path) {
  std::vector<std::string> args = headless_args();
  args.push_back("--dump-dom");
  args.push_back(file_url(html_path));
  RenderedPage page;
  page.run = run_program_until(chromium_program(), args, 120);
  page.dom = page.run.out;
  // chromium logs a page's console as "[pid:tid:time:INFO:CONSOLE(line)] "message", source: …".
  std::istringstream err(page.run.err);
  for (std::string line; std::getline(err, line);) {
    if (line.find(":CONSOLE") != std::string::npos) page.console.push_back(line);
  }
  return page;
}

CommandResult screenshot_page(const std::string& html_path, const std::string& png_path, int width,
                              int height) {
  std::vector<std::string> args = headless_args();
  args.push_back("--screenshot=" + std::filesystem::absolute(png_path).string());
  args.push_back("--window-size=" + std::to_string(width) + "," + std::to_string(height));
  args.push_back(file_url(html_path));
  return run_program_until(chromium_program(), args, 120);
}

}  // namespace cf::test
