# `kiln serve` with the model pool: starts the real binary on 127.0.0.1 over tiny checkpoints
# (tests/integration/pool_serve_test.cpp).
add_executable(kiln_pool_serve_tests ${CMAKE_CURRENT_SOURCE_DIR}/integration/pool_serve_test.cpp)
target_link_libraries(kiln_pool_serve_tests PRIVATE kiln_pool GTest::gtest GTest::gtest_main
                      nlohmann_json::nlohmann_json kiln_warnings)
target_include_directories(kiln_pool_serve_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(kiln_pool_serve_tests PRIVATE
  KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}" KILN_BINARY="$<TARGET_FILE:kiln>")
add_dependencies(kiln_pool_serve_tests kiln)
gtest_discover_tests(kiln_pool_serve_tests DISCOVERY_TIMEOUT 60
                     PROPERTIES LABELS integration TIMEOUT 300 ENVIRONMENT "KILN_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
