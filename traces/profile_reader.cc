// The streaming reader of PyTorch profiler traces (profile.h): nlohmann's SAX parser over a
// ProfileInput and a ProfileHandler (profile_handler.h) that follows the JSON structure, checks
// the type of every field it uses, and gathers one event's fields into a reused scratch record,
// judged when the event's object closes (profile_events.cc), so the document is never held.
// Format notes (docs/PROFILES.md): Kineto writes "ts"/"dur" in µs with three decimals
// ("12.345"), read here from the number's text to exact integer ns; "pid"/"tid" are integers
// for devices and threads, strings for spans ("Spans", "Traces"); torch 1.x without Kineto
// writes a bare list whose X events carry no "cat".
#include <fmt/format.h>

#include <cmath>
#include <istream>
#include <limits>

#include "core/limits.h"
#include "traces/profile.h"
#include "traces/profile_handler.h"

namespace cf {
namespace profile_internal {
namespace {

struct KeyName {
  std::string_view text;
  Key key;
};
constexpr KeyName kTopKeys[] = {{"traceEvents", Key::kTraceEvents},
                                {"distributedInfo", Key::kDistributedInfo},
                                {"deviceProperties", Key::kDeviceProperties},
                                {"chunkflow", Key::kChunkflow}};
constexpr KeyName kEventKeys[] = {{"name", Key::kName}, {"ph", Key::kPh},    {"cat", Key::kCat},
                                  {"ts", Key::kTs},     {"dur", Key::kDur},  {"pid", Key::kPid},
                                  {"tid", Key::kTid},   {"args", Key::kArgs}};
constexpr KeyName kArgKeys[] = {{"device", Key::kDevice},
                                {"stream", Key::kStream},
                                {"Total Allocated", Key::kTotalAllocated},
                                {"Device Id", Key::kDeviceId},
                                {"Collective name", Key::kCollectiveName},
                                {"In msg nelems", Key::kInNelems},
                                {"Out msg nelems", Key::kOutNelems},
                                {"dtype", Key::kDtype},
                                {"Group size", Key::kGroupSize},
                                {"Input Dims", Key::kInputDims},
                                {"Input type", Key::kInputType},
                                {"External id", Key::kExternalId}};
constexpr KeyName kDistributedKeys[] = {
    {"rank", Key::kRank}, {"world_size", Key::kWorldSize}, {"backend", Key::kBackend}};
constexpr KeyName kDeviceKeys[] = {{"id", Key::kId},
                                   {"name", Key::kName},
                                   {"totalGlobalMem", Key::kTotalGlobalMem},
                                   {"computeMajor", Key::kComputeMajor},
                                   {"computeMinor", Key::kComputeMinor}};

template <std::size_t N>
Key find_key(const std::string& text, const KeyName (&keys)[N]) {
  for (const KeyName& k : keys) {
    if (k.text == text) return k.key;
  }
  return Key::kOther;
}

template <std::size_t N>
std::string_view key_text(Key key, const KeyName (&keys)[N]) {
  for (const KeyName& k : keys) {
    if (k.key == key) return k.text;
  }
  return "?";
}

// "got ..." for messages: the value, cut to 40 characters, or its kind.
std::string describe(const Scalar& v) {
  switch (v.type) {
    case Scalar::kNull:
      return "null";
    case Scalar::kBool:
      return v.boolean ? "true" : "false";
    case Scalar::kInteger:
      return v.too_large ? "an integer past 2^63" : std::to_string(v.integer);
    case Scalar::kFloat:
      return *v.text;
    case Scalar::kString: {
      std::string s = v.text->size() > 40 ? v.text->substr(0, 37) + "..." : *v.text;
      return json(s).dump(-1, ' ', true, json::error_handler_t::replace);
    }
  }
  return "?";
}

// A trace time in µs as integer ns: from the number's text, exactly, for the plain decimals
// traces hold ("1234.567"; digits past the third decimal round half away from zero); through
// the double for exponent forms. nullopt past limits::kMaxProfileTimeNs.
std::optional<int64_t> micros_to_ns(const Scalar& v) {
  constexpr int64_t kMax = limits::kMaxProfileTimeNs;
  if (v.type == Scalar::kInteger) {
    if (v.too_large || v.integer > kMax / 1000 || v.integer < -kMax / 1000) return std::nullopt;
    return v.integer * 1000;
  }
  const std::string& text = *v.text;
  if (text.find_first_of("eE") != std::string::npos) {
    const double ns = v.number * 1000.0;
    if (!(std::fabs(ns) <= static_cast<double>(kMax))) return std::nullopt;
    return std::llround(ns);
  }
  std::size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) ++i;
  int64_t whole = 0;
  for (; i < text.size() && text[i] != '.'; ++i) {
    whole = whole * 10 + (text[i] - '0');
    if (whole > kMax / 1000) return std::nullopt;
  }
  int64_t frac = 0;
  int digits = 0;
  bool round_up = false;
  for (++i; i < text.size(); ++i, ++digits) {
    if (digits < 3) frac = frac * 10 + (text[i] - '0');
    if (digits == 3) round_up = text[i] >= '5';
  }
  for (; digits < 3; ++digits) frac *= 10;
  const int64_t ns = whole * 1000 + frac + (round_up ? 1 : 0);
  if (ns > kMax) return std::nullopt;
  return negative ? -ns : ns;
}

}  // namespace

std::string ProfileHandler::where(std::string_view key) const {
  std::string out;
  for (Frame f : frames_) {
    if (f == Frame::kEvents) {
      out = out_->format == ProfileFormat::kKineto ? "traceEvents" : "the event list";
    } else if (f == Frame::kEvent) {
      out = out_->format == ProfileFormat::kKineto ? fmt::format("traceEvents[{}]", event_index_)
                                                   : fmt::format("event [{}]", event_index_);
    } else if (f == Frame::kArgs) {
      out += ".args";
    } else if (f == Frame::kDistributed) {
      out = "distributedInfo";
    } else if (f == Frame::kDevice) {
      out = fmt::format("deviceProperties[{}]", device_index_);
    }
  }
  if (!key.empty()) out += (out.empty() ? "" : ".") + std::string(key);
  return out;
}

std::string_view ProfileHandler::current_key_text() const {
  switch (frames_.empty() ? Frame::kSkip : frames_.back()) {
    case Frame::kTop:
      return key_text(key_, kTopKeys);
    case Frame::kEvent:
      return key_text(key_, kEventKeys);
    case Frame::kArgs:
      return key_text(key_, kArgKeys);
    case Frame::kDistributed:
      return key_text(key_, kDistributedKeys);
    case Frame::kDevice:
      return key_text(key_, kDeviceKeys);
    default:
      return "";
  }
}

bool ProfileHandler::fail(std::string_view key, const std::string& message) {
  const std::string at = where(key);
  error_ = Status::InvalidInput(fmt::format("{}: {}{}{} at byte {}", path_, at,
                                            at.empty() ? "" : ": ", message, input_->position()));
  own_error_ = true;
  return false;
}

void ProfileHandler::arg_wrong_type(const char* expected, const std::string& got) {
  if (!event_.arg_error.empty()) return;  // the first one is reported
  event_.arg_error = fmt::format("{}: expected {}, got {} at byte {}", where(current_key_text()),
                                 expected, got, input_->position());
}

bool ProfileHandler::fail_arg() {
  error_ = Status::InvalidInput(fmt::format("{}: {}", path_, event_.arg_error));
  own_error_ = true;
  return false;
}

bool ProfileHandler::wrong_type(const char* expected, const std::string& got) {
  return fail(current_key_text(), fmt::format("expected {}, got {}", expected, got));
}

// A container where the reader expects a scalar of the current key.
bool ProfileHandler::container_where_scalar(bool array) {
  return wrong_type(key_ == Key::kPid || key_ == Key::kTid ? "an integer or a string"
                    : key_ == Key::kName || key_ == Key::kPh || key_ == Key::kCat ||
                            key_ == Key::kBackend || key_ == Key::kCollectiveName ||
                            key_ == Key::kDtype
                        ? "a string"
                        : "a number",
                    array ? "an array" : "an object");
}

bool ProfileHandler::check_depth() {
  if (frames_.size() < static_cast<std::size_t>(limits::kMaxJsonDepth)) return true;
  // As core/json_reader.h's parse_json words it; N is the byte of the bracket.
  const std::string at = where("");
  error_ = Status::InvalidInput(fmt::format("{}: JSON nested deeper than {} at byte {}{}", path_,
                                            limits::kMaxJsonDepth, input_->position(),
                                            at.empty() ? "" : fmt::format(" (in {})", at)));
  own_error_ = true;
  return false;
}

bool ProfileHandler::key(std::string& text) {
  input_->mark_token_end();
  switch (frames_.back()) {
    case Frame::kTop:
      key_ = find_key(text, kTopKeys);
      if (key_ == Key::kChunkflow) {
        return fail("",
                    "a \"chunkflow\" header: chunkflow's own trace format, not a PyTorch "
                    "profile (`chunkflow compare` reads it as a measured trace)");
      }
      break;
    case Frame::kEvent:
      key_ = find_key(text, kEventKeys);
      break;
    case Frame::kArgs:
      key_ = find_key(text, kArgKeys);
      break;
    case Frame::kDistributed:
      key_ = find_key(text, kDistributedKeys);
      break;
    case Frame::kDevice:
      key_ = find_key(text, kDeviceKeys);
      break;
    default:
      break;
  }
  return true;
}

bool ProfileHandler::start_object(std::size_t) {
  if (!check_depth()) return false;
  if (frames_.empty()) {
    out_->format = ProfileFormat::kKineto;
    frames_.push_back(Frame::kTop);
    return true;
  }
  const Frame frame = frames_.back();
  Frame next = Frame::kSkip;
  switch (frame) {
    case Frame::kTop:
      if (key_ == Key::kTraceEvents || key_ == Key::kDeviceProperties) {
        return wrong_type("a JSON array", "an object");
      }
      if (key_ == Key::kDistributedInfo) next = Frame::kDistributed;
      break;
    case Frame::kEvents:
      ++event_index_;
      event_.clear();
      next = Frame::kEvent;
      break;
    case Frame::kEvent:
      if (key_ == Key::kArgs) {
        next = Frame::kArgs;
      } else if (key_ != Key::kOther) {
        return container_where_scalar(false);
      }
      break;
    case Frame::kArgs:
      if (key_ == Key::kInputDims) {
        event_.has_dims = true;
        event_.shapes_usable = false;
      } else if (key_ != Key::kOther && key_ != Key::kInputType && event_.arg_error.empty()) {
        arg_wrong_type(
            key_ == Key::kCollectiveName || key_ == Key::kDtype ? "a string" : "an integer",
            "an object");
      }
      break;
    case Frame::kDims:
    case Frame::kDimsEntry:
    case Frame::kTypes:
      event_.shapes_usable = false;
      break;
    case Frame::kDistributed:
    case Frame::kDevice:
      if (key_ != Key::kOther) return container_where_scalar(false);
      break;
    case Frame::kDeviceList:
      ++device_index_;
      device_ = DeviceScratch{};
      next = Frame::kDevice;
      break;
    case Frame::kSkip:
      break;
  }
  frames_.push_back(next);
  key_ = Key::kOther;
  return true;
}

bool ProfileHandler::start_array(std::size_t) {
  if (!check_depth()) return false;
  if (frames_.empty()) {
    out_->format = ProfileFormat::kLegacyList;
    seen_trace_events_ = true;
    frames_.push_back(Frame::kEvents);
    return true;
  }
  Frame next = Frame::kSkip;
  switch (frames_.back()) {
    case Frame::kTop:
      if (key_ == Key::kTraceEvents) {
        seen_trace_events_ = true;
        next = Frame::kEvents;
      } else if (key_ == Key::kDeviceProperties) {
        next = Frame::kDeviceList;
      } else if (key_ == Key::kDistributedInfo) {
        return wrong_type("a JSON object", "an array");
      }
      break;
    case Frame::kEvents:
      ++event_index_;
      frames_.push_back(Frame::kEvent);  // for where()
      return fail("", "expected an event object, got an array");
    case Frame::kDeviceList:
      ++device_index_;
      frames_.push_back(Frame::kDevice);
      return fail("", "expected an object, got an array");
    case Frame::kEvent:
      if (key_ == Key::kArgs) return wrong_type("a JSON object", "an array");
      if (key_ != Key::kOther) return container_where_scalar(true);
      break;
    case Frame::kArgs:
      if (key_ == Key::kInputDims) {
        event_.has_dims = true;
        next = Frame::kDims;
      } else if (key_ == Key::kInputType) {
        next = Frame::kTypes;
      } else if (key_ != Key::kOther && event_.arg_error.empty()) {
        arg_wrong_type(
            key_ == Key::kCollectiveName || key_ == Key::kDtype ? "a string" : "an integer",
            "an array");
      }
      break;
    case Frame::kDistributed:
    case Frame::kDevice:
      if (key_ != Key::kOther) return container_where_scalar(true);
      break;
    case Frame::kDims:
      // One input's dimensions; bounded as profile_events.cc reads them.
      if (event_.dim_starts.size() >= kMaxShapeInputs) {
        event_.shapes_usable = false;
      } else {
        event_.dim_starts.push_back(static_cast<int32_t>(event_.dims.size()));
        next = Frame::kDimsEntry;
      }
      break;
    case Frame::kDimsEntry:  // a list of tensors (TensorList): not a shape the fits read
    case Frame::kTypes:
      event_.shapes_usable = false;
      break;
    case Frame::kSkip:
      break;
  }
  frames_.push_back(next);
  return true;
}

bool ProfileHandler::end_object() {
  const Frame frame = frames_.back();
  frames_.pop_back();
  if (frame == Frame::kEvent) return finish_event();
  if (frame == Frame::kDevice) return finish_device();
  return true;
}

bool ProfileHandler::scalar(const Scalar& v) {
  if (frames_.empty()) {
    return fail("", fmt::format("expected a JSON object with traceEvents, or a list of events, "
                                "got {}",
                                describe(v)));
  }
  switch (frames_.back()) {
    case Frame::kSkip:
      return true;
    case Frame::kTop:
      if (key_ == Key::kTraceEvents || key_ == Key::kDeviceProperties) {
        return wrong_type("a JSON array", describe(v));
      }
      if (key_ == Key::kDistributedInfo) return wrong_type("a JSON object", describe(v));
      return true;
    case Frame::kEvents:
      ++event_index_;
      frames_.push_back(Frame::kEvent);  // for where()
      return fail("", fmt::format("expected an event object, got {}", describe(v)));
    case Frame::kDeviceList:
      ++device_index_;
      frames_.push_back(Frame::kDevice);
      return fail("", fmt::format("expected an object, got {}", describe(v)));
    case Frame::kEvent:
      return event_field(v);
    case Frame::kArgs:
      arg_field(v);
      return true;
    case Frame::kDistributed:
      return distributed_field(v);
    case Frame::kDevice:
      return device_field(v);
    case Frame::kDims:
    case Frame::kDimsEntry:
    case Frame::kTypes:
      return shape_scalar(v);
  }
  return true;
}

// Inside "Input Dims" or "Input type". Shapes are optional: what is not a list of lists of
// non-negative integers (or of strings) leaves the op without shapes, never an error.
bool ProfileHandler::shape_scalar(const Scalar& v) {
  switch (frames_.back()) {
    case Frame::kDimsEntry:
      if (v.type != Scalar::kInteger || v.too_large || v.integer < 0 ||
          event_.dims.size() >= kMaxShapeInputs * kMaxShapeDims) {
        event_.shapes_usable = false;
      } else {
        event_.dims.push_back(v.integer);
      }
      return true;
    case Frame::kTypes:
      if (v.type != Scalar::kString || event_.input_types.size() >= kMaxShapeInputs) {
        event_.shapes_usable = false;
      } else {
        event_.input_types.push_back(v.text->substr(0, 32));
      }
      return true;
    default:  // a scalar in place of an input's list
      event_.shapes_usable = false;
      return true;
  }
}

bool ProfileHandler::event_field(const Scalar& v) {
  switch (key_) {
    case Key::kName:
    case Key::kPh:
    case Key::kCat: {
      if (v.type != Scalar::kString) return wrong_type("a string", describe(v));
      std::string& field = key_ == Key::kName ? event_.name
                           : key_ == Key::kPh ? event_.ph
                                              : event_.cat;
      field = *v.text;
      (key_ == Key::kName ? event_.has_name
       : key_ == Key::kPh ? event_.has_ph
                          : event_.has_cat) = true;
      return true;
    }
    case Key::kTs:
    case Key::kDur: {
      if (v.type != Scalar::kInteger && v.type != Scalar::kFloat) {
        return wrong_type("a number (µs)", describe(v));
      }
      const std::optional<int64_t> ns = micros_to_ns(v);
      if (!ns) {
        return fail(
            current_key_text(),
            fmt::format("{} µs is out of range (times up to 2^61 ns, core/limits.h)", describe(v)));
      }
      if (key_ == Key::kDur && *ns < 0) {
        return fail(current_key_text(), fmt::format("negative duration {} µs", describe(v)));
      }
      (key_ == Key::kTs ? event_.ts_ns : event_.dur_ns) = *ns;
      return true;
    }
    case Key::kPid:
    case Key::kTid: {
      IdValue& id = key_ == Key::kPid ? event_.pid : event_.tid;
      if (v.type == Scalar::kString) {
        id.is_text = true;
        id.text = *v.text;
      } else if (v.type == Scalar::kInteger && !v.too_large) {
        id.is_text = false;
        id.number = v.integer;
      } else {
        return wrong_type("an integer or a string", describe(v));
      }
      id.present = true;
      return true;
    }
    case Key::kArgs:
      return wrong_type("a JSON object", describe(v));
    default:
      return true;
  }
}

void ProfileHandler::arg_field(const Scalar& v) {
  auto bad = [&](const char* expected) { arg_wrong_type(expected, describe(v)); };
  const bool integer = v.type == Scalar::kInteger && !v.too_large;
  switch (key_) {
    case Key::kDevice:
    case Key::kStream:
    case Key::kTotalAllocated:
    case Key::kDeviceId:
    case Key::kInNelems:
    case Key::kOutNelems:
    case Key::kGroupSize: {
      if (!integer) return bad("an integer");
      const bool count = key_ == Key::kInNelems || key_ == Key::kOutNelems ||
                         key_ == Key::kGroupSize || key_ == Key::kTotalAllocated;
      if (count && v.integer < 0) return bad("a count of at least 0");
      std::optional<int64_t>* field[] = {
          &event_.device,    &event_.stream,     &event_.total_allocated, &event_.device_id,
          &event_.in_nelems, &event_.out_nelems, &event_.group_size};
      const Key keys[] = {Key::kDevice,   Key::kStream,    Key::kTotalAllocated, Key::kDeviceId,
                          Key::kInNelems, Key::kOutNelems, Key::kGroupSize};
      for (int i = 0; i < 7; ++i) {
        if (keys[i] == key_) *field[i] = v.integer;
      }
      return;
    }
    case Key::kExternalId:
      if (!integer) return bad("an integer");
      event_.external_id = v.integer;
      return;
    case Key::kInputDims:
    case Key::kInputType:
      event_.has_dims = event_.has_dims || key_ == Key::kInputDims;
      event_.shapes_usable = false;
      return;
    case Key::kCollectiveName:
    case Key::kDtype:
      if (v.type != Scalar::kString) return bad("a string");
      (key_ == Key::kDtype ? event_.dtype : event_.collective) = *v.text;
      (key_ == Key::kDtype ? event_.has_dtype : event_.has_collective) = true;
      return;
    default:
      return;
  }
}

// distributedInfo: "rank" and "world_size" as integers (on-demand traces write them from
// strings, so a string of digits is read as its number).
bool ProfileHandler::distributed_field(const Scalar& v) {
  if (key_ == Key::kBackend) {
    if (v.type != Scalar::kString) return wrong_type("a string", describe(v));
    out_->backend = v.text->substr(0, 64);
    return true;
  }
  if (key_ != Key::kRank && key_ != Key::kWorldSize) return true;
  std::optional<int64_t> number;
  if (v.type == Scalar::kInteger && !v.too_large) {
    number = v.integer;
  } else if (v.type == Scalar::kString && !v.text->empty() && v.text->size() <= 9 &&
             v.text->find_first_not_of("0123456789") == std::string::npos) {
    number = std::stoll(*v.text);
  }
  // rank in [0, kMaxGpus), world_size in [1, kMaxGpus].
  const int64_t low = key_ == Key::kRank ? 0 : 1;
  const int64_t high = key_ == Key::kRank ? limits::kMaxGpus - 1 : limits::kMaxGpus;
  if (!number || *number < low || *number > high) {
    return fail(current_key_text(), fmt::format("expected an integer in [{}, {}] ({}), got {}", low,
                                                high, limits::kMaxGpusWhy, describe(v)));
  }
  (key_ == Key::kRank ? out_->rank : out_->world_size) = *number;
  return true;
}

bool ProfileHandler::device_field(const Scalar& v) {
  if (key_ == Key::kName) {
    if (v.type != Scalar::kString) return wrong_type("a string", describe(v));
    device_.name = v.text->substr(0, 256);
    return true;
  }
  if (key_ == Key::kOther) return true;
  if (v.type != Scalar::kInteger || v.too_large || v.integer < 0) {
    return wrong_type("an integer of at least 0", describe(v));
  }
  switch (key_) {
    case Key::kId:
      device_.id = v.integer;
      break;
    case Key::kTotalGlobalMem:
      device_.total_memory = v.integer;
      break;
    case Key::kComputeMajor:
      device_.major = v.integer;
      break;
    case Key::kComputeMinor:
      device_.minor = v.integer;
      break;
    default:
      break;
  }
  return true;
}

bool ProfileHandler::parse_error(std::size_t byte, const std::string& last_token,
                                 const json::exception& e) {
  if (error_) return false;
  const std::string at = where("");
  const std::string in = at.empty() ? "" : fmt::format(" (in {})", at);
  std::string message;
  if (e.id == 406) {  // nlohmann's number overflow: 1e999
    message =
        fmt::format("number out of range: {} at byte {}{}", last_token.substr(0, 40), byte, in);
  } else if (input_->stopped()) {
    message = "";  // failure() reports the input's stop
  } else {
    std::string reason = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error ..."
    if (const std::size_t cut = reason.find("] "); cut != std::string::npos) {
      reason = reason.substr(cut + 2);
    }
    // The reason quotes the last token, which may be long or not UTF-8: cut and escape it.
    if (reason.size() > 300) reason = reason.substr(0, 297) + "...";
    std::string printable;
    for (unsigned char c : reason) {
      printable += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c))
                                         : fmt::format("\\x{:02x}", c);
    }
    const bool truncated = reason.find("unexpected end of input") != std::string::npos;
    message = fmt::format("{} at byte {}{}: {}",
                          truncated ? "truncated: the JSON ends early" : "not valid JSON", byte, in,
                          printable);
  }
  error_ = Status::InvalidInput(fmt::format("{}: {}", path_, message));
  return false;
}

Status ProfileHandler::failure() const {
  if (own_error_ && error_) return *error_;
  if (input_->stopped()) {
    const std::string at = where("");
    return Status::InvalidInput(input_->stopped()->message() +
                                (at.empty() ? "" : fmt::format(" (in {})", at)));
  }
  if (error_) return *error_;
  return Status::InvalidInput(fmt::format("{}: not valid JSON", path_));
}

Status ProfileHandler::finish() {
  if (input_->stopped()) return *input_->stopped();  // e.g. a gzip error after the JSON
  if (!seen_trace_events_) {
    return Status::InvalidInput(
        fmt::format("{}: no \"traceEvents\" key: not a PyTorch profiler trace (a JSON object with "
                    "traceEvents, or a list of events)",
                    path_));
  }
  if (out_->rank && out_->world_size && *out_->rank >= *out_->world_size) {
    return Status::InvalidInput(fmt::format("{}: distributedInfo: rank {} of a world of {}", path_,
                                            *out_->rank, *out_->world_size));
  }
  return Status::Ok();
}

}  // namespace profile_internal

StatusOr<RankProfile> read_profile(const std::string& path, int file_index,
                                   const ProfileProgress& progress) {
  CF_ASSIGN_OR_RETURN(std::unique_ptr<ProfileInput> input, ProfileInput::open(path, progress));
  ProfileEvents events;
  events.path = path;
  profile_internal::ProfileHandler handler(path, input.get(), &events);
  std::istream stream(input.get());
  if (!nlohmann::json::sax_parse(stream, &handler)) return handler.failure();
  CF_RETURN_IF_ERROR(handler.finish());
  return summarize_profile(std::move(events), file_index);
}

}  // namespace cf
