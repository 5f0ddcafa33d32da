// The SAX handler of the profile reader: its state, and the scratch record one event's fields
// are gathered into. Internal to traces/ (profile_reader.cc reads the JSON structure and
// checks each field's type, profile_events.cc turns a finished event into what ProfileEvents
// keeps); the public face is traces/profile.h.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "traces/profile_events.h"
#include "traces/profile_input.h"

namespace cf::profile_internal {

using json = nlohmann::json;

// What an open JSON container is to the reader.
enum class Frame : uint8_t {
  kTop,          // the root object of a Kineto trace
  kEvents,       // traceEvents, or the root list of a legacy trace
  kEvent,        // one event object
  kArgs,         // its "args"
  kDistributed,  // distributedInfo
  kDeviceList,   // deviceProperties
  kDevice,       // one of its entries
  kDims,         // args "Input Dims": one entry per input
  kDimsEntry,    // one input's dimensions (an empty list for a non-tensor input)
  kTypes,        // args "Input type": one string per input
  kSkip,         // anything else, read past
};

// The keys the reader uses, by the object they belong to; kOther for every other key (its
// value is read past).
// clang-format off
enum class Key : uint8_t {
  kOther,
  kTraceEvents, kDistributedInfo, kDeviceProperties, kChunkflow,                    // top
  kName, kPh, kCat, kTs, kDur, kPid, kTid, kArgs,                                   // event
  kDevice, kStream, kTotalAllocated, kDeviceId,                                     // args
  kCollectiveName, kInNelems, kOutNelems, kDtype, kGroupSize,                       // args
  kInputDims, kInputType, kExternalId,                                              // args
  kRank, kWorldSize, kBackend,                                                      // distributedInfo
  kId, kTotalGlobalMem, kComputeMajor, kComputeMinor,                               // a device
};
// clang-format on

// Bounds of one op's "Input Dims": inputs, and dimensions per input on average.
inline constexpr std::size_t kMaxShapeInputs = 64;
inline constexpr std::size_t kMaxShapeDims = 8;

// An integer or a string ("pid": 0, "pid": "Spans").
struct IdValue {
  bool present = false, is_text = false;
  int64_t number = 0;
  std::string text;
};

// The fields of the event being read; cleared (capacity kept) for each event.
struct EventScratch {
  bool has_name = false, has_ph = false, has_cat = false;
  std::string name, ph, cat;
  std::optional<int64_t> ts_ns, dur_ns;
  IdValue pid, tid;
  std::optional<int64_t> device, stream, total_allocated, device_id;
  std::optional<int64_t> in_nelems, out_nelems, group_size;
  bool has_collective = false, has_dtype = false;
  std::string collective, dtype;
  std::optional<int64_t> external_id;
  // "Input Dims" (record_shapes): the inputs' dimensions, flattened; an input's dims are
  // dims[dim_starts[i], dim_starts[i + 1]) (dim_starts ends with dims.size()). `shapes_usable`
  // turns false when an entry is not a list of non-negative integers or past the bounds of
  // profile_events.cc; the op then counts as one without shapes.
  bool has_dims = false, shapes_usable = true;
  std::vector<int64_t> dims;
  std::vector<int32_t> dim_starts;
  std::vector<std::string> input_types;
  std::string arg_error;  // a used arg of the wrong type: an error if the event uses it

  void clear() {
    has_name = has_ph = has_cat = has_collective = has_dtype = false;
    ts_ns.reset();
    dur_ns.reset();
    pid.present = tid.present = false;
    device.reset();
    stream.reset();
    total_allocated.reset();
    device_id.reset();
    in_nelems.reset();
    out_nelems.reset();
    group_size.reset();
    external_id.reset();
    has_dims = false;
    shapes_usable = true;
    dims.clear();
    dim_starts.clear();
    input_types.clear();
    arg_error.clear();
  }
};

struct DeviceScratch {
  std::optional<int64_t> id, total_memory, major, minor;
  std::string name;
};

// A scalar as the SAX callbacks deliver it.
struct Scalar {
  enum Type { kNull, kBool, kInteger, kFloat, kString } type = kNull;
  bool boolean = false;
  bool too_large = false;  // an unsigned integer past int64
  int64_t integer = 0;
  double number = 0;
  const std::string* text = nullptr;  // the number's text, or the string
};

// The handler json::sax_parse drives (nlohmann::json_sax by name: no virtual calls).
class ProfileHandler {
 public:
  ProfileHandler(const std::string& path, ProfileInput* input, ProfileEvents* out)
      : path_(path), input_(input), out_(out) {}

  // The SAX interface (nlohmann::json_sax, by name: no virtual calls). Strings, keys and
  // numbers mark their end on the input, which bounds what the lexer buffers between marks.
  bool null() { return scalar({Scalar::kNull}); }
  bool boolean(bool b) { return scalar({Scalar::kBool, b}); }
  bool number_integer(json::number_integer_t v) {
    input_->mark_token_end();
    return scalar({.type = Scalar::kInteger, .integer = v});
  }
  bool number_unsigned(json::number_unsigned_t v) {
    input_->mark_token_end();
    const bool too_large = v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    return scalar({.type = Scalar::kInteger,
                   .too_large = too_large,
                   .integer = too_large ? 0 : static_cast<int64_t>(v)});
  }
  bool number_float(json::number_float_t v, const std::string& text) {
    input_->mark_token_end();
    return scalar({.type = Scalar::kFloat, .number = v, .text = &text});
  }
  bool string(std::string& s) {
    input_->mark_token_end();
    return scalar({.type = Scalar::kString, .text = &s});
  }
  bool binary(json::binary_t&) { return fail("", "binary values are not JSON"); }
  bool key(std::string& text);
  bool start_object(std::size_t);
  bool end_object();
  bool start_array(std::size_t);
  bool end_array() {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t byte, const std::string& last_token, const json::exception& e);

  // After sax_parse: the first failure, with the input's own stop (a bound, a gzip error)
  // taking precedence over the parser's error it caused.
  Status failure() const;
  // After a successful parse: what the whole document must have.
  Status finish();

 private:
  bool scalar(const Scalar& v);
  bool event_field(const Scalar& v);
  void arg_field(const Scalar& v);
  bool distributed_field(const Scalar& v);
  bool device_field(const Scalar& v);
  bool finish_event();
  bool finish_complete_event();
  bool finish_device();
  bool add_device_activity(DeviceActivity activity);
  bool add_cpu_op();
  bool add_collective(std::map<ProfileCollectiveKey, ProfileCollective>* table);
  // The work of a CPU op with input shapes (FLOPs of a GEMM, bytes of an elementwise op), kept
  // for the calibration (ProfileEvents::cpu_work); kernels' External ids (kernel_external).
  void add_cpu_work(int64_t interval);
  double collective_bytes(CollectiveKind kind) const;
  // A "chunkflow:..." range (profile_marks.h): kept, counted when it names no op, an error when
  // malformed. `device`: a gpu_user_annotation copy.
  bool add_mark(bool device);
  bool shape_scalar(const Scalar& v);
  void skip(const std::string& kind);
  bool check_kept();

  // "traceEvents[12].args.stream": where the reader stands, for messages.
  std::string where(std::string_view key) const;
  std::string_view current_key_text() const;
  bool fail(std::string_view key, const std::string& message);
  bool wrong_type(const char* expected, const std::string& got);
  // An arg the reader uses, of the wrong type: kept in event_.arg_error (with its place) and
  // reported by fail_arg only if the finished event is one that uses it.
  void arg_wrong_type(const char* expected, const std::string& got);
  bool fail_arg();
  bool container_where_scalar(bool array);
  // A container opens: refused past limits::kMaxJsonDepth levels.
  bool check_depth();

  const std::string& path_;
  ProfileInput* input_;
  ProfileEvents* out_;
  std::vector<Frame> frames_;
  Key key_ = Key::kOther;
  int64_t event_index_ = -1;
  int64_t device_index_ = -1;
  bool seen_trace_events_ = false;
  EventScratch event_;
  DeviceScratch device_;
  std::string track_key_;
  std::unordered_map<std::string, int32_t> cpu_tracks_;
  std::map<std::pair<int64_t, int64_t>, int32_t> device_tracks_;
  int64_t name_bytes_ = 0;
  std::optional<Status> error_;
  bool own_error_ = false;
};

}  // namespace cf::profile_internal
