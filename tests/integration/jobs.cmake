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

# The Files and Batch APIs and webhooks end to end (docs/batches.md): the openai client on SQLite
# and PostgreSQL, kill -9 with restarts, two nodes on PostgreSQL, a signature-checking receiver.
find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME batches_clients COMMAND ${KILN_NODE} --test-concurrency=1 ${CMAKE_CURRENT_SOURCE_DIR}/integration/batches_test.mjs)
  set_tests_properties(batches_clients PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()

# Stored and background responses (docs/responses-api.md): the openai client and OpenAI's schemas
# on SQLite and PostgreSQL, API-key ownership, webhooks, and kill -9 with a queued response.
if(KILN_NODE)
  add_test(NAME responses_store_clients
           COMMAND ${KILN_NODE} --test-concurrency=1 ${CMAKE_CURRENT_SOURCE_DIR}/integration/responses_store_test.mjs)
  set_tests_properties(responses_store_clients PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>;KILN_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endif()

# Which node runs a batch line (docs/batches.md): two nodes on PostgreSQL with different models
# loaded; each line runs on the node that has its model.
if(KILN_NODE)
  add_test(NAME batches_nodes COMMAND ${KILN_NODE} --test-concurrency=1 ${CMAKE_CURRENT_SOURCE_DIR}/integration/batches_nodes_test.mjs)
  set_tests_properties(batches_nodes PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 300
                       ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
