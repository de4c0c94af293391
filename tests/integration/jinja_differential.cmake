# Chat templates: kiln against @huggingface/jinja (npm) on the Python fixtures' inputs; see
# tests/jinja_differential.mjs. Needs node and the npm test data that scripts/setup installs.
find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME jinja_differential
           COMMAND ${KILN_NODE} ${PROJECT_SOURCE_DIR}/tests/jinja_differential.mjs --kiln $<TARGET_FILE:kiln>
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(jinja_differential PROPERTIES LABELS integration ENVIRONMENT TZ=UTC TIMEOUT 300)
endif()
