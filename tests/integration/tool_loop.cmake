# Tool calling end to end: a scripted Qwen3 checkpoint (make-model --script) whose greedy output is
# real <think> and <tool_call> text, served by the real binary, driven by the openai client's
# runTools, the Vercel AI SDK and LangChain JS through a three-call agent loop.
set(KILN_SCRIPTED_TEST_MODEL ${CMAKE_BINARY_DIR}/test-models/scripted-qwen3-tools)
add_test(NAME tool_loop_make_model
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR
                 $<TARGET_FILE:kiln> make-model --preset tiny-qwen3
                 --script ${PROJECT_SOURCE_DIR}/tests/fixtures/scripts/qwen3_tool_loop.json
                 --out ${KILN_SCRIPTED_TEST_MODEL}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(tool_loop_make_model PROPERTIES FIXTURES_SETUP kiln_scripted_model LABELS integration TIMEOUT 120)

find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME tool_loop_clients COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/tool_loop_test.mjs)
  set_tests_properties(tool_loop_clients PROPERTIES FIXTURES_REQUIRED "kiln_scripted_model;kiln_http_model" LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_SCRIPTED_MODEL_DIR=${KILN_SCRIPTED_TEST_MODEL};KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
