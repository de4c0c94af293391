# `kiln pull`, `kiln ls`, `kiln rm` and POST /v1/admin/models/pull against a local server that
# speaks the Hugging Face Hub's HTTP layout (hub_server.mjs), serving a sharded tiny checkpoint.
set(KILN_PULL_MODEL ${CMAKE_BINARY_DIR}/test-models/pull/tiny)
add_test(NAME pull_make_model
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR
                 $<TARGET_FILE:kiln> make-model --preset tiny-qwen3 --seed 23 --dtype f32 --max-shard-size 200K
                 --out ${KILN_PULL_MODEL}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(pull_make_model PROPERTIES FIXTURES_SETUP kiln_pull_model LABELS integration TIMEOUT 300)

find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME pull_api COMMAND ${KILN_NODE} --test ${CMAKE_CURRENT_SOURCE_DIR}/integration/pull_test.mjs)
  set_tests_properties(pull_api PROPERTIES FIXTURES_REQUIRED kiln_pull_model LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_PULL_MODEL=${KILN_PULL_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
