// The grammar of chunkflow's mark names (profile_marks.h); the reader keeps the marks
// (profile_events.cc).
#include "traces/profile_marks.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace cf {
namespace {

using json = nlohmann::json;

// "12" → 12: decimal digits only, below 10^9.
std::optional<int> small_count(std::string_view text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != text.npos) {
    return std::nullopt;
  }
  int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

ParsedMark malformed(std::string why) {
  return {ParsedMark::Result::kMalformed, {}, std::move(why)};
}

}  // namespace

ParsedMark parse_mark(std::string_view name) {
  std::string_view rest = name.substr(kMarkPrefix.size());
  std::vector<std::string_view> fields;
  for (std::size_t at = 0;;) {
    const std::size_t colon = rest.find(':', at);
    fields.push_back(rest.substr(at, colon == std::string_view::npos ? colon : colon - at));
    if (colon == std::string_view::npos) break;
    at = colon + 1;
  }
  const std::string_view head = fields[0];
  MarkOp op;
  bool takes_chunk = true;
  if (std::optional<Pass> pass = pass_from_name(head)) {
    op.pass = pass;
  } else if (head == "send" || head == "recv") {
    op.kind = head == "send" ? OpKind::kSend : OpKind::kRecv;
  } else if (head == "optimizer" || head == "dp_reduce") {
    op.kind = head == "optimizer" ? OpKind::kOptimizer : OpKind::kDpReduce;
    takes_chunk = false;
  } else {
    // A name of no op, unless it has a mark's fields: then its kind is what is wrong.
    for (std::size_t i = 1; i < fields.size(); ++i) {
      if (fields[i].starts_with("chunk=") || fields[i].starts_with("mc=")) {
        return malformed(
            fmt::format("unknown op \"{}\" (F, F*, R, B, send, recv, optimizer, "
                        "dp_reduce)",
                        head));
      }
    }
    return {};
  }
  if (!takes_chunk) {
    if (fields.size() > 1) {
      return malformed(fmt::format("{} takes no fields, got \"{}\"", head, fields[1]));
    }
    return {ParsedMark::Result::kOp, op, ""};
  }
  bool has_chunk = false, has_mc = false;
  for (std::size_t i = 1; i < fields.size(); ++i) {
    const std::string_view field = fields[i];
    const std::size_t eq = field.find('=');
    const std::string_view key = field.substr(0, eq);
    if (eq == std::string_view::npos || (key != "chunk" && key != "mc")) {
      return malformed(fmt::format("expected chunk=C or mc=M, got \"{}\"", field));
    }
    bool& seen = key == "chunk" ? has_chunk : has_mc;
    if (seen) return malformed(fmt::format("{} given twice", key));
    seen = true;
    const std::optional<int> value = small_count(field.substr(eq + 1));
    if (!value) {
      return malformed(fmt::format("{}: expected a count (0, 1, 2, ...), got \"{}\"", key,
                                   field.substr(eq + 1)));
    }
    (key == "chunk" ? op.chunk : op.model_chunk) = *value;
  }
  if (!has_chunk) return malformed(fmt::format("{} needs chunk=C", head));
  return {ParsedMark::Result::kOp, op, ""};
}

std::string mark_text(const std::string& name) {
  return json(name.substr(0, 80)).dump(-1, ' ', true, json::error_handler_t::replace);
}

std::string mark_name(const MarkOp& op) {
  std::string name(kMarkPrefix);
  name += op.kind == OpKind::kCompute ? pass_name(op.pass) : op_kind_name(op.kind);
  if (op.chunk >= 0) name += fmt::format(":chunk={}", op.chunk);
  if (op.model_chunk != 0) name += fmt::format(":mc={}", op.model_chunk);
  return name;
}

}  // namespace cf
