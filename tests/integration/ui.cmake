# The web UI in a real browser: Debian's chromium (scripts/setup installs it) driven by
# playwright-core against the real binary, the tiny checkpoint of http.cmake and the random-weight
# Qwen3-shaped one of tool_choice.cmake (for a forced tool call). Without chromium
# the test is reported as skipped (exit code 77), never passed. The page's reader of the pull
# stream is tested on its own, and the UI's TypeScript is type-checked as a lint test.
find_program(KILN_NODE node)
find_program(KILN_CHROMIUM NAMES chromium chromium-browser)
if(KILN_NODE AND EXISTS ${PROJECT_SOURCE_DIR}/node_modules/playwright-core)
  add_test(NAME ui_browser COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/ui_test.mjs)
  set_tests_properties(ui_browser PROPERTIES FIXTURES_REQUIRED "kiln_http_model;kiln_random_qwen3" LABELS integration TIMEOUT 300
                       SKIP_RETURN_CODE 77
                       ENVIRONMENT "KILN_TEST_MODEL_DIR=${KILN_HTTP_TEST_MODEL};KILN_RANDOM_MODEL_DIR=${KILN_RANDOM_QWEN3_MODEL};KILN_BINARY=$<TARGET_FILE:kiln>;KILN_CHROMIUM=${KILN_CHROMIUM};KILN_UI_SCREENSHOTS=${CMAKE_BINARY_DIR}/ui-screenshots")
endif()
if(KILN_NODE AND EXISTS ${PROJECT_SOURCE_DIR}/node_modules/vite)
  add_test(NAME ui_pull_events COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/ui_pull_events_test.mjs)
  set_tests_properties(ui_pull_events PROPERTIES LABELS integration TIMEOUT 120)
endif()
if(KILN_NODE AND EXISTS ${PROJECT_SOURCE_DIR}/node_modules/typescript)
  add_test(NAME ui_typecheck COMMAND ${KILN_NODE} ${PROJECT_SOURCE_DIR}/node_modules/typescript/bin/tsc -p ${PROJECT_SOURCE_DIR}/ui/tsconfig.json)
  set_tests_properties(ui_typecheck PROPERTIES LABELS lint)
endif()
