# Structured outputs end to end: the real `kiln serve` with random-weight checkpoints (the tiny
# Llama of http.cmake and a tiny Qwen3 with the real Qwen3 tokenizer) under json_schema,
# json_object, regex, choice and grammar constraints, every choice checked by ajv / RegExp.
set(KILN_STRUCTURED_QWEN3_MODEL ${CMAKE_BINARY_DIR}/test-models/structured-tiny-qwen3)
add_test(NAME structured_outputs_make_model
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR
                 $<TARGET_FILE:kiln> make-model --preset tiny-qwen3 --seed 5 --max-position-embeddings 2048
                 --out ${KILN_STRUCTURED_QWEN3_MODEL}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(structured_outputs_make_model PROPERTIES FIXTURES_SETUP kiln_structured_model
                     LABELS integration TIMEOUT 120)

find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME structured_outputs_end_to_end
           COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/structured_outputs_test.mjs)
  set_tests_properties(structured_outputs_end_to_end PROPERTIES
                       FIXTURES_REQUIRED "kiln_structured_model;kiln_http_model" LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_QWEN3_MODEL_DIR=${KILN_STRUCTURED_QWEN3_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
