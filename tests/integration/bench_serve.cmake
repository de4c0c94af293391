# `kiln bench serve`: its unit tests (tests/unit/http/bench_client_*.cpp) are compiled into
# kiln_http_tests and need the load generator's library.
if(TARGET kiln_http_tests)
  target_link_libraries(kiln_http_tests PRIVATE kiln_bench_serve)
  file(GLOB bench_client_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unit/http/bench_client_*.cpp)
  # GCC 12 at -O3 reports "potential null pointer dereference" inside Asio once it is inlined.
  set_source_files_properties(${bench_client_tests} PROPERTIES COMPILE_OPTIONS
                              $<$<CXX_COMPILER_ID:GNU>:-Wno-null-dereference>)
endif()

# End to end against the real `kiln serve` with a tiny random-weight checkpoint.
set(KILN_BENCH_SERVE_TEST_MODEL ${CMAKE_BINARY_DIR}/test-models/bench-serve-tiny-llama)
add_test(NAME bench_serve_make_test_model
         COMMAND $<TARGET_FILE:kiln> make-model --preset tiny-llama --seed 11 --max-position-embeddings 2048
                 --out ${KILN_BENCH_SERVE_TEST_MODEL}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(bench_serve_make_test_model PROPERTIES FIXTURES_SETUP kiln_bench_serve_model
                     LABELS integration TIMEOUT 120)
add_executable(kiln_bench_serve_integration_tests ${CMAKE_CURRENT_SOURCE_DIR}/integration/bench_serve_test.cpp)
target_link_libraries(kiln_bench_serve_integration_tests PRIVATE GTest::gtest GTest::gtest_main
                      nlohmann_json::nlohmann_json Threads::Threads kiln_warnings)
target_include_directories(kiln_bench_serve_integration_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(kiln_bench_serve_integration_tests PRIVATE KILN_BINARY="$<TARGET_FILE:kiln>")
add_dependencies(kiln_bench_serve_integration_tests kiln)
add_test(NAME bench_serve_end_to_end COMMAND kiln_bench_serve_integration_tests)
set_tests_properties(bench_serve_end_to_end PROPERTIES FIXTURES_REQUIRED kiln_bench_serve_model
                     LABELS integration TIMEOUT 900
                     ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_BENCH_SERVE_TEST_MODEL}")
