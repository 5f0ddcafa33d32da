// Trace <-> Chrome Trace Event JSON (trace.h): deterministic writer, strict reader.
// Not the comparison of two traces.
//
// Layout written (one event per line, keys in sorted order, numbers in nlohmann's shortest
// round-trip form):
//   {"chunkflow": {"format_version": 1, "source", "metrics", "peak_memory": [...]},
//    "displayTimeUnit": "ns",
//    "traceEvents": [ M events naming tracks, X events (ops, in trace order),
//                     C events (memory samples, in trace order) ]}
// Times: "ts"/"dur" in µs = ns / 1000 (at most 3 decimals, so ns precision). X events also
// carry exact "start_ns"/"end_ns" in args and those are what the reader keeps (checked
// against ts/dur). C events carry only {"bytes": N} in args (each arg of a counter becomes a
// plotted series), so the reader takes their time as round(ts * 1000): exact while
// |time_ns| < 2^50 (13 days), since the double nearest ns/1000 is then off by < 2^-3 ns
// after the multiplication; the writer checks that bound.
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/check.h"
#include "core/json_reader.h"
#include "traces/trace.h"

namespace cf {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;
constexpr int64_t kMaxCounterTimeNs = kMaxTraceTimeNs;

double ns_to_us(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string op_name(const TraceOp& op) {
  std::string name;
  if (op.kind == OpKind::kCompute && op.pass) {
    name = fmt::format("{}{}", pass_name(*op.pass), op.chunk);
  } else {
    const char* kind = op_kind_name(op.kind);
    name = op.chunk >= 0 ? fmt::format("{} {}", kind, op.chunk) : kind;
  }
  if (op.model_chunk != 0) name += fmt::format(" v{}", op.model_chunk);
  return name;
}

// "total" for the sample of all categories.
const char* counter_category(const std::optional<MemoryCategory>& category) {
  return category ? memory_category_name(*category) : "total";
}

std::string counter_name(int stage, const std::optional<MemoryCategory>& category) {
  return fmt::format("stage {} memory {}", stage, counter_category(category));
}

// Send and recv ops carry the message's size and the stage at its other end.
bool carries_message(OpKind kind) { return kind == OpKind::kSend || kind == OpKind::kRecv; }

// The args key of a class's share of an op: "gemm_ns", "attention_ns", ...
std::string class_arg(KernelClass kind) { return std::string(kernel_class_name(kind)) + "_ns"; }

// An op's class split, when its args carry one: all six keys, none negative, summing to its
// duration. Traces written before the split existed have none.
Status read_class_split(JsonReader& args, TraceOp* op) {
  if (!args.has(class_arg(KernelClass::kGemm))) return Status::Ok();
  ClassNs split{};
  int64_t sum = 0;
  for (KernelClass kind : kAllKernelClasses) {
    const std::string key = class_arg(kind);
    int64_t& ns = split[static_cast<int>(kind)];
    CF_RETURN_IF_ERROR(args.get(key, &ns));
    if (ns < 0 || ns > kMaxTraceTimeNs) {
      return args.error(key, fmt::format("{} is not a time in [0, 2^50] ns", ns));
    }
    sum += ns;
  }
  if (sum != op->duration_ns()) {
    return args.error(
        class_arg(KernelClass::kGemm),
        fmt::format("the class times sum to {} ns, not to the op's {} ns", sum, op->duration_ns()));
  }
  op->class_ns = split;
  return Status::Ok();
}

json metadata_event(const char* name, int pid, int tid, const std::string& label) {
  return json{{"name", name}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", label}}}};
}

// µs from "ts"/"dur" must agree with exact ns from args (within the 1 ns of rounding).
Status check_time(JsonReader& event, const std::string& key, double us, int64_t ns) {
  if (std::fabs(us * 1000.0 - static_cast<double>(ns)) > 1.0) {
    return event.error(key, fmt::format("{} µs disagrees with the {} ns in args", us, ns));
  }
  return Status::Ok();
}

Status read_op(JsonReader& event, Trace* trace) {
  TraceOp op;
  double ts_us = 0, dur_us = 0;
  std::string name, cat;
  CF_RETURN_IF_ERROR(event.get("name", &name));
  CF_RETURN_IF_ERROR(event.get("cat", &cat));
  CF_RETURN_IF_ERROR(event.get("pid", &op.dp_rank));
  CF_RETURN_IF_ERROR(event.get("tid", &op.stage));
  CF_RETURN_IF_ERROR(event.get("ts", &ts_us));
  CF_RETURN_IF_ERROR(event.get("dur", &dur_us));
  CF_ASSIGN_OR_RETURN(const json* args_json, event.find("args"));
  JsonReader args(*args_json, event.origin(), event.child_path("args"));
  CF_RETURN_IF_ERROR(args.check_object());
  std::string kind, pass;
  CF_RETURN_IF_ERROR(args.get("kind", &kind));
  CF_RETURN_IF_ERROR(args.get("pass", &pass));
  const std::optional<OpKind> parsed_kind = op_kind_from_name(kind);
  if (!parsed_kind) {
    return args.error("kind", fmt::format("unknown op kind \"{}\" (compute, send, recv, "
                                          "dp_reduce, optimizer)",
                                          kind));
  }
  op.kind = *parsed_kind;
  if (!pass.empty()) {
    op.pass = pass_from_name(pass);
    if (!op.pass) return args.error("pass", fmt::format("unknown pass \"{}\" (F, F*, R, B)", pass));
  }
  CF_RETURN_IF_ERROR(args.get("chunk", &op.chunk));
  CF_RETURN_IF_ERROR(args.get("model_chunk", &op.model_chunk));
  CF_RETURN_IF_ERROR(args.get("op_id", &op.op_id));
  CF_RETURN_IF_ERROR(args.get("start_ns", &op.start_ns));
  CF_RETURN_IF_ERROR(args.get("end_ns", &op.end_ns));
  CF_RETURN_IF_ERROR(args.get("tokens", &op.tokens));
  CF_RETURN_IF_ERROR(args.get("group", &op.group));
  CF_RETURN_IF_ERROR(args.get("index", &op.index));
  if (carries_message(op.kind)) {
    CF_RETURN_IF_ERROR(args.get("bytes", &op.bytes));
    CF_RETURN_IF_ERROR(args.get("peer", &op.peer_stage));
  }
  if (op.end_ns < op.start_ns) {
    return args.error("end_ns",
                      fmt::format("ends ({}) before it starts ({})", op.end_ns, op.start_ns));
  }
  CF_RETURN_IF_ERROR(read_class_split(args, &op));
  CF_RETURN_IF_ERROR(args.finish());
  if (cat != kind)
    return event.error("cat", fmt::format("\"{}\" but args.kind is \"{}\"", cat, kind));
  if (op.kind == OpKind::kSend) {
    if (op.stage < kSendTrack) {
      return event.error("tid", fmt::format("a send on tid {}, not on a send track ({} + stage)",
                                            op.stage, kSendTrack));
    }
    op.stage -= kSendTrack;
  }
  CF_RETURN_IF_ERROR(check_time(event, "ts", ts_us, op.start_ns));
  CF_RETURN_IF_ERROR(check_time(event, "dur", dur_us, op.duration_ns()));
  trace->ops.push_back(std::move(op));
  return Status::Ok();
}

Status read_counter(JsonReader& event, Trace* trace) {
  MemorySample sample;
  std::string name, cat;
  double ts_us = 0;
  CF_RETURN_IF_ERROR(event.get("name", &name));
  CF_RETURN_IF_ERROR(event.get("cat", &cat));
  CF_RETURN_IF_ERROR(event.get("pid", &sample.dp_rank));
  CF_RETURN_IF_ERROR(event.get("tid", &sample.stage));
  CF_RETURN_IF_ERROR(event.get("ts", &ts_us));
  const std::string prefix = fmt::format("stage {} memory ", sample.stage);
  if (cat != "memory" || name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) {
    return event.error("name", fmt::format("expected a memory counter \"{}CATEGORY\" in "
                                           "category \"memory\", got \"{}\" in \"{}\"",
                                           prefix, name, cat));
  }
  const std::string category = name.substr(prefix.size());
  if (category != "total") {
    sample.category = memory_category_from_name(category);
    if (!sample.category) {
      return event.error("name", fmt::format("unknown memory category \"{}\"", category));
    }
  }
  const double time_ns = std::nearbyint(ts_us * 1000.0);
  if (!(std::fabs(time_ns) < static_cast<double>(kMaxCounterTimeNs))) {
    return event.error("ts", fmt::format("{} µs is out of range", ts_us));
  }
  sample.time_ns = static_cast<int64_t>(time_ns);
  CF_ASSIGN_OR_RETURN(const json* args_json, event.find("args"));
  JsonReader args(*args_json, event.origin(), event.child_path("args"));
  CF_RETURN_IF_ERROR(args.check_object());
  CF_RETURN_IF_ERROR(args.get("bytes", &sample.bytes));
  CF_RETURN_IF_ERROR(args.finish());
  trace->memory.push_back(std::move(sample));
  return Status::Ok();
}

// Track names (M events) carry nothing the trace needs; they are checked for shape only.
Status read_metadata(JsonReader& event) {
  std::string name;
  int pid = 0, tid = 0;
  CF_RETURN_IF_ERROR(event.get("name", &name));
  CF_RETURN_IF_ERROR(event.get("pid", &pid));
  CF_RETURN_IF_ERROR(event.get("tid", &tid));
  CF_RETURN_IF_ERROR(event.find("args").status());
  if (name != "process_name" && name != "thread_name") {
    return event.error("name", fmt::format("unknown metadata event \"{}\"", name));
  }
  return event.finish();
}

Status read_header(const json& root, const std::string& origin, Trace* trace) {
  JsonReader header(root, origin, "chunkflow");
  CF_RETURN_IF_ERROR(header.check_object());
  int64_t version = 0;
  CF_RETURN_IF_ERROR(header.get("format_version", &version));
  if (version != kFormatVersion) {
    return header.error("format_version", fmt::format("unsupported version {} (this build reads "
                                                      "{})",
                                                      version, kFormatVersion));
  }
  CF_RETURN_IF_ERROR(header.get("source", &trace->source));
  CF_ASSIGN_OR_RETURN(const json* metrics, header.find("metrics"));
  if (!metrics->is_object()) return header.error("metrics", "expected a JSON object");
  for (auto it = metrics->begin(); it != metrics->end(); ++it) {
    if (it->is_null()) {  // the writer's form of a non-finite value
      trace->metrics[it.key()] = std::numeric_limits<double>::quiet_NaN();
    } else if (it->is_number()) {
      trace->metrics[it.key()] = it->get<double>();
    } else {
      return header.error("metrics." + it.key(),
                          fmt::format("expected a number, got {}", it->dump()));
    }
  }
  CF_ASSIGN_OR_RETURN(const json* peaks, header.find("peak_memory"));
  if (!peaks->is_array()) return header.error("peak_memory", "expected a JSON array");
  for (std::size_t i = 0; i < peaks->size(); ++i) {
    JsonReader peak((*peaks)[i], origin, fmt::format("chunkflow.peak_memory[{}]", i));
    CF_RETURN_IF_ERROR(peak.check_object());
    std::pair<int, int> key;
    CF_RETURN_IF_ERROR(peak.get("dp_rank", &key.first));
    CF_RETURN_IF_ERROR(peak.get("stage", &key.second));
    CF_ASSIGN_OR_RETURN(const json* bytes_json, peak.find("bytes"));
    JsonReader bytes(*bytes_json, origin, peak.child_path("bytes"));
    CF_RETURN_IF_ERROR(bytes.check_object());
    MemoryBreakdown& peak_bytes = trace->peak_memory[key];
    for (MemoryCategory category : kAllMemoryCategories) {
      CF_RETURN_IF_ERROR(bytes.get(memory_category_name(category), &peak_bytes[category]));
    }
    int64_t total = 0;
    CF_RETURN_IF_ERROR(bytes.get("total", &total));
    if (total != peak_bytes.total()) {
      return bytes.error("total", fmt::format("{} is not the sum of the categories, {}", total,
                                              peak_bytes.total()));
    }
    CF_RETURN_IF_ERROR(bytes.finish());
    CF_RETURN_IF_ERROR(peak.finish());
  }
  return header.finish();
}

}  // namespace

std::string trace_to_chrome_json(const Trace& trace) {
  json header = {{"format_version", kFormatVersion}, {"source", trace.source}};
  header["metrics"] = json::object();
  for (const auto& [name, value] : trace.metrics) {
    header["metrics"][name] = std::isfinite(value) ? json(value) : json(nullptr);
  }
  header["peak_memory"] = json::array();
  for (const auto& [key, peak] : trace.peak_memory) {
    json bytes = json::object();
    for (MemoryCategory category : kAllMemoryCategories) {
      bytes[memory_category_name(category)] = peak[category];
    }
    bytes["total"] = peak.total();
    header["peak_memory"].push_back(
        {{"dp_rank", key.first}, {"stage", key.second}, {"bytes", bytes}});
  }

  // Tracks: one process per DP rank, one thread per stage (and one for its sends).
  std::set<std::pair<int, int>> tracks;
  for (const TraceOp& op : trace.ops) {
    tracks.emplace(op.dp_rank, op.kind == OpKind::kSend ? kSendTrack + op.stage : op.stage);
  }
  for (const MemorySample& sample : trace.memory) tracks.emplace(sample.dp_rank, sample.stage);
  std::vector<json> events;
  std::set<int> processes;
  for (const auto& [dp_rank, stage] : tracks) {
    if (processes.insert(dp_rank).second) {
      events.push_back(metadata_event("process_name", dp_rank, 0, fmt::format("dp {}", dp_rank)));
    }
    const std::string label = stage >= kSendTrack
                                  ? fmt::format("stage {} sends", stage - kSendTrack)
                                  : fmt::format("stage {}", stage);
    events.push_back(metadata_event("thread_name", dp_rank, stage, label));
  }
  for (const TraceOp& op : trace.ops) {
    const char* kind = op_kind_name(op.kind);
    json args = {{"kind", kind},        {"pass", pass_name(op.pass)},
                 {"chunk", op.chunk},   {"model_chunk", op.model_chunk},
                 {"op_id", op.op_id},   {"start_ns", op.start_ns},
                 {"end_ns", op.end_ns}, {"tokens", op.tokens},
                 {"group", op.group},   {"index", op.index}};
    if (carries_message(op.kind)) {
      args["bytes"] = op.bytes;
      args["peer"] = op.peer_stage;
    }
    if (op.class_ns) {
      for (KernelClass kind : kAllKernelClasses) {
        args[class_arg(kind)] = (*op.class_ns)[static_cast<int>(kind)];
      }
    }
    events.push_back({{"name", op_name(op)},
                      {"cat", kind},
                      {"ph", "X"},
                      {"pid", op.dp_rank},
                      {"tid", op.kind == OpKind::kSend ? kSendTrack + op.stage : op.stage},
                      {"ts", ns_to_us(op.start_ns)},
                      {"dur", ns_to_us(op.duration_ns())},
                      {"args", args}});
  }
  for (const MemorySample& sample : trace.memory) {
    CF_CHECK_LT(std::abs(sample.time_ns), kMaxCounterTimeNs) << "memory sample time";
    events.push_back({{"name", counter_name(sample.stage, sample.category)},
                      {"cat", "memory"},
                      {"ph", "C"},
                      {"pid", sample.dp_rank},
                      {"tid", sample.stage},
                      {"ts", ns_to_us(sample.time_ns)},
                      {"args", {{"bytes", sample.bytes}}}});
  }

  std::string out = "{\"chunkflow\": " + header.dump() + ",\n\"displayTimeUnit\": \"ns\",\n" +
                    "\"traceEvents\": [";
  for (std::size_t i = 0; i < events.size(); ++i) {
    out += (i == 0 ? "\n" : ",\n") + events[i].dump();
  }
  out += "\n]}\n";
  return out;
}

StatusOr<Trace> trace_from_chrome_json(const std::string& text, const std::string& origin) {
  CF_ASSIGN_OR_RETURN(const json root, parse_json(text, origin));
  JsonReader top(root, origin, "");
  CF_RETURN_IF_ERROR(top.check_object());
  Trace trace;
  CF_ASSIGN_OR_RETURN(const json* header, top.find("chunkflow"));
  CF_RETURN_IF_ERROR(read_header(*header, origin, &trace));
  std::string time_unit;
  if (root.contains("displayTimeUnit")) CF_RETURN_IF_ERROR(top.get("displayTimeUnit", &time_unit));
  CF_ASSIGN_OR_RETURN(const json* events, top.find("traceEvents"));
  if (!events->is_array()) return top.error("traceEvents", "expected a JSON array");
  CF_RETURN_IF_ERROR(top.finish());
  for (std::size_t i = 0; i < events->size(); ++i) {
    JsonReader event((*events)[i], origin, fmt::format("traceEvents[{}]", i));
    CF_RETURN_IF_ERROR(event.check_object());
    std::string phase;
    CF_RETURN_IF_ERROR(event.get("ph", &phase));
    if (phase == "X") {
      CF_RETURN_IF_ERROR(read_op(event, &trace));
    } else if (phase == "C") {
      CF_RETURN_IF_ERROR(read_counter(event, &trace));
    } else if (phase == "M") {
      CF_RETURN_IF_ERROR(read_metadata(event));
      continue;
    } else {
      return event.error("ph", fmt::format("unsupported phase \"{}\" (expected X, C or M)", phase));
    }
    CF_RETURN_IF_ERROR(event.finish());
  }
  return trace;
}

}  // namespace cf
