# Executor benchmarks: tiny-model training steps in tokens/s and ChunkFlow against the
# baseline on a long-tailed batch (docs/BENCHMARKS.md, "Executor (CPU reference)").
cf_bench(executor_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/executor_bench.cc
         LIBS cf_executor fmt::fmt)
