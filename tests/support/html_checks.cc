#include "tests/support/html_checks.h"

#include <fmt/format.h>

namespace cf::test {

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string self_contained_problem(const std::string& html) {
  if (html.rfind("<!DOCTYPE html>", 0) != 0) return "the page does not start with a doctype";
  for (const char* external :
       {"src=", "href=", "@import", "url(", "<link", "fetch(", "XMLHttpRequest", "@font-face"}) {
    if (html.find(external) != std::string::npos) return fmt::format("it holds {}", external);
  }
  for (const char* element : {"table", "tr", "svg", "figure", "script"}) {
    const std::size_t open =
        count_of(html, fmt::format("<{}>", element)) + count_of(html, fmt::format("<{} ", element));
    const std::size_t close = count_of(html, fmt::format("</{}>", element));
    if (open != close) {
      return fmt::format("<{}> opens {} times and closes {} times", element, open, close);
    }
  }
  return "";
}

std::string tips_json_after(const std::string& html, std::size_t from) {
  const std::string open = "<script type=\"application/json\" class=\"tips\">";
  const std::size_t start = html.find(open, from);
  if (start == std::string::npos) return "";
  const std::size_t end = html.find("</script>", start);
  return html.substr(start + open.size(), end - start - open.size());
}

}  // namespace cf::test
