// Chunk construction (DESIGN §4.1) and baseline micro-batching (§4.4): the two packers and
// the split of long sequences into dependent groups. Not scheduling (chunk_schedule.cc).
//
// Default packer: `balanced` (StrategyConfig's default). Measured (a scratch driver over this
// file's packers; the generator is the one in tests/sim/plan/chunking_property_test.cc): on 2996
// synthetic long-tailed batches (1-300 sequences, log-uniform 1..64K tokens with 2% at
// 64K..512K, ChunkSize log-uniform 64..64K, seeds 1, 7, 2025) both packers made the same
// number of standalone chunks except once, where balanced made one fewer; balanced's chunks
// differ by 2.2% of ChunkSize on average (largest - smallest) against 50% for FFD, whose
// last bins hold the leftovers, and its largest chunk averages 0.96·C against 1.00·C (peak
// activation memory follows the largest chunk). On 200 sampled global batches of 256 from
// lmsys-chat-1m, llama3-sft-mix and longbench at C = 4K..32K the counts were always equal
// and the spread 0.0001-0.27·C against 0.47-0.53·C. Replayed with unit costs (1F1B, pp = 4,
// K = 2) the bubble ratio moved by at most 0.02 either way: FFD's small trailing chunks
// shorten the drain about as much as equal chunks shorten the steady state.
#include "sim/plan/chunking.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <queue>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/limits.h"
#include "core/numeric.h"

namespace cf {
namespace {

// Items by length descending; ties by ascending sequence index, so packings are deterministic.
std::vector<PackItem> sorted_decreasing(std::vector<PackItem> items) {
  std::stable_sort(items.begin(), items.end(), [](const PackItem& a, const PackItem& b) {
    if (a.length != b.length) return a.length > b.length;
    return a.sequence < b.sequence;
  });
  return items;
}

void check_items(const std::vector<PackItem>& items, int64_t capacity) {
  for (const PackItem& item : items) {
    CF_CHECK(item.length > 0 && item.length <= capacity)
        << "sequence " << item.sequence << " of " << item.length << " tokens, capacity "
        << capacity;
  }
}

// Balanced assignment into exactly `bins` bins; false when an item fits nowhere. The lightest
// bin is the only candidate: if the item does not fit there it fits in no bin.
bool try_balanced(const std::vector<PackItem>& sorted, int64_t capacity, int64_t bins, Bins* out) {
  using Entry = std::pair<int64_t, int64_t>;  // (load in tokens, bin index)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> lightest;
  for (int64_t b = 0; b < bins; ++b) lightest.push({0, b});
  Bins result(static_cast<size_t>(bins));
  for (const PackItem& item : sorted) {
    auto [load, bin] = lightest.top();
    if (load + item.length > capacity) return false;
    lightest.pop();
    result[static_cast<size_t>(bin)].push_back(item.sequence);
    lightest.push({load + item.length, bin});
  }
  std::erase_if(result, [](const std::vector<int64_t>& bin) { return bin.empty(); });
  *out = std::move(result);
  return true;
}

// Evens out a feasible packing without changing its bin count: repeatedly the single move
// (an item from the heaviest bin to the lightest) or swap (a heavier item of the heaviest
// for a lighter one of the lightest) that brings the two loads closest, while it narrows
// their gap and the light bin's tokens stay within the capacity. Loads are Σ weight_of (the
// tokens themselves, or the items' costs). Σ load² falls with every step, so it ends.
void rebalance(const std::vector<int64_t>& length_of, const std::vector<double>& weight_of,
               int64_t capacity, Bins* bins) {
  std::vector<double> load(bins->size(), 0);
  std::vector<int64_t> tokens(bins->size(), 0);
  for (size_t b = 0; b < bins->size(); ++b) {
    for (int64_t seq : (*bins)[b]) {
      load[b] += weight_of[static_cast<size_t>(seq)];
      tokens[b] += length_of[static_cast<size_t>(seq)];
    }
  }
  while (bins->size() >= 2) {
    const size_t heavy =
        static_cast<size_t>(std::max_element(load.begin(), load.end()) - load.begin());
    const size_t light =
        static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    const double gap = load[heavy] - load[light];
    double best_gap = gap;
    int best_a = -1, best_b = -1;  // positions in the heavy / light bin; b = -1: a move
    std::vector<int64_t>& h = (*bins)[heavy];
    std::vector<int64_t>& l = (*bins)[light];
    for (size_t a = 0; a < h.size(); ++a) {
      const size_t ia = static_cast<size_t>(h[a]);
      for (int b = -1; b < static_cast<int>(l.size()); ++b) {
        const size_t ib = b < 0 ? 0 : static_cast<size_t>(l[static_cast<size_t>(b)]);
        const double delta = weight_of[ia] - (b < 0 ? 0 : weight_of[ib]);   // load moving
        const int64_t moved = length_of[ia] - (b < 0 ? 0 : length_of[ib]);  // tokens moving
        if (delta <= 0 || tokens[light] + moved > capacity) continue;
        const double new_gap = std::abs(gap - 2 * delta);
        if (new_gap < best_gap) best_gap = new_gap, best_a = static_cast<int>(a), best_b = b;
      }
    }
    if (best_a < 0) return;
    const size_t ia = static_cast<size_t>(h[static_cast<size_t>(best_a)]);
    const size_t ib = best_b < 0 ? 0 : static_cast<size_t>(l[static_cast<size_t>(best_b)]);
    const double delta = weight_of[ia] - (best_b < 0 ? 0 : weight_of[ib]);
    const int64_t moved = length_of[ia] - (best_b < 0 ? 0 : length_of[ib]);
    if (best_b < 0) {
      h.erase(h.begin() + best_a);
      l.push_back(static_cast<int64_t>(ia));
    } else {
      std::swap(h[static_cast<size_t>(best_a)], l[static_cast<size_t>(best_b)]);
    }
    load[heavy] -= delta;
    load[light] += delta;
    tokens[heavy] -= moved;
    tokens[light] += moved;
  }
}

// Lengths (and weights) by sequence index, for rebalance.
std::vector<int64_t> lengths_by_sequence(const std::vector<PackItem>& items) {
  std::vector<int64_t> length_of;
  for (const PackItem& item : items) {
    if (static_cast<size_t>(item.sequence) >= length_of.size()) {
      length_of.resize(static_cast<size_t>(item.sequence) + 1, 0);
    }
    length_of[static_cast<size_t>(item.sequence)] = item.length;
  }
  return length_of;
}

}  // namespace

Bins pack_first_fit_decreasing(const std::vector<PackItem>& items, int64_t capacity) {
  check_items(items, capacity);
  Bins bins;
  std::vector<int64_t> loads;  // tokens per bin
  for (const PackItem& item : sorted_decreasing(items)) {
    size_t b = 0;
    while (b < bins.size() && loads[b] + item.length > capacity) ++b;
    if (b == bins.size()) {
      bins.emplace_back();
      loads.push_back(0);
    }
    bins[b].push_back(item.sequence);
    loads[b] += item.length;
  }
  return bins;
}

Bins pack_balanced(const std::vector<PackItem>& items, int64_t capacity) {
  check_items(items, capacity);
  if (items.empty()) return {};
  const std::vector<PackItem> sorted = sorted_decreasing(items);
  int64_t total = 0;
  for (const PackItem& item : items) total += item.length;
  // Algorithm 1: start at the lower bound ceil(total / C) and add bins until it fits; FFD's
  // count bounds the search (FFD ≤ 11/9·OPT + 6/9, Dósa 2007).
  Bins ffd = pack_first_fit_decreasing(items, capacity);
  const int64_t ffd_bins = static_cast<int64_t>(ffd.size());
  for (int64_t bins = ceil_div(total, capacity); bins <= ffd_bins; ++bins) {
    Bins result;
    if (try_balanced(sorted, capacity, bins, &result)) return result;
  }
  // Tight packings (items near C/2 and above) defeat the lightest-bin rule at FFD's count:
  // keep FFD's bins and even them out.
  const std::vector<int64_t> length_of = lengths_by_sequence(items);
  rebalance(length_of, std::vector<double>(length_of.begin(), length_of.end()), capacity, &ffd);
  return ffd;
}

double segment_cost(int64_t prefix, int64_t tokens, double pair_weight) {
  const double q = static_cast<double>(tokens);
  return q + pair_weight * (q * static_cast<double>(prefix) + q * (q + 1) / 2);
}

Bins pack_cost(const std::vector<PackItem>& items, int64_t capacity, double pair_weight) {
  check_items(items, capacity);
  if (items.empty()) return {};
  const std::vector<int64_t> length_of = lengths_by_sequence(items);
  std::vector<double> cost_of(length_of.size(), 0);
  for (const PackItem& item : items) {
    cost_of[static_cast<size_t>(item.sequence)] = segment_cost(0, item.length, pair_weight);
  }
  // Dearest first (ties: longer, then lower sequence index), so the greedy is deterministic.
  std::vector<PackItem> sorted = items;
  std::stable_sort(sorted.begin(), sorted.end(), [&](const PackItem& a, const PackItem& b) {
    const double ca = cost_of[static_cast<size_t>(a.sequence)];
    const double cb = cost_of[static_cast<size_t>(b.sequence)];
    if (ca != cb) return ca > cb;
    if (a.length != b.length) return a.length > b.length;
    return a.sequence < b.sequence;
  });
  Bins balanced = pack_balanced(items, capacity);
  const int64_t ffd_bins = static_cast<int64_t>(pack_first_fit_decreasing(items, capacity).size());
  for (int64_t n = static_cast<int64_t>(balanced.size()); n <= ffd_bins; ++n) {
    Bins bins(static_cast<size_t>(n));
    std::vector<double> cost(static_cast<size_t>(n), 0);
    std::vector<int64_t> tokens(static_cast<size_t>(n), 0);
    bool fits = true;
    for (const PackItem& item : sorted) {
      int best = -1;
      for (int64_t b = 0; b < n; ++b) {  // the cheapest bin with room for its tokens
        if (tokens[static_cast<size_t>(b)] + item.length > capacity) continue;
        if (best < 0 || cost[static_cast<size_t>(b)] < cost[static_cast<size_t>(best)]) {
          best = static_cast<int>(b);
        }
      }
      if (best < 0) {
        fits = false;
        break;
      }
      bins[static_cast<size_t>(best)].push_back(item.sequence);
      cost[static_cast<size_t>(best)] += cost_of[static_cast<size_t>(item.sequence)];
      tokens[static_cast<size_t>(best)] += item.length;
    }
    if (fits) {
      std::erase_if(bins, [](const std::vector<int64_t>& bin) { return bin.empty(); });
      return bins;
    }
  }
  rebalance(length_of, cost_of, capacity, &balanced);
  return balanced;
}

Bins pack(const std::vector<PackItem>& items, int64_t capacity, Packer packer, double pair_weight) {
  switch (packer) {
    case Packer::kBalanced:
      return pack_balanced(items, capacity);
    case Packer::kFirstFitDecreasing:
      return pack_first_fit_decreasing(items, capacity);
    case Packer::kCost:
      return pack_cost(items, capacity, pair_weight);
  }
  CF_CHECK(false) << "unknown packer " << static_cast<int>(packer);
  return {};
}

namespace {

// Standalone chunks from bins, in bin order; segments in ascending sequence index.
void append_standalone(const Bins& bins, const std::vector<int64_t>& lengths,
                       std::vector<Chunk>* chunks) {
  for (const std::vector<int64_t>& bin : bins) {
    std::vector<int64_t> sequences = bin;
    std::sort(sequences.begin(), sequences.end());
    Chunk chunk;
    chunk.id = static_cast<int>(chunks->size());
    chunk.kind = ChunkKind::kStandalone;
    for (int64_t seq : sequences) {
      const int64_t length = lengths[static_cast<size_t>(seq)];
      chunk.segments.push_back(Segment{seq, 0, length});
      chunk.tokens += length;
    }
    chunks->push_back(std::move(chunk));
  }
}

}  // namespace

int64_t min_chunkflow_chunks(const std::vector<int64_t>& lengths, int64_t chunk_size) {
  CF_CHECK_GT(chunk_size, 0);
  int64_t pieces = 0, short_tokens = 0;  // at most 2^16 sequences of 2^24 tokens: no overflow
  for (int64_t length : lengths) {
    if (length > chunk_size) {
      pieces += ceil_div(length, chunk_size);
    } else {
      short_tokens += length;
    }
  }
  return pieces + ceil_div(short_tokens, chunk_size);
}

Status check_chunkflow_chunk_count(const std::vector<int64_t>& lengths, int64_t chunk_size) {
  const int64_t chunks = min_chunkflow_chunks(lengths, chunk_size);
  if (chunks <= limits::kMaxChunksPerStep) return Status::Ok();
  int64_t tokens = 0;
  for (int64_t length : lengths) tokens += length;
  return Status::InvalidInput(fmt::format(
      "strategy.chunk_size: ChunkSize {} cuts a step of {} tokens into at least {} chunks, more "
      "than the {} a step may hold (core/limits.h): raise chunk_size",
      chunk_size, tokens, chunks, limits::kMaxChunksPerStep));
}

namespace {

// The cost of a sequence's first t tokens: segment_cost(0, t).
double prefix_cost(double t, double w) { return t + w * t * (t + 1) / 2; }

// The t ≥ 0 with prefix_cost(t) = cost.
double prefix_tokens(double cost, double w) {
  if (w <= 0) return cost;
  const double b = 1 + w / 2;
  return (-b + std::sqrt(b * b + 2 * w * cost)) / w;
}

}  // namespace

std::vector<int64_t> split_lengths(int64_t length, int64_t chunk_size, SequenceSplit split,
                                   double pair_weight, int64_t align) {
  CF_CHECK(length > 0 && chunk_size > 0 && align > 0 && chunk_size % align == 0)
      << length << " tokens, chunk_size " << chunk_size << ", align " << align;
  const int64_t pieces = ceil_div(length, chunk_size);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(pieces));
  int64_t start = 0;
  const double total = prefix_cost(static_cast<double>(length), pair_weight);
  for (int64_t left = pieces; left > 0; --left) {
    int64_t end = std::min(start + chunk_size, length);  // the token split's boundary
    if (split == SequenceSplit::kCost && left > 1) {
      const double here = prefix_cost(static_cast<double>(start), pair_weight);
      const double target = prefix_tokens(here + (total - here) / left, pair_weight);
      // Within the bounds: at least one aligned step, at most chunk_size; what is left must
      // fit the remaining pieces (≤ chunk_size each, ≥ one aligned step each).
      const int64_t lo =
          ceil_div(std::max(start + align, length - (left - 1) * chunk_size), align) * align;
      const int64_t hi =
          std::min(start + chunk_size, (length - (left - 1) * align) / align * align);
      if (lo <= hi) {
        const int64_t rounded = std::llround(target / static_cast<double>(align)) * align;
        end = std::clamp(rounded, lo, hi);
      }
    }
    out.push_back(end - start);
    start = end;
  }
  CF_CHECK_EQ(start, length);
  return out;
}

std::vector<Chunk> build_chunkflow_chunks(const std::vector<int64_t>& lengths, int64_t chunk_size,
                                          Packer packer, const ChunkCosting& costing) {
  CF_CHECK_GT(chunk_size, 0);
  std::vector<PackItem> short_items;
  std::vector<int64_t> long_sequences;
  for (size_t i = 0; i < lengths.size(); ++i) {
    CF_CHECK_GT(lengths[i], 0) << "sequence " << i;
    if (lengths[i] <= chunk_size) {
      short_items.push_back(PackItem{static_cast<int64_t>(i), lengths[i]});
    } else {
      long_sequences.push_back(static_cast<int64_t>(i));
    }
  }
  std::vector<Chunk> chunks;
  append_standalone(pack(short_items, chunk_size, packer, costing.pair_weight), lengths, &chunks);
  int group = 0;
  for (int64_t seq : long_sequences) {
    const int64_t length = lengths[static_cast<size_t>(seq)];
    const std::vector<int64_t> pieces =
        split_lengths(length, chunk_size, costing.split, costing.pair_weight, costing.align);
    int64_t offset = 0;
    for (size_t index = 0; index < pieces.size(); ++index) {
      Chunk chunk;
      chunk.id = static_cast<int>(chunks.size());
      chunk.kind = ChunkKind::kDependent;
      chunk.tokens = pieces[index];
      chunk.segments.push_back(Segment{seq, offset, chunk.tokens});
      chunk.group = group;
      chunk.index = static_cast<int>(index);
      chunk.group_size = static_cast<int>(pieces.size());
      chunks.push_back(std::move(chunk));
      offset += pieces[index];
    }
    ++group;
  }
  return chunks;
}

StatusOr<std::vector<Chunk>> build_baseline_micro_batches(const std::vector<int64_t>& lengths,
                                                          int64_t max_length,
                                                          MicroBatching micro_batching) {
  if (max_length <= 0) {
    return Status::InvalidInput("dataset.max_length: must be positive for the baseline, got " +
                                std::to_string(max_length));
  }
  std::vector<PackItem> items;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] <= 0 || lengths[i] > max_length) {
      return Status::InvalidInput(
          "sequence " + std::to_string(i) + " has " + std::to_string(lengths[i]) +
          " tokens: the baseline needs 1..dataset.max_length (" + std::to_string(max_length) +
          ") tokens per sequence, it never splits one");
    }
    items.push_back(PackItem{static_cast<int64_t>(i), lengths[i]});
  }
  Bins bins;
  if (micro_batching == MicroBatching::kPack) {
    bins = pack_first_fit_decreasing(items, max_length);
  } else {
    for (const PackItem& item : items) bins.push_back({item.sequence});
  }
  std::vector<Chunk> chunks;
  append_standalone(bins, lengths, &chunks);
  return chunks;
}

}  // namespace cf
