# tool_choice "required"/named for mistral (both dialects), deepseek_v3, harmony, qwen3_coder and
# glm45 with random-weight checkpoints the test makes itself (the family's tokenizer and chat
# template), and strict tools under auto with a scripted Qwen3 checkpoint, through the real server.
find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME tool_choice_families COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/tool_choice_families_test.mjs)
  set_tests_properties(tool_choice_families PROPERTIES LABELS integration TIMEOUT 900
                       ENVIRONMENT "KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
