# Jobs end to end: the real `kiln serve` on SQLite and on a real PostgreSQL server the test starts
# (postgres_server.h): the jobs API, cancellation through DELETE, kill -9 and a restart on the same
# database, a database that stops while requests keep being served, the seed's model/queue/health
# aliases, and rate limits (one node, and two nodes sharing PostgreSQL). Uses the tiny checkpoint
# that http.cmake makes (fixture kiln_http_model).
add_executable(kiln_jobs_integration_tests ${CMAKE_CURRENT_SOURCE_DIR}/integration/jobs_test.cpp
               ${CMAKE_CURRENT_SOURCE_DIR}/integration/jobs_aliases_test.cpp
               ${CMAKE_CURRENT_SOURCE_DIR}/integration/jobs_rate_limit_test.cpp)
target_link_libraries(kiln_jobs_integration_tests PRIVATE kiln_jobs GTest::gtest GTest::gtest_main
                      nlohmann_json::nlohmann_json Threads::Threads kiln_warnings)
target_include_directories(kiln_jobs_integration_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(kiln_jobs_integration_tests PRIVATE KILN_BINARY="$<TARGET_FILE:kiln>")
add_dependencies(kiln_jobs_integration_tests kiln)
gtest_discover_tests(kiln_jobs_integration_tests DISCOVERY_TIMEOUT 60 TEST_PREFIX "jobs_integration."
                     PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 300
                     ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL}")
