// The JSON and text forms of what profiles say (profile.h), and the reading of several files as
// ranks. Not the reading of one file (profile_reader.cc) nor the summary (profile_summary.cc).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/limits.h"
#include "traces/profile.h"

namespace cf {
namespace {

using Json = nlohmann::ordered_json;

double seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

Json classes_json(const std::array<int64_t, kKernelClassCount>& ns) {
  Json out = Json::object();
  for (KernelClass kind : kAllKernelClasses) {
    out[kernel_class_name(kind)] = seconds(ns[static_cast<int>(kind)]);
  }
  return out;
}

Json names_json(const std::vector<ProfileNameTotal>& totals) {
  Json out = Json::array();
  for (const ProfileNameTotal& t : totals) {
    out.push_back({{"name", t.name},
                   {"class", kernel_class_name(t.kind)},
                   {"total_s", seconds(t.total_ns)},
                   {"count", t.count}});
  }
  return out;
}

Json busy_json(const std::vector<ProfileStreamBusy>& busy, bool streams) {
  Json out = Json::array();
  for (const ProfileStreamBusy& b : busy) {
    Json entry = {{"device", b.device}};
    if (streams) entry["stream"] = b.stream;
    entry["busy_s"] = seconds(b.busy_ns);
    out.push_back(std::move(entry));
  }
  return out;
}

Json rank_json(const RankProfile& r) {
  Json steps = Json::array();
  for (const ProfileStep& s : r.steps) {
    steps.push_back({{"name", s.name},
                     {"duration_s", seconds(s.duration_ns)},
                     {"start_s", seconds(s.start_ns)},
                     {"gpu_busy_s", seconds(s.gpu_busy_ns)},
                     {"gpu_idle_s", seconds(s.gpu_idle_ns())},
                     {"devices", busy_json(s.devices, false)},
                     {"streams", busy_json(s.streams, true)}});
  }
  Json collective_s = Json::object();
  for (int k = 0; k < kCollectiveKindCount; ++k) {
    collective_s[collective_kind_name(static_cast<CollectiveKind>(k))] =
        seconds(r.collective_ns[k]);
  }
  Json collectives = Json::array();
  for (const ProfileCollective& c : r.collectives) {
    collectives.push_back(
        {{"name", c.name},
         {"kind", collective_kind_name(c.kind)},
         {"dtype", c.dtype},
         {"group_size", c.group_size},
         {"count", c.count},
         {"in_msg_nelems", c.in_nelems},
         {"out_msg_nelems", c.out_nelems},
         {"in_msg_bytes", c.dtype_bytes > 0 ? Json(static_cast<double>(c.in_nelems) *
                                                   static_cast<double>(c.dtype_bytes))
                                            : Json(nullptr)}});
  }
  Json devices = Json::array();
  for (const ProfileDevice& d : r.devices) {
    devices.push_back(
        {{"id", d.id},
         {"name", d.name},
         {"total_memory_bytes", d.total_memory_bytes},
         {"compute_capability", fmt::format("{}.{}", d.compute_major, d.compute_minor)},
         {"peak_allocated_bytes",
          d.peak_allocated_bytes >= 0 ? Json(d.peak_allocated_bytes) : Json(nullptr)}});
  }
  Json skipped = Json::object();
  for (const auto& [kind, count] : r.skipped) skipped[kind] = count;
  return Json{{"rank", r.rank},
              {"rank_source", r.rank_from_trace ? "distributedInfo" : "file_order"},
              {"world_size", r.world_size > 0 ? Json(r.world_size) : Json(nullptr)},
              {"backend", r.backend},
              {"path", r.path},
              {"format", profile_format_name(r.format)},
              {"steps", steps},
              {"step_detail_omitted", r.step_detail_omitted},
              {"gpu_kernel_s", seconds(r.kernel_ns)},
              {"by_class_s", classes_json(r.by_class_ns())},
              {"by_class_source", r.has_device_activity() ? "gpu" : "cpu_self_time"},
              {"has_gpu_kernels", r.kernel_count > 0},
              {"gpu_kernel_count", r.kernel_count},
              {"gpu_memcpy_s", seconds(r.memcpy_ns)},
              {"gpu_memcpy_count", r.memcpy_count},
              {"gpu_memset_s", seconds(r.memset_ns)},
              {"gpu_memset_count", r.memset_count},
              {"gpu_by_class_s", classes_json(r.device_by_class_ns)},
              {"collective_s", collective_s},
              {"top_kernels", names_json(r.top_kernels)},
              {"cpu_op_s", seconds(r.cpu_op_ns)},
              {"cpu_op_count", r.cpu_op_count},
              {"cpu_by_class_s", classes_json(r.cpu_by_class_ns)},
              {"top_cpu_ops", names_json(r.top_cpu_ops)},
              {"collectives", collectives},
              {"devices", devices},
              {"events", r.events},
              {"flows", r.flows},
              {"skipped", skipped}};
}

std::string ms(int64_t ns) { return fmt::format("{:.3f} ms", static_cast<double>(ns) * 1e-6); }

std::string percent(int64_t part, int64_t whole) {
  return whole > 0 ? fmt::format("{:.1f}%",
                                 100.0 * static_cast<double>(part) / static_cast<double>(whole))
                   : "-";
}

// Bytes in the largest binary unit that keeps the number at least 1.
std::string bytes_text(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = bytes;
  int unit = 0;
  while (unit < 4 && std::fabs(value) >= 1024.0) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", value, kUnits[unit]);
}

// A name cut for a table column.
std::string cut(const std::string& name, std::size_t width) {
  return name.size() <= width ? name : name.substr(0, width - 3) + "...";
}

void steps_text(const RankProfile& r, std::string* out) {
  if (r.steps.empty()) {
    *out += "  no ProfilerStep#N ranges in this profile\n";
    return;
  }
  const bool gpu = r.has_device_activity();
  *out += fmt::format("  {:<20} {:>14}", "step", "duration");
  *out += gpu ? fmt::format(" {:>14} {:>14} {:>6}\n", "GPU busy", "GPU idle", "busy") : "\n";
  for (const ProfileStep& s : r.steps) {
    *out += fmt::format("  {:<20} {:>14}", cut(s.name, 20), ms(s.duration_ns));
    if (!gpu) {
      *out += "\n";
      continue;
    }
    *out += fmt::format(" {:>14} {:>14} {:>6}\n", ms(s.gpu_busy_ns), ms(s.gpu_idle_ns()),
                        percent(s.gpu_busy_ns, s.duration_ns));
    if (s.devices.size() > 1) {
      for (const ProfileStreamBusy& d : s.devices) {
        *out +=
            fmt::format("    {:<33} {:>14}\n", fmt::format("device {}", d.device), ms(d.busy_ns));
      }
    }
    for (const ProfileStreamBusy& b : s.streams) {
      *out += fmt::format("    {:<33} {:>14}\n",
                          fmt::format("device {} stream {}", b.device, b.stream), ms(b.busy_ns));
    }
  }
  if (r.step_detail_omitted) {
    *out += "  (busy time per device and stream omitted: over 2^18 step × stream entries)\n";
  }
}

void classes_text(const RankProfile& r, std::string* out) {
  const auto& by_class = r.by_class_ns();
  int64_t total = 0;
  for (int64_t ns : by_class) total += ns;
  if (r.has_device_activity()) {
    *out += fmt::format("\n  GPU time by class: kernels {} ({}), memcpy {} ({}), memset {} ({})\n",
                        ms(r.kernel_ns), r.kernel_count, ms(r.memcpy_ns), r.memcpy_count,
                        ms(r.memset_ns), r.memset_count);
  } else {
    *out += fmt::format(
        "\n  this profile has no GPU kernels: classes are CPU op self time ({} ops, {})\n",
        r.cpu_op_count, ms(r.cpu_op_ns));
  }
  for (KernelClass kind : kAllKernelClasses) {
    const int64_t ns = by_class[static_cast<int>(kind)];
    std::string line =
        fmt::format("  {:<12} {:>14} {:>7}", kernel_class_name(kind), ms(ns), percent(ns, total));
    if (kind == KernelClass::kCollective && r.has_device_activity()) {
      std::string sep = "  (";
      for (int k = 0; k < kCollectiveKindCount; ++k) {
        if (r.collective_ns[k] == 0) continue;
        line += fmt::format("{}{} {}", sep, collective_kind_name(static_cast<CollectiveKind>(k)),
                            ms(r.collective_ns[k]));
        sep = ", ";
      }
      if (sep == ", ") line += ")";
    }
    *out += line + "\n";
  }
}

void top_text(const char* title, const std::vector<ProfileNameTotal>& top, std::string* out) {
  if (top.empty()) return;
  *out +=
      fmt::format("\n  {}\n  {:>14} {:>8}  {:<12} {}\n", title, "total", "count", "class", "name");
  for (const ProfileNameTotal& t : top) {
    *out += fmt::format("  {:>14} {:>8}  {:<12} {}\n", ms(t.total_ns), t.count,
                        kernel_class_name(t.kind), cut(t.name, 100));
  }
}

void collectives_text(const RankProfile& r, std::string* out) {
  if (r.collectives.empty()) return;
  *out += fmt::format(
      "\n  collectives as recorded (record_param_comms)\n  {:<24} {:<10} {:>6} "
      "{:>8} {:>16} {:>16} {:>12}\n",
      "name", "dtype", "group", "count", "in elements", "out elements", "in bytes");
  for (const ProfileCollective& c : r.collectives) {
    *out += fmt::format("  {:<24} {:<10} {:>6} {:>8} {:>16} {:>16} {:>12}\n", cut(c.name, 24),
                        cut(c.dtype, 10), c.group_size, c.count, c.in_nelems, c.out_nelems,
                        c.dtype_bytes > 0 ? bytes_text(static_cast<double>(c.in_nelems) *
                                                       static_cast<double>(c.dtype_bytes))
                                          : std::string("-"));
  }
}

std::string rank_text(const RankProfile& r) {
  std::string out = fmt::format("rank {}", r.rank);
  if (r.world_size > 0) out += fmt::format(" of {}", r.world_size);
  if (!r.backend.empty()) out += fmt::format(" ({})", r.backend);
  out += fmt::format(": {} ({} trace, {} events{})\n", r.path,
                     r.format == ProfileFormat::kKineto ? "Kineto" : "torch 1.x event list",
                     r.events, r.rank_from_trace ? "" : "; rank by file order");
  for (const ProfileDevice& d : r.devices) {
    out += fmt::format("  device {}", d.id);
    if (d.id < 0) out += " (host)";
    if (!d.name.empty()) {
      out += fmt::format(": {} (compute {}.{}, {})", d.name, d.compute_major, d.compute_minor,
                         bytes_text(static_cast<double>(d.total_memory_bytes)));
    }
    if (d.peak_allocated_bytes >= 0) {
      out += fmt::format(", peak allocated {}",
                         bytes_text(static_cast<double>(d.peak_allocated_bytes)));
    }
    out += "\n";
  }
  out += "\n";
  steps_text(r, &out);
  classes_text(r, &out);
  top_text("largest kernels", r.top_kernels, &out);
  if (!r.has_device_activity()) top_text("largest CPU ops by self time", r.top_cpu_ops, &out);
  collectives_text(r, &out);
  int64_t skipped = 0;
  for (const auto& [kind, count] : r.skipped) skipped += count;
  if (skipped > 0) {
    out += fmt::format("\n  skipped {} event{} of kinds this reader does not know (", skipped,
                       skipped == 1 ? "" : "s");
    std::string sep;
    for (const auto& [kind, count] : r.skipped) {
      out += fmt::format("{}{}: {}", sep, kind, count);
      sep = "; ";
    }
    out += ")\n";
  }
  return out;
}

}  // namespace

std::string profile_report_json(const std::vector<RankProfile>& ranks) {
  Json out = {{"ranks", Json::array()}};
  for (const RankProfile& r : ranks) out["ranks"].push_back(rank_json(r));
  return out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string profile_report_text(const std::vector<RankProfile>& ranks) {
  std::string out;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) out += "\n";
    out += rank_text(ranks[i]);
  }
  return out;
}

StatusOr<std::vector<RankProfile>> check_profile_ranks(std::vector<RankProfile> ranks) {
  if (static_cast<int64_t>(ranks.size()) > limits::kMaxGpus) {
    return Status::InvalidInput(fmt::format("{} profiles, more than the {} ranks admitted ({})",
                                            ranks.size(), limits::kMaxGpus, limits::kMaxGpusWhy));
  }
  std::map<int, std::string> owner;  // rank -> the file that holds it
  for (const RankProfile& r : ranks) {
    const auto [it, added] = owner.emplace(r.rank, r.path);
    if (!added) {
      return Status::InvalidInput(fmt::format(
          "{}: rank {} is also the rank of {} (ranks come from distributedInfo.rank, else from "
          "the file's position on the command line)",
          r.path, r.rank, it->second));
    }
  }
  std::stable_sort(ranks.begin(), ranks.end(),
                   [](const RankProfile& a, const RankProfile& b) { return a.rank < b.rank; });
  return ranks;
}

StatusOr<std::vector<RankProfile>> read_profiles(const std::vector<std::string>& paths,
                                                 const ProfileProgress& progress) {
  std::vector<RankProfile> ranks;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    CF_ASSIGN_OR_RETURN(RankProfile r, read_profile(paths[i], static_cast<int>(i), progress));
    ranks.push_back(std::move(r));
  }
  return check_profile_ranks(std::move(ranks));
}

}  // namespace cf
