# /v1/responses and /v1/messages through the AI SDK's default OpenAI provider, the `openai` client
# and `@anthropic-ai/sdk`, on the random-weight Qwen3-shaped checkpoint of tool_choice.cmake.
# (This file is read before tool_choice.cmake, which makes that checkpoint.)
set(KILN_RANDOM_QWEN3_MODEL ${CMAKE_BINARY_DIR}/test-models/random-qwen3)
find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME chat_apis_clients COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/chat_apis_test.mjs)
  set_tests_properties(chat_apis_clients PROPERTIES FIXTURES_REQUIRED kiln_random_qwen3 LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_RANDOM_MODEL_DIR=${KILN_RANDOM_QWEN3_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
