# Simulator benchmarks: engine events/s and one Qwen2.5-72B 256K step (docs/BENCHMARKS.md).
cf_bench(sim_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim_bench.cc LIBS cf_sim)
