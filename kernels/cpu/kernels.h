// Every CPU reference kernel of the executor, for callers that use several. The CPU files are
// the specification; kernels/cuda/kernels.h declares the CUDA mirrors with the same signatures.
#pragma once

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/residual.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
