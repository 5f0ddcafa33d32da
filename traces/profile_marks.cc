// The chunkflow marks of a profile (profile_marks.h): the grammar of their names, and a small
// SAX handler that keeps the X events named "chunkflow:..." and reads past everything else.
// The file has passed read_profile (profile_reader.cc) first, which checks every field this
// pass relies on; this one checks again only what it needs to stay safe on any input.
#include "traces/profile_marks.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <istream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/limits.h"
#include "traces/profile.h"
#include "traces/profile_input.h"

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

// A name for messages: quoted, cut to 80 bytes, bytes that are not UTF-8 replaced.
std::string mark_text(const std::string& name) {
  return json(name.substr(0, 80)).dump(-1, ' ', true, json::error_handler_t::replace);
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

std::string mark_name(const MarkOp& op) {
  std::string name(kMarkPrefix);
  name += op.kind == OpKind::kCompute ? pass_name(op.pass) : op_kind_name(op.kind);
  if (op.chunk >= 0) name += fmt::format(":chunk={}", op.chunk);
  if (op.model_chunk != 0) name += fmt::format(":mc={}", op.model_chunk);
  return name;
}

namespace {

// A trace time in µs to integer ns, as the reader takes it (profile_reader.cc): exactly from
// the number's text for plain decimals, through the double for exponent forms. The reader has
// bounded every time already; past 2^61 ns here is nullopt all the same.
std::optional<int64_t> micros_to_ns(double value, const std::string* text) {
  constexpr int64_t kMax = limits::kMaxProfileTimeNs;
  if (text == nullptr || text->find_first_of("eE") != std::string::npos) {
    const double ns = value * 1000.0;
    if (!(std::fabs(ns) <= static_cast<double>(kMax))) return std::nullopt;
    return std::llround(ns);
  }
  const bool negative = (*text)[0] == '-';
  int64_t whole = 0, frac = 0;
  int digits = 0;
  bool round_up = false, past_point = false;
  for (std::size_t i = negative ? 1 : 0; i < text->size(); ++i) {
    const char c = (*text)[i];
    if (c == '.') {
      past_point = true;
    } else if (!past_point) {
      whole = whole * 10 + (c - '0');
      if (whole > kMax / 1000) return std::nullopt;
    } else {
      if (digits < 3) frac = frac * 10 + (c - '0');
      if (digits == 3) round_up = c >= '5';
      ++digits;
    }
  }
  for (; digits < 3; ++digits) frac *= 10;
  const int64_t ns = whole * 1000 + frac + (round_up ? 1 : 0);
  return negative ? -ns : ns;
}

// Keeps X events named "chunkflow:..."; reads past every other value. The document's root
// is an object with "traceEvents" (Kineto) or the event list itself (legacy).
class MarkHandler {
 public:
  MarkHandler(const std::string& path, ProfileInput* input, ProfileMarks* out)
      : path_(path), input_(input), out_(out) {}

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t v) {
    input_->mark_token_end();
    return number(static_cast<double>(v), nullptr);
  }
  bool number_unsigned(json::number_unsigned_t v) {
    input_->mark_token_end();
    return number(static_cast<double>(v), nullptr);
  }
  bool number_float(json::number_float_t v, const std::string& text) {
    input_->mark_token_end();
    return number(v, &text);
  }
  bool string(std::string& s) {
    input_->mark_token_end();
    if (in_event_field()) {
      if (key_ == "name") name_ = s, has_name_ = true;
      if (key_ == "ph") ph_ = s;
      if (key_ == "cat") cat_ = s, has_cat_ = true;
    }
    return true;
  }
  bool binary(json::binary_t&) { return true; }
  bool key(std::string& text) {
    input_->mark_token_end();
    if (in_event_field() || (depth_ == 1 && !legacy_)) key_ = text;
    if (depth_ == 1 && !legacy_ && text == "chunkflow") {
      // compare takes a file for a profile by the keys before its traceEvents; chunkflow
      // writes its header first, so only a file rewritten in another order gets here.
      return fail(
          "a \"chunkflow\" header after traceEvents: chunkflow's own trace format, not "
          "a PyTorch profile (write the header first)");
    }
    return true;
  }
  bool start_object(std::size_t) {
    if (depth_ == 0) legacy_ = false;
    if (++depth_ > limits::kMaxJsonDepth) return fail("JSON nested deeper than 64");
    if (depth_ == events_depth() + 1 && in_events_) begin_event();
    return true;
  }
  bool end_object() {
    if (depth_ == events_depth() + 1 && in_events_ && !finish_event()) return false;
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ == 0) legacy_ = true, in_events_ = true;
    if (depth_ == 1 && !legacy_ && key_ == "traceEvents") in_events_ = true;
    if (++depth_ > limits::kMaxJsonDepth) return fail("JSON nested deeper than 64");
    return true;
  }
  bool end_array() {
    if (depth_ == events_depth()) in_events_ = false;
    --depth_;
    return true;
  }
  bool parse_error(std::size_t byte, const std::string&, const json::exception&) {
    if (!error_) {
      error_ = input_->stopped()
                   ? *input_->stopped()
                   : Status::InvalidInput(fmt::format(
                         "{}: not valid JSON at byte {} (reading the marks)", path_, byte));
    }
    return false;
  }
  const std::optional<Status>& error() const { return error_; }

 private:
  // traceEvents' elements sit at depth 3 (root object, key, array), a list's at depth 2.
  int events_depth() const { return legacy_ ? 1 : 2; }
  bool in_event_field() const { return in_events_ && depth_ == events_depth() + 1; }
  bool number(double value, const std::string* text) {
    if (in_event_field() && (key_ == "ts" || key_ == "dur")) {
      (key_ == "ts" ? ts_ns_ : dur_ns_) = micros_to_ns(value, text);
    }
    return true;
  }
  void begin_event() {
    ++event_index_;
    has_name_ = has_cat_ = false;
    ph_.clear();
    ts_ns_.reset();
    dur_ns_.reset();
    key_.clear();
  }
  std::string where() const {
    return legacy_ ? fmt::format("event [{}]", event_index_)
                   : fmt::format("traceEvents[{}]", event_index_);
  }
  bool fail(const std::string& message) {
    error_ =
        Status::InvalidInput(fmt::format("{}: {} at byte {}", path_, message, input_->position()));
    return false;
  }
  bool finish_event();

  const std::string& path_;
  ProfileInput* input_;
  ProfileMarks* out_;
  int depth_ = 0;
  bool legacy_ = false, in_events_ = false;
  int64_t event_index_ = -1;
  std::string key_, name_, ph_, cat_;
  bool has_name_ = false, has_cat_ = false;
  std::optional<int64_t> ts_ns_, dur_ns_;
  std::optional<Status> error_;
};

bool MarkHandler::finish_event() {
  if (!has_name_ || ph_ != "X" || !name_.starts_with(kMarkPrefix)) return true;
  // Kineto: user_annotation (cpu_op accepted too) on the CPU, gpu_user_annotation on the
  // device; a legacy list's events have no category. Other categories (python_function, ...)
  // are not the range itself.
  const bool device = has_cat_ && cat_ == "gpu_user_annotation";
  if (has_cat_ && !device && cat_ != "user_annotation" && cat_ != "cpu_op") return true;
  const ParsedMark parsed = parse_mark(name_);
  if (parsed.result == ParsedMark::Result::kMalformed) {
    return fail(fmt::format("{}: malformed chunkflow mark {}: {} (docs/PROFILES.md, \"Marks\")",
                            where(), mark_text(name_), parsed.why));
  }
  if (parsed.result == ParsedMark::Result::kUnknown) {
    std::string name = name_.substr(0, 80);
    if (!out_->unknown.contains(name) && out_->unknown.size() >= 64) name = "(more names)";
    ++out_->unknown[name];
    return true;
  }
  if (!ts_ns_ || !dur_ns_ || *dur_ns_ < 0) {
    return fail(fmt::format("{}: the mark {} has no valid ts and dur", where(), mark_text(name_)));
  }
  if (static_cast<int64_t>(out_->cpu.size() + out_->device.size()) >=
      limits::kMaxProfileKeptEvents) {
    return fail(fmt::format("more than {} chunkflow marks", limits::kMaxProfileKeptEvents));
  }
  (device ? out_->device : out_->cpu)
      .push_back({parsed.op, *ts_ns_, *ts_ns_ + *dur_ns_, event_index_});
  return true;
}

}  // namespace

StatusOr<ProfileMarks> read_profile_marks(const std::string& path) {
  CF_ASSIGN_OR_RETURN(std::unique_ptr<ProfileInput> input, ProfileInput::open(path, nullptr));
  ProfileMarks marks;
  MarkHandler handler(path, input.get(), &marks);
  std::istream stream(input.get());
  if (!json::sax_parse(stream, &handler)) {
    if (handler.error()) return *handler.error();
    return Status::InvalidInput(fmt::format("{}: not valid JSON (reading the marks)", path));
  }
  if (input->stopped()) return *input->stopped();
  for (std::vector<ProfileMark>* list : {&marks.cpu, &marks.device}) {
    std::sort(list->begin(), list->end(), [](const ProfileMark& a, const ProfileMark& b) {
      return std::tie(a.start_ns, a.event_index) < std::tie(b.start_ns, b.event_index);
    });
  }
  return marks;
}

}  // namespace cf
