// Checks every HTML report test makes (reports of simulate, tune, sweep and compare): the page is
// one self-contained document — no external script, style, font or image, nothing fetched — and
// its elements are balanced. What a report shows is each test's own.
#pragma once

#include <cstddef>
#include <string>

namespace cf::test {

// Occurrences of `what` in `text`.
std::size_t count_of(const std::string& text, const std::string& what);

// "" when `html` is a whole page (doctype first) that loads nothing (no src=, href=, @import,
// url(, <link, fetch, XMLHttpRequest) and whose <table>, <tr>, <svg>, <figure> and <script>
// open and close as often; otherwise what is wrong.
std::string self_contained_problem(const std::string& html);

// The JSON text of the first <script type="application/json" class="tips"> after `from`.
std::string tips_json_after(const std::string& html, std::size_t from);

}  // namespace cf::test
