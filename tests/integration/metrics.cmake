# /metrics of the real `kiln serve` binary: `promtool check metrics` accepts it, client-chosen
# methods and paths add no series, a client that leaves counts as 499. Uses the tiny checkpoint
# that http.cmake makes (fixture kiln_http_model) and promtool from Debian's prometheus package
# (scripts/setup installs it; the test fails without it rather than skipping the check).
find_program(KILN_PROMTOOL promtool)
add_executable(kiln_metrics_integration_tests ${CMAKE_CURRENT_SOURCE_DIR}/integration/metrics_test.cpp)
target_link_libraries(kiln_metrics_integration_tests PRIVATE GTest::gtest GTest::gtest_main nlohmann_json::nlohmann_json
                      Threads::Threads kiln_warnings)
target_include_directories(kiln_metrics_integration_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(kiln_metrics_integration_tests PRIVATE KILN_BINARY="$<TARGET_FILE:kiln>"
                           KILN_PROMTOOL="${KILN_PROMTOOL}")
add_dependencies(kiln_metrics_integration_tests kiln)
add_test(NAME http_metrics COMMAND kiln_metrics_integration_tests)
set_tests_properties(http_metrics PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 600
                     ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL}")
