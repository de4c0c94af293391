# kiln serve end to end: a tiny random-weight checkpoint made once with `kiln make-model`, then
# raw-socket tests (C++) and the official `openai` npm client against the real binary.
set(KILN_HTTP_TEST_MODEL ${CMAKE_BINARY_DIR}/test-models/http-tiny-llama)
add_test(NAME http_make_test_model
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR
                 $<TARGET_FILE:kiln> make-model --preset tiny-llama --seed 7 --max-position-embeddings 2048
                 --out ${KILN_HTTP_TEST_MODEL}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(http_make_test_model PROPERTIES FIXTURES_SETUP kiln_http_model LABELS integration TIMEOUT 120)

add_executable(kiln_http_integration_tests ${CMAKE_CURRENT_SOURCE_DIR}/integration/http_raw_test.cpp
                                           ${CMAKE_CURRENT_SOURCE_DIR}/integration/http_robustness_test.cpp)
target_link_libraries(kiln_http_integration_tests PRIVATE GTest::gtest GTest::gtest_main nlohmann_json::nlohmann_json
                      Threads::Threads kiln_warnings)
target_include_directories(kiln_http_integration_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(kiln_http_integration_tests PRIVATE KILN_BINARY="$<TARGET_FILE:kiln>")
add_dependencies(kiln_http_integration_tests kiln)
add_test(NAME http_raw_sockets COMMAND kiln_http_integration_tests)
set_tests_properties(http_raw_sockets PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 600
                     ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL}")

# Generation limits: default max_tokens for chat and completions, rejections naming their parameter.
add_executable(kiln_generation_integration_tests ${CMAKE_CURRENT_SOURCE_DIR}/integration/generation_defaults_test.cpp)
target_link_libraries(kiln_generation_integration_tests PRIVATE GTest::gtest GTest::gtest_main
                      nlohmann_json::nlohmann_json Threads::Threads kiln_warnings)
target_include_directories(kiln_generation_integration_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(kiln_generation_integration_tests PRIVATE KILN_BINARY="$<TARGET_FILE:kiln>")
add_dependencies(kiln_generation_integration_tests kiln)
add_test(NAME http_generation_defaults COMMAND kiln_generation_integration_tests)
set_tests_properties(http_generation_defaults PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 300
                     ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL}")

find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME http_openai_client
           COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/openai_client_test.mjs)
  set_tests_properties(http_openai_client PROPERTIES FIXTURES_REQUIRED kiln_http_model LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
