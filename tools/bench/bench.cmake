# wsgw-bench: the load generator (tools/bench/main.cpp), included from
# tools/CMakeLists.txt after wsgw_tools_common is defined.
#   cmake --build build --target wsgw-bench
# tools/bench/run_benchmarks.sh builds a Release gateway and runs the full set;
# the bench_smoke test below asserts behaviour (every message delivered), not speed.

set(WSGW_BENCH_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(wsgw-bench
               ${WSGW_BENCH_DIR}/main.cpp
               ${WSGW_BENCH_DIR}/floor.cpp
               ${WSGW_BENCH_DIR}/probes.cpp
               ${WSGW_BENCH_DIR}/ws_clients.cpp)
target_include_directories(wsgw-bench PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(wsgw-bench PRIVATE
                      wsgw_tools_common wsgw_auth wsgw_bus
                      PkgConfig::nats Boost::boost Boost::json Threads::Threads)

# wsgw-script-cost: per-call cost of a declarative route and of handle(ctx).
add_executable(wsgw-script-cost ${WSGW_BENCH_DIR}/script_cost.cpp)
target_link_libraries(wsgw-script-cost PRIVATE wsgw_script)

if(WSGW_TESTS)
  # A gateway (auth none, port 0, embedded nats-server on port 0) plus the
  # example service, then `wsgw-bench --smoke`: 200 connections through idle,
  # broadcast, user-push and roundtrip; fails unless every push arrives and
  # every request is answered with code 0.
  add_test(NAME bench_smoke
           COMMAND /bin/bash ${WSGW_BENCH_DIR}/smoke.sh)
  set_tests_properties(bench_smoke PROPERTIES
                       ENVIRONMENT "WSGW_BINARY=$<TARGET_FILE:wsgw>;EXAMPLE_SERVICE=$<TARGET_FILE:example_service>;WSGW_BENCH=$<TARGET_FILE:wsgw-bench>"
                       LABELS integration
                       TIMEOUT 240)
endif()
