# The simulator proper (included by tests/sim/CMakeLists.txt): engine, cost models, memory
# model, simulator properties, golden traces.
cf_test(engine_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_test.cc LIBS cf_sim)
cf_test(simulator_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/simulator_test.cc LIBS cf_sim)
cf_test(memory_model_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/memory_model_test.cc LIBS cf_sim)
cf_test(cost_model_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cost_model_test.cc LIBS cf_sim)
cf_test(golden_trace_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/golden_trace_test.cc LIBS cf_sim)
cf_test(simulator_property_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/simulator_property_test.cc LIBS cf_sim fmt::fmt)
cf_test(calibrated_cost_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/calibrated_cost_test.cc
        LIBS cf_sim cf_executor_fixture nlohmann_json::nlohmann_json)
cf_test(calibrated_memory_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/calibrated_memory_test.cc
        LIBS cf_sim cf_executor cf_executor_fixture)
