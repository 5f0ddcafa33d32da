# Tests of the trace comparison (traces/compare.h, traces/html_report.h) and of
# `chunkflow compare` end to end. Included from tests/traces/CMakeLists.txt.
add_library(cf_compare_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/compare_fixture.cc)
target_link_libraries(cf_compare_fixture PUBLIC cf_traces)

cf_test(traces_compare_test
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/compare_test.cc
                ${CMAKE_CURRENT_LIST_DIR}/compare_matching_test.cc
                ${CMAKE_CURRENT_LIST_DIR}/compare_output_test.cc
        LIBS cf_compare_fixture cf_traces nlohmann_json::nlohmann_json)

if(TARGET chunkflow OR EXISTS ${PROJECT_SOURCE_DIR}/cli/CMakeLists.txt)
  cf_test(traces_compare_cli_test
          SOURCES ${CMAKE_CURRENT_LIST_DIR}/compare_cli_test.cc
                  ${PROJECT_SOURCE_DIR}/tests/cli/run_command.cc
          LIBS cf_compare_fixture cf_traces nlohmann_json::nlohmann_json
          LABELS e2e)
  target_compile_definitions(traces_compare_cli_test PRIVATE CHUNKFLOW_BIN="$<TARGET_FILE:chunkflow>")
  add_dependencies(traces_compare_cli_test chunkflow)
endif()
