// Linear forward/backward as Eigen matrix products over row-major maps of the raw buffers.
// kernels/cuda/linear.cu mirrors it with cuBLAS (fp32 compute, no TF32).
#include "kernels/cpu/linear.h"

#include <Eigen/Core>

#include "core/check.h"

namespace cf::cpu {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMat = Eigen::Map<const RowMajor>;
using Mat = Eigen::Map<RowMajor>;
using ConstVec = Eigen::Map<const Eigen::RowVectorXf>;
using Vec = Eigen::Map<Eigen::RowVectorXf>;

void check_linear_args(int64_t tokens, int64_t in_features, int64_t out_features) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(in_features, 0);
  CF_CHECK_GT(out_features, 0);
}

}  // namespace

void linear_forward(float* y, const float* x, const float* weight, const float* bias,
                    int64_t tokens, int64_t in_features, int64_t out_features) {
  check_linear_args(tokens, in_features, out_features);
  if (tokens == 0) return;
  ConstMat xm(x, tokens, in_features);             // (tokens, in)
  ConstMat wm(weight, out_features, in_features);  // (out, in)
  Mat ym(y, tokens, out_features);                 // (tokens, out)
  ym.noalias() = xm * wm.transpose();
  if (bias != nullptr) ym.rowwise() += ConstVec(bias, out_features);
}

void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                     const float* weight, int64_t tokens, int64_t in_features,
                     int64_t out_features) {
  check_linear_args(tokens, in_features, out_features);
  if (tokens == 0) return;
  ConstMat dym(dy, tokens, out_features);  // (tokens, out)
  if (dx != nullptr) {
    Mat(dx, tokens, in_features).noalias() +=
        dym * ConstMat(weight, out_features, in_features);  // (tokens, in)
  }
  if (dweight != nullptr) {
    Mat(dweight, out_features, in_features).noalias() +=
        dym.transpose() * ConstMat(x, tokens, in_features);  // (out, in)
  }
  if (dbias != nullptr) Vec(dbias, out_features) += dym.colwise().sum();
}

}  // namespace cf::cpu
