// Every report rendered in a real browser (headless chromium): the page's script runs to the end
// without an error or a console message, the DOM the browser built holds every track, op, cell,
// curve and marker the file has, and a screenshot of it is drawn (not blank). Skipped, saying
// what to install, when chromium or Python's PIL is missing (scripts/install-deps.sh --test
// installs both).
#include "tests/support/browser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/html_checks.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::count_of;
using test::run_chunkflow;

class BrowserReport : public testing::Test {
 protected:
  void SetUp() override {
    if (test::chromium_program().empty()) {
      GTEST_SKIP() << "no chromium to render the reports in (apt-get install chromium, or "
                      "scripts/install-deps.sh --test)";
    }
    python_ = test::python_with("PIL");
    if (python_.empty()) {
      GTEST_SKIP() << "no Python with PIL to read the screenshots (apt-get install python3-pil, "
                      "or scripts/install-deps.sh --test)";
    }
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  // Renders `html_path`: the script finished, nothing on the console, and each of `elements`
  // as many times in the browser's DOM as in the file (and at least once). Then a screenshot
  // that is drawn. Returns the DOM.
  std::string check_rendered(const std::string& html_path,
                             const std::vector<std::string>& elements) {
    const std::string file = test::read_text(html_path);
    const test::RenderedPage page = test::render_page(html_path);
    EXPECT_EQ(page.run.exit_code, 0) << page.run.err;
    EXPECT_NE(page.dom.find("data-ready=\"1\""), std::string::npos)
        << "the report's script did not finish";
    EXPECT_EQ(page.dom.find("data-script-error=\""), std::string::npos)
        << page.dom.substr(0, page.dom.find("<head>"));
    for (const std::string& line : page.console) ADD_FAILURE() << "console: " << line;
    for (const std::string& element : elements) {
      EXPECT_GT(count_of(file, element), 0u) << element;
      EXPECT_EQ(count_of(page.dom, element), count_of(file, element)) << element;
    }
    const std::string png = html_path + ".png";
    const test::CommandResult shot = test::screenshot_page(html_path, png, 1280, 1600);
    EXPECT_EQ(shot.exit_code, 0) << shot.err;
    const test::CommandResult stats =
        test::run_program_until("/usr/bin/env", {python_, "tests/report/png_stats.py", png}, 120);
    EXPECT_EQ(stats.exit_code, 0) << stats.err;
    if (stats.exit_code == 0) {
      const nlohmann::json s = nlohmann::json::parse(stats.out);
      EXPECT_EQ(s.at("width"), 1280);
      EXPECT_EQ(s.at("height"), 1600);
      EXPECT_GT(s.at("non_white").get<double>(), 0.03) << stats.out;  // text, tables, figures
      EXPECT_GT(s.at("colours").get<int>(), 16) << stats.out;
    }
    return page.dom;
  }

  test::TempDir dir_;
  std::string python_;
};

// The 72B / 256K / pp 8 job of examples/ with its baseline: the report's largest case.
TEST_F(BrowserReport, Simulate) {
  const std::string html = path("simulate.html");
  const test::CommandResult r =
      run_chunkflow({"simulate", "examples/qwen2.5-72b-256k.yaml", "--baseline",
                     "examples/qwen2.5-72b-256k-baseline.yaml", "--html", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string dom =
      check_rendered(html, {"<figure class=\"tl\"", "data-lanes=\"8\"", "<rect x=", " c\"",
                            "<path class=\"series", "<figure class=\"bars\"", "id=\"cp-only\""});
  EXPECT_EQ(count_of(dom, "<figure class=\"tl\""), 2u);
  EXPECT_EQ(count_of(dom, "<path class=\"series"), 2u * 8u);  // memory: a curve per stage
}

TEST_F(BrowserReport, Tune) {
  const std::string html = path("tune.html");
  const test::CommandResult r = run_chunkflow(
      {"tune", "--chunk-sizes", "4096,8192,16384,32768", "--k", "1,2,4,8", "--html", html, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_rendered(html, {"<figure class=\"heat\"", "<rect class=\"cell", "cell best",
                        "<table id=\"ranked\">", "<li>"});
}

TEST_F(BrowserReport, Sweep) {
  const std::string html = path("sweep.html");
  const test::CommandResult r =
      run_chunkflow({"sweep", "examples/sweep-gpus.yaml", "--html", html, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_rendered(html, {"<path class=\"series", "<circle", "<line class=\"ref\"",
                        "<table id=\"target\">", "<table id=\"points\">"});
}

TEST_F(BrowserReport, Compare) {
  const std::string trace = path("predicted.json"), html = path("compare.html");
  ASSERT_EQ(run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--trace", trace}).exit_code,
            0);
  const test::CommandResult r = run_chunkflow({"compare", trace, trace, "--html", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_rendered(html, {"<figure class=\"tl\"", "<rect x=", "<table>"});
}

// The script's interactions, driven by a test script appended to a copy of a report: a wheel
// over the middle of a timeline zooms it to 80% around that point and redraws the time axis;
// moving over the first bar shows its hover text; the critical-path box dims the other ops.
TEST_F(BrowserReport, ZoomHoverAndTheCriticalPathBoxWork) {
  const std::string html = path("simulate.html");
  ASSERT_EQ(run_chunkflow({"simulate", "examples/qwen2.5-7b-32k.yaml", "--html", html}).exit_code,
            0);
  std::string page = test::read_text(html);
  const std::string drive = R"(<script>
(function () {
  var body = document.body, plot = document.querySelector('svg.plot');
  var axis = document.querySelector('g.taxis'), before = axis.textContent;
  var r = plot.getBoundingClientRect();
  plot.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + r.width / 2,
      clientY: r.top + 5, bubbles: true, cancelable: true}));
  body.setAttribute('data-test-viewbox', plot.getAttribute('viewBox'));
  body.setAttribute('data-test-axis-redrawn', String(axis.textContent !== before));
  var bar = plot.querySelector('rect');
  bar.dispatchEvent(new MouseEvent('mousemove', {clientX: 20, clientY: 20, bubbles: true}));
  var tip = document.getElementById('tip');
  body.setAttribute('data-test-tip', tip.style.display + '|' + tip.textContent);
  plot.dispatchEvent(new MouseEvent('dblclick', {bubbles: true}));
  body.setAttribute('data-test-reset', plot.getAttribute('viewBox'));
  var box = document.getElementById('cp-only');
  box.checked = true;
  box.dispatchEvent(new Event('change'));
  body.setAttribute('data-test-cp-only', String(body.classList.contains('cp-only')));
})();
</script>
</body>)";
  const size_t end = page.rfind("</body>");
  ASSERT_NE(end, std::string::npos);
  page.replace(end, 7, drive);
  const std::string driven = path("driven.html");
  {
    std::ofstream out(driven, std::ios::binary);
    out << page;
  }
  const test::RenderedPage rendered = test::render_page(driven);
  ASSERT_EQ(rendered.run.exit_code, 0) << rendered.run.err;
  for (const std::string& line : rendered.console) ADD_FAILURE() << "console: " << line;
  const std::string& dom = rendered.dom;
  // The plot is 1080 px wide: 80% of it is 864, kept centred on the wheel: x0 = 108.
  const std::string plot_height = [&] {
    const size_t at = page.find("<svg class=\"plot\"");
    const size_t h = page.find("height=\"", at) + 8;
    return page.substr(h, page.find('"', h) - h);
  }();
  EXPECT_NE(dom.find("data-test-viewbox=\"108 0 864 " + plot_height + "\""), std::string::npos)
      << dom.substr(dom.find("<body"), 400);
  EXPECT_NE(dom.find("data-test-axis-redrawn=\"true\""), std::string::npos);
  EXPECT_NE(dom.find("data-test-reset=\"0 0 1080 " + plot_height + "\""), std::string::npos);
  EXPECT_NE(dom.find("data-test-cp-only=\"true\""), std::string::npos);
  // The first bar's hover text, from the figure's tips.
  const nlohmann::json tips = nlohmann::json::parse(test::tips_json_after(page, 0));
  ASSERT_FALSE(tips.empty());
  std::string first = tips[0].get<std::string>();
  EXPECT_NE(dom.find("data-test-tip=\"block|" + first.substr(0, first.find('\n'))),
            std::string::npos)
      << first;
}

}  // namespace
}  // namespace cf
