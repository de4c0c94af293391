# tool_choice "required" and named, enforced by the grammar engine: a random-weight Qwen3-shaped
# checkpoint (real Qwen3 tokenizer) sampled at temperature 1.2 must still answer with valid calls.
set(KILN_RANDOM_QWEN3_MODEL ${CMAKE_BINARY_DIR}/test-models/random-qwen3)
add_test(NAME tool_choice_make_model
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR
                 $<TARGET_FILE:kiln> make-model --preset tiny-qwen3 --seed 11 --out ${KILN_RANDOM_QWEN3_MODEL}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(tool_choice_make_model PROPERTIES FIXTURES_SETUP kiln_random_qwen3 LABELS integration TIMEOUT 120)

find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME tool_choice_enforced COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/tool_choice_test.mjs)
  set_tests_properties(tool_choice_enforced PROPERTIES FIXTURES_REQUIRED kiln_random_qwen3 LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_RANDOM_MODEL_DIR=${KILN_RANDOM_QWEN3_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
