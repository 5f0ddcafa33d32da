# Tuner benchmarks: ChunkSize × K and joint searches of the default job (docs/BENCHMARKS.md).
cf_bench(tuner_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/tuner_bench.cc LIBS cf_tuner)
