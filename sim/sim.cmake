# cf_sim: the simulator proper — discrete-event engine, cost models (unit, analytical,
# calibrated), memory model and replay, metrics, the simulate driver. Included by
# sim/CMakeLists.txt.
add_library(cf_sim
  ${CMAKE_CURRENT_LIST_DIR}/engine.cc
  ${CMAKE_CURRENT_LIST_DIR}/cost_model.cc
  ${CMAKE_CURRENT_LIST_DIR}/cost_unit.cc
  ${CMAKE_CURRENT_LIST_DIR}/cost_analytical.cc
  ${CMAKE_CURRENT_LIST_DIR}/calibration_table.cc
  ${CMAKE_CURRENT_LIST_DIR}/cost_calibrated.cc
  ${CMAKE_CURRENT_LIST_DIR}/memory_calibrated.cc
  ${CMAKE_CURRENT_LIST_DIR}/memory_model.cc
  ${CMAKE_CURRENT_LIST_DIR}/memory_timeline.cc
  ${CMAKE_CURRENT_LIST_DIR}/metrics.cc
  ${CMAKE_CURRENT_LIST_DIR}/simulator.cc)
target_link_libraries(cf_sim PUBLIC cf_plan nlohmann_json::nlohmann_json PRIVATE fmt::fmt)
