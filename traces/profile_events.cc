// What each finished event of a profile becomes (profile_handler.h): a step, a kept kernel,
// memcpy, memset or CPU op (profile_events.h), a collective's sizes, a memory maximum, a
// counted flow, or a skipped kind. Not the JSON structure (profile_reader.cc).
#include <fmt/format.h>

#include <algorithm>

#include "core/limits.h"
#include "traces/profile_handler.h"

namespace cf {
namespace profile_internal {
namespace {

// What an event's category makes of an X event.
enum class Category : uint8_t {
  kKernel,      // device activities: kernel,
  kMemcpy,      // gpu_memcpy,
  kMemset,      // gpu_memset
  kCpuOp,       // cpu_op, and legacy events (no "cat")
  kAnnotation,  // user_annotation: ProfilerStep#N ranges
  kIgnored,     // known, not used (runtime calls, python functions, ...)
  kUnknown,
};

Category category_of(bool has_cat, const std::string& cat) {
  if (!has_cat) return Category::kCpuOp;
  // Current names (libkineto ActivityType) and the capitalised ones of torch 1.8-1.9.
  if (cat == "kernel" || cat == "Kernel") return Category::kKernel;
  if (cat == "gpu_memcpy" || cat == "Memcpy") return Category::kMemcpy;
  if (cat == "gpu_memset" || cat == "Memset") return Category::kMemset;
  if (cat == "cpu_op" || cat == "Operator") return Category::kCpuOp;
  if (cat == "user_annotation") return Category::kAnnotation;
  static constexpr std::string_view kIgnored[] = {"gpu_user_annotation",
                                                  "cuda_runtime",
                                                  "cuda_driver",
                                                  "Runtime",
                                                  "python_function",
                                                  "Trace",
                                                  "overhead",
                                                  "cuda_sync",
                                                  "cuda_profiler_range",
                                                  "external_correlation",
                                                  "privateuse1_runtime",
                                                  "privateuse1_driver",
                                                  "mtia_runtime",
                                                  "mtia_ccp_events",
                                                  "xpu_runtime",
                                                  "hpu_op",
                                                  "glow_runtime",
                                                  "collective_comm",
                                                  "fwdbwd",
                                                  "ac2g",
                                                  "cpu_instant_event"};
  for (std::string_view known : kIgnored) {
    if (cat == known) return Category::kIgnored;
  }
  return Category::kUnknown;
}

}  // namespace

bool ProfileHandler::finish_device() {
  if (!device_.id) {
    frames_.push_back(Frame::kDevice);  // for where()
    return fail("id", "required key is missing");
  }
  if (out_->devices.size() >= static_cast<std::size_t>(limits::kMaxProfileTracks) &&
      !out_->devices.count(*device_.id)) {
    return fail("", fmt::format("more than {} devices", limits::kMaxProfileTracks));
  }
  ProfileDevice& d = out_->devices[*device_.id];
  d.id = *device_.id;
  d.name = device_.name;
  d.total_memory_bytes = device_.total_memory.value_or(0);
  d.compute_major = static_cast<int>(std::min<int64_t>(device_.major.value_or(0), 1 << 20));
  d.compute_minor = static_cast<int>(std::min<int64_t>(device_.minor.value_or(0), 1 << 20));
  return true;
}

void ProfileHandler::skip(const std::string& kind) {
  // At most 64 distinct kinds are named; the rest count together.
  auto it = out_->skipped.find(kind);
  if (it == out_->skipped.end() && out_->skipped.size() >= 64)
    it = out_->skipped.find("(more kinds)");
  if (it == out_->skipped.end()) {
    it = out_->skipped.emplace(out_->skipped.size() >= 64 ? "(more kinds)" : kind, 0).first;
  }
  ++it->second;
}

bool ProfileHandler::finish_event() {
  frames_.push_back(Frame::kEvent);  // where() names the event in the messages below
  ++out_->events;
  if (!event_.has_ph) return fail("ph", "required key is missing (every trace event has a phase)");
  bool ok = true;
  if (event_.ph.size() != 1) {
    skip("ph " + event_.ph.substr(0, 16));
  } else {
    switch (event_.ph[0]) {
      case 'X':
        ok = finish_complete_event();
        break;
      case 'i':
      case 'I':
        if (event_.has_cat && event_.cat == "cpu_instant_event" && event_.name == "[memory]" &&
            event_.total_allocated) {
          if (!event_.arg_error.empty()) return fail_arg();
          const int64_t id = event_.device_id.value_or(-1);
          if (out_->devices.size() >= static_cast<std::size_t>(limits::kMaxProfileTracks) &&
              !out_->devices.count(id)) {
            return fail("", fmt::format("more than {} devices", limits::kMaxProfileTracks));
          }
          ProfileDevice& d = out_->devices[id];
          d.id = id;
          d.peak_allocated_bytes = std::max(d.peak_allocated_bytes, *event_.total_allocated);
        }
        break;
      case 's':
      case 'f':
      case 't':
        ++out_->flows;
        break;
      case 'M':  // metadata: process and thread names
      case 'C':  // counters
        break;
      default:
        skip("ph " + event_.ph);
    }
  }
  frames_.pop_back();
  return ok;
}

bool ProfileHandler::finish_complete_event() {
  const Category category = category_of(event_.has_cat, event_.cat);
  if (category == Category::kUnknown) {
    skip("ph X, cat " + event_.cat.substr(0, 48));
    return true;
  }
  // chunkflow's marks: user_annotation ranges (cpu_op accepted too), their
  // gpu_user_annotation copies, a legacy list's X events (no category: also CPU ops).
  const bool device_mark = event_.has_cat && event_.cat == "gpu_user_annotation";
  if (event_.has_name && event_.name.starts_with(kMarkPrefix) &&
      (device_mark || category == Category::kAnnotation || category == Category::kCpuOp)) {
    if (!add_mark(device_mark)) return false;
    if (category != Category::kCpuOp) return true;
  }
  if (category == Category::kIgnored) return true;
  if (!event_.has_name) return fail("name", "required key is missing (an X event)");
  if (!event_.ts_ns) return fail("ts", "required key is missing (an X event)");
  if (!event_.dur_ns) return fail("dur", "required key is missing (an X event)");
  if (!event_.arg_error.empty()) return fail_arg();
  if (category != Category::kKernel && category != Category::kMemcpy &&
      category != Category::kMemset && event_.name.rfind("ProfilerStep#", 0) == 0) {
    if (out_->steps.size() >= static_cast<std::size_t>(limits::kMaxProfileSteps)) {
      return fail("", fmt::format("more than {} ProfilerStep ranges", limits::kMaxProfileSteps));
    }
    ProfileStep step;
    step.name = event_.name.substr(0, 64);
    step.start_ns = *event_.ts_ns;
    step.duration_ns = *event_.dur_ns;
    out_->steps.push_back(std::move(step));
    return true;
  }
  switch (category) {
    case Category::kKernel:
      return add_device_activity(DeviceActivity::kKernel);
    case Category::kMemcpy:
      return add_device_activity(DeviceActivity::kMemcpy);
    case Category::kMemset:
      return add_device_activity(DeviceActivity::kMemset);
    case Category::kCpuOp:
      return add_cpu_op();
    default:
      return true;  // other annotations
  }
}

// One more kept event (a device activity or a CPU op) within limits::kMaxProfileKeptEvents.
bool ProfileHandler::check_kept() {
  if (static_cast<int64_t>(out_->device.size() + out_->cpu.size()) <
      limits::kMaxProfileKeptEvents) {
    return true;
  }
  return fail("", fmt::format("more than {} kernels, memcpys, memsets and CPU ops ({})",
                              limits::kMaxProfileKeptEvents, limits::kMaxProfileKeptEventsWhy));
}

bool ProfileHandler::add_device_activity(DeviceActivity activity) {
  // Kineto puts the device in pid and the stream in tid, and again in args.
  const int64_t device =
      event_.device.value_or(event_.pid.present && !event_.pid.is_text ? event_.pid.number : 0);
  const int64_t stream =
      event_.stream.value_or(event_.tid.present && !event_.tid.is_text ? event_.tid.number : 0);
  auto [it, added] = device_tracks_.emplace(std::make_pair(device, stream),
                                            static_cast<int32_t>(device_tracks_.size()));
  if (added) {
    if (device_tracks_.size() > static_cast<std::size_t>(limits::kMaxProfileTracks)) {
      return fail("",
                  fmt::format("more than {} (device, stream) pairs", limits::kMaxProfileTracks));
    }
    out_->device_tracks.emplace_back(device, stream);
  }
  const int32_t name =
      out_->device_names.intern(static_cast<int>(activity), event_.name, &name_bytes_);
  if (name < 0) {
    return fail("name",
                fmt::format("more than {} bytes of distinct names", limits::kMaxProfileNameBytes));
  }
  out_->device.push_back({*event_.ts_ns, *event_.ts_ns + *event_.dur_ns, it->second, name});
  if (event_.external_id && activity == DeviceActivity::kKernel &&
      out_->kernel_external.size() < static_cast<size_t>(kMaxProfileWorkOps)) {
    out_->kernel_external.emplace_back(*event_.external_id,
                                       static_cast<int32_t>(out_->device.size() - 1));
  }
  if (activity == DeviceActivity::kKernel && event_.has_collective &&
      out_->kernel_collective_calls.size() < static_cast<size_t>(kMaxProfileWorkOps)) {
    const CollectiveKind kind = collective_kind_of(event_.collective);
    const double bytes = collective_bytes(kind);
    if (bytes > 0) {
      out_->kernel_collective_calls.push_back(
          {kind, bytes, event_.group_size.value_or(0), *event_.dur_ns});
    }
  }
  if (activity == DeviceActivity::kKernel && event_.has_collective) {
    return add_collective(&out_->kernel_collectives);
  }
  return true;
}

bool ProfileHandler::add_cpu_op() {
  // A thread is (pid, tid), each an integer or a string.
  track_key_.clear();
  for (const IdValue* id : {&event_.pid, &event_.tid}) {
    track_key_ += id->is_text ? "s" + id->text : "i" + std::to_string(id->number);
    track_key_ += '\x1f';
  }
  auto [it, added] = cpu_tracks_.emplace(track_key_, static_cast<int32_t>(cpu_tracks_.size()));
  if (added && cpu_tracks_.size() > static_cast<std::size_t>(limits::kMaxProfileTracks)) {
    return fail("", fmt::format("more than {} (pid, tid) threads", limits::kMaxProfileTracks));
  }
  out_->cpu_tracks = static_cast<int32_t>(cpu_tracks_.size());
  if (!check_kept()) return false;
  const int32_t name = out_->cpu_names.intern(0, event_.name, &name_bytes_);
  if (name < 0) {
    return fail("name",
                fmt::format("more than {} bytes of distinct names", limits::kMaxProfileNameBytes));
  }
  out_->cpu.push_back({*event_.ts_ns, *event_.ts_ns + *event_.dur_ns, it->second, name});
  if (event_.has_dims) add_cpu_work(static_cast<int64_t>(out_->cpu.size()) - 1);
  if (event_.name == "record_param_comms" && event_.has_collective) {
    if (event_.external_id && out_->cpu_work.size() < static_cast<size_t>(kMaxProfileWorkOps)) {
      ProfileOpWork work;
      work.interval = static_cast<int64_t>(out_->cpu.size()) - 1;
      work.kind = KernelClass::kCollective;
      work.external_id = *event_.external_id;
      work.collective = collective_kind_of(event_.collective);
      work.bytes = collective_bytes(work.collective);
      work.group_size = event_.group_size.value_or(0);
      if (work.bytes > 0) out_->cpu_work.push_back(work);
    }
    return add_collective(&out_->op_collectives);
  }
  return true;
}

namespace {

// Bytes per element of a Kineto "Input type" ("float", "c10::BFloat16", "long int", ...);
// 4 when the type is not recorded or not a tensor's.
double input_type_bytes(const std::string& type) {
  static constexpr std::pair<std::string_view, double> kTypes[] = {{"float", 4},
                                                                   {"double", 8},
                                                                   {"c10::BFloat16", 2},
                                                                   {"c10::Half", 2},
                                                                   {"long int", 8},
                                                                   {"int", 4},
                                                                   {"bool", 1},
                                                                   {"unsigned char", 1},
                                                                   {"signed char", 1},
                                                                   {"short int", 2},
                                                                   {"c10::Float8_e4m3fn", 1},
                                                                   {"c10::Float8_e5m2", 1}};
  for (const auto& [name, bytes] : kTypes) {
    if (type == name) return bytes;
  }
  return 4;
}

// FLOPs of a GEMM op from its inputs' dims; 0 when the shapes do not fit the op.
double gemm_flops(std::string_view name, const std::vector<std::vector<int64_t>>& in) {
  // (m, k) · (k, n), after `skip` leading inputs (addmm's and baddbmm's bias), batched when
  // the operands have three dimensions.
  auto product = [&](size_t skip) -> double {
    if (in.size() < skip + 2) return 0;
    const std::vector<int64_t>& a = in[skip];
    const std::vector<int64_t>& b = in[skip + 1];
    if (a.size() == 2 && b.size() == 2 && a[1] == b[0]) {
      return 2.0 * static_cast<double>(a[0]) * static_cast<double>(a[1]) *
             static_cast<double>(b[1]);
    }
    if (a.size() == 3 && b.size() == 3 && a[0] == b[0] && a[2] == b[1]) {
      return 2.0 * static_cast<double>(a[0]) * static_cast<double>(a[1]) *
             static_cast<double>(a[2]) * static_cast<double>(b[2]);
    }
    return 0;
  };
  if (name == "aten::mm" || name == "aten::bmm" || name == "aten::_scaled_mm") return product(0);
  if (name == "aten::addmm" || name == "aten::baddbmm") return product(1);
  return 0;
}

// Attention ops with (batch, heads, seq, head_dim) query and key (the scaled_dot_product_*
// family), or (batch, seq, heads, head_dim) (flash_attn's and aten::_flash_attention_*).
struct AttentionOp {
  std::string_view name;
  bool heads_first;
  bool backward;
};
constexpr AttentionOp kAttentionOps[] = {
    {"aten::_scaled_dot_product_flash_attention", true, false},
    {"aten::_scaled_dot_product_flash_attention_backward", true, true},
    {"aten::_scaled_dot_product_efficient_attention", true, false},
    {"aten::_scaled_dot_product_efficient_attention_backward", true, true},
    {"aten::_scaled_dot_product_cudnn_attention", true, false},
    {"aten::_scaled_dot_product_cudnn_attention_backward", true, true},
    {"aten::_flash_attention_forward", false, false},
    {"aten::_flash_attention_backward", false, true},
    {"flash_attn::_flash_attn_forward", false, false},
    {"flash_attn::_flash_attn_backward", false, true},
    {"FlashAttnFunc", false, false},
    {"FlashAttnFuncBackward", false, true}};

}  // namespace

void ProfileHandler::add_cpu_work(int64_t interval) {
  ++out_->cpu_ops_with_dims;
  if (!event_.shapes_usable) return;
  std::vector<std::vector<int64_t>> in;
  for (size_t i = 0; i < event_.dim_starts.size(); ++i) {
    const size_t end =
        i + 1 < event_.dim_starts.size() ? event_.dim_starts[i + 1] : event_.dims.size();
    in.emplace_back(event_.dims.begin() + event_.dim_starts[i], event_.dims.begin() + end);
  }
  ProfileOpWork work;
  work.interval = interval;
  work.external_id = event_.external_id.value_or(-1);
  work.kind = classify_cpu_op(event_.name);
  if (const double flops = gemm_flops(event_.name, in); flops > 0) {
    work.kind = KernelClass::kGemm;
    work.flops = flops;
  } else if (const auto* op =
                 std::find_if(std::begin(kAttentionOps), std::end(kAttentionOps),
                              [&](const AttentionOp& a) { return a.name == event_.name; });
             op != std::end(kAttentionOps)) {
    // The backward's first input is the output gradient, shaped as the query; then the
    // query and the key.
    const size_t q_at = op->backward ? 1 : 0;
    if (in.size() < q_at + 2 || in[q_at].size() != 4 || in[q_at + 1].size() != 4) return;
    const std::vector<int64_t>& q = in[q_at];
    const std::vector<int64_t>& k = in[q_at + 1];
    const double batch = static_cast<double>(q[0]);
    const double heads = static_cast<double>(op->heads_first ? q[1] : q[2]);
    const double q_len = static_cast<double>(op->heads_first ? q[2] : q[1]);
    const double k_len = static_cast<double>(op->heads_first ? k[2] : k[1]);
    const double head_dim = static_cast<double>(q[3]);
    // Causal when the lengths are equal (training's self-attention), the queries being the
    // last q_len of k_len keys otherwise: q·p + q(q+1)/2 pairs with p = k − q
    // (docs/COSTS-REFERENCE.md §5).
    const double prefix = std::max(0.0, k_len - q_len);
    const double pairs = q_len * prefix + q_len * (q_len + 1) / 2;
    work.kind = KernelClass::kAttention;
    work.backward = op->backward;
    work.flops = 4 * head_dim * heads * batch * pairs;
  } else if (work.kind == KernelClass::kElementwise) {
    double elements = 0, largest = 0, element_bytes = 4;
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i].empty()) continue;  // a scalar or a non-tensor input
      double n = 1;
      for (const int64_t d : in[i]) n *= static_cast<double>(d);
      elements += n;
      if (n > largest) {
        largest = n;
        if (i < event_.input_types.size()) element_bytes = input_type_bytes(event_.input_types[i]);
      }
    }
    if (largest == 0) return;
    work.bytes = (elements + largest) * element_bytes;
  } else {
    return;
  }
  if (out_->cpu_work.size() < static_cast<size_t>(kMaxProfileWorkOps)) {
    out_->cpu_work.push_back(work);
  } else {
    ++out_->work_ops_dropped;
  }
}

bool ProfileHandler::add_mark(bool device) {
  const ParsedMark parsed = parse_mark(event_.name);
  if (parsed.result == ParsedMark::Result::kMalformed) {
    return fail("", fmt::format("malformed chunkflow mark {}: {} (docs/PROFILES.md, \"Marks\")",
                                mark_text(event_.name), parsed.why));
  }
  ProfileMarks& marks = out_->marks;
  if (parsed.result == ParsedMark::Result::kUnknown) {
    std::string name = event_.name.substr(0, 80);
    if (!marks.unknown.contains(name) && marks.unknown.size() >= 64) name = "(more names)";
    ++marks.unknown[name];
    return true;
  }
  if (!event_.ts_ns || !event_.dur_ns) {
    return fail("", fmt::format("the mark {} has no ts and dur", mark_text(event_.name)));
  }
  if (static_cast<int64_t>(marks.cpu.size() + marks.device.size()) >= kMaxProfileMarks) {
    return fail("", fmt::format("more than {} chunkflow marks", kMaxProfileMarks));
  }
  (device ? marks.device : marks.cpu)
      .push_back({parsed.op, *event_.ts_ns, *event_.ts_ns + *event_.dur_ns, event_index_});
  return true;
}

// nccl-tests' S of the event's collective: the gathered array of an all-gather (its output),
// the input of the others; 0 when the sizes or the dtype's width are not recorded.
double ProfileHandler::collective_bytes(CollectiveKind kind) const {
  const double width = static_cast<double>(torch_dtype_bytes(event_.dtype));
  const std::optional<int64_t> nelems =
      kind == CollectiveKind::kAllGather ? event_.out_nelems : event_.in_nelems;
  return nelems ? width * static_cast<double>(*nelems) : 0;
}

bool ProfileHandler::add_collective(std::map<ProfileCollectiveKey, ProfileCollective>* table) {
  ProfileCollectiveKey key{event_.collective.substr(0, 64), event_.dtype.substr(0, 32),
                           event_.group_size.value_or(0)};
  auto it = table->find(key);
  if (it == table->end()) {
    if (table->size() >= 4096) return fail("", "more than 4096 distinct collectives");
    ProfileCollective c;
    c.name = std::get<0>(key);
    c.kind = collective_kind_of(c.name);
    c.dtype = std::get<1>(key);
    c.group_size = std::get<2>(key);
    c.dtype_bytes = torch_dtype_bytes(c.dtype);
    it = table->emplace(std::move(key), std::move(c)).first;
  }
  ProfileCollective& c = it->second;
  ++c.count;
  // Sums saturate at 2^62 elements: far past any real run, and never an overflow.
  constexpr int64_t kCap = int64_t{1} << 62;
  c.in_nelems = std::min(kCap, c.in_nelems + std::min(kCap, event_.in_nelems.value_or(0)));
  c.out_nelems = std::min(kCap, c.out_nelems + std::min(kCap, event_.out_nelems.value_or(0)));
  return true;
}

}  // namespace profile_internal

int32_t ProfileNameTable::intern(int kind, const std::string& name, int64_t* bytes) {
  auto it = index_[kind].find(name);
  if (it != index_[kind].end()) return it->second;
  if (*bytes + static_cast<int64_t>(name.size()) > limits::kMaxProfileNameBytes) return -1;
  *bytes += static_cast<int64_t>(name.size());
  ProfileName entry;
  entry.text = name;
  entry.activity = static_cast<DeviceActivity>(kind);
  if (device_) {
    entry.classification = kind == static_cast<int>(DeviceActivity::kKernel)
                               ? classify_kernel(name)
                               : KernelClassification{KernelClass::kMemcpy};
  } else {
    entry.classification = {classify_cpu_op(name)};
  }
  const int32_t id = static_cast<int32_t>(names_.size());
  names_.push_back(std::move(entry));
  index_[kind].emplace(name, id);
  return id;
}

const char* profile_format_name(ProfileFormat format) {
  return format == ProfileFormat::kKineto ? "kineto" : "legacy_list";
}

}  // namespace cf
