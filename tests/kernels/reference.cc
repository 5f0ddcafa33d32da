// Float64 reference forwards (see reference.h): naive loops, explicit causal masks.
#include "tests/kernels/reference.h"

#include <cmath>
#include <limits>

namespace cf::test {

std::vector<double> EmbeddingRef(const std::vector<int32_t>& ids, const std::vector<double>& table,
                                 int64_t hidden) {
  std::vector<double> out(ids.size() * hidden);
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t c = 0; c < hidden; ++c) out[t * hidden + c] = table[ids[t] * hidden + c];
  }
  return out;
}

std::vector<double> RmsNormRef(const std::vector<double>& x, const std::vector<double>& weight,
                               int64_t hidden, double eps) {
  std::vector<double> out(x.size());
  for (size_t t = 0; t < x.size() / hidden; ++t) {
    double mean_sq = 0.0;
    for (int64_t c = 0; c < hidden; ++c) mean_sq += x[t * hidden + c] * x[t * hidden + c];
    mean_sq /= double(hidden);
    const double scale = 1.0 / std::sqrt(mean_sq + eps);
    for (int64_t c = 0; c < hidden; ++c) {
      out[t * hidden + c] = x[t * hidden + c] * scale * weight[c];
    }
  }
  return out;
}

std::vector<double> RopeRef(const std::vector<double>& x, const std::vector<int32_t>& positions,
                            int64_t heads, int64_t head_dim, double theta) {
  // HF rotate_half: out = x·cos(emb) + cat(−x2, x1)·sin(emb), emb = cat(freqs, freqs).
  std::vector<double> out(x.size());
  const int64_t half = head_dim / 2;
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const double* xh = &x[(t * heads + h) * head_dim];
      double* oh = &out[(t * heads + h) * head_dim];
      for (int64_t i = 0; i < head_dim; ++i) {
        const int64_t j = i % half;
        const double angle = positions[t] / std::pow(theta, 2.0 * double(j) / double(head_dim));
        const double rotated = i < half ? -xh[i + half] : xh[i - half];
        oh[i] = xh[i] * std::cos(angle) + rotated * std::sin(angle);
      }
    }
  }
  return out;
}

std::vector<double> AttentionRef(const std::vector<double>& q, const std::vector<double>& k,
                                 const std::vector<double>& v,
                                 const std::vector<AttentionSegment>& segments,
                                 const AttentionShape& shape, std::vector<double>* lse) {
  const int64_t a = shape.heads, g = shape.kv_heads, d = shape.head_dim;
  std::vector<double> out(shape.q_tokens * a * d, std::numeric_limits<double>::quiet_NaN());
  if (lse != nullptr) lse->assign(shape.q_tokens * a, std::numeric_limits<double>::quiet_NaN());
  for (const AttentionSegment& seg : segments) {
    for (int64_t i = 0; i < seg.q_len; ++i) {
      const int64_t row = seg.q_begin + i;
      for (int64_t h = 0; h < a; ++h) {
        const int64_t kvh = h / (a / g);
        std::vector<double> scores(seg.kv_len, -std::numeric_limits<double>::infinity());
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < seg.kv_len; ++j) {
          if (j > seg.kv_len - seg.q_len + i) continue;  // causal, bottom-right aligned
          double dot = 0.0;
          for (int64_t c = 0; c < d; ++c) {
            dot += q[(row * a + h) * d + c] * k[((seg.kv_begin + j) * g + kvh) * d + c];
          }
          scores[j] = dot / std::sqrt(double(d));
          max_score = std::max(max_score, scores[j]);
        }
        double sum = 0.0;
        for (double s : scores) sum += std::exp(s - max_score);
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < seg.kv_len; ++j) {
            acc +=
                std::exp(scores[j] - max_score) / sum * v[((seg.kv_begin + j) * g + kvh) * d + c];
          }
          out[(row * a + h) * d + c] = acc;
        }
        if (lse != nullptr) (*lse)[row * a + h] = max_score + std::log(sum);
      }
    }
  }
  return out;
}

std::vector<double> SwigluRef(const std::vector<double>& gate, const std::vector<double>& up) {
  std::vector<double> out(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  return out;
}

std::vector<double> LinearRef(const std::vector<double>& x, const std::vector<double>& weight,
                              const std::vector<double>& bias, int64_t in_features,
                              int64_t out_features) {
  const int64_t tokens = int64_t(x.size()) / in_features;
  std::vector<double> y(tokens * out_features);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t o = 0; o < out_features; ++o) {
      double acc = bias.empty() ? 0.0 : bias[o];
      for (int64_t i = 0; i < in_features; ++i) {
        acc += x[t * in_features + i] * weight[o * in_features + i];
      }
      y[t * out_features + o] = acc;
    }
  }
  return y;
}

std::vector<double> CrossEntropyRef(const std::vector<double>& logits,
                                    const std::vector<int32_t>& targets, int64_t vocab,
                                    double loss_scale, std::vector<double>* lse) {
  std::vector<double> losses(targets.size());
  if (lse != nullptr) lse->resize(targets.size());
  for (size_t t = 0; t < targets.size(); ++t) {
    double max_logit = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < vocab; ++c) max_logit = std::max(max_logit, logits[t * vocab + c]);
    double sum = 0.0;
    for (int64_t c = 0; c < vocab; ++c) sum += std::exp(logits[t * vocab + c] - max_logit);
    const double log_sum_exp = max_logit + std::log(sum);
    if (lse != nullptr) (*lse)[t] = log_sum_exp;
    losses[t] = targets[t] < 0 ? 0.0 : loss_scale * (log_sum_exp - logits[t * vocab + targets[t]]);
  }
  return losses;
}

void AdamWRef(std::vector<double>& params, std::vector<double>& m, std::vector<double>& v,
              const std::vector<double>& grads, const AdamWHyper& hyper, int64_t step) {
  // torch.optim.AdamW: p ← p·(1 − lr·wd), then p ← p − lr·m̂ / (√v̂ + eps).
  const double b1 = hyper.beta1, b2 = hyper.beta2;
  for (size_t i = 0; i < params.size(); ++i) {
    params[i] *= 1.0 - double(hyper.lr) * hyper.weight_decay;
    m[i] = b1 * m[i] + (1.0 - b1) * grads[i];
    v[i] = b2 * v[i] + (1.0 - b2) * grads[i] * grads[i];
    const double m_hat = m[i] / (1.0 - std::pow(b1, double(step)));
    const double v_hat = v[i] / (1.0 - std::pow(b2, double(step)));
    params[i] -= double(hyper.lr) * m_hat / (std::sqrt(v_hat) + hyper.eps);
  }
}

}  // namespace cf::test
