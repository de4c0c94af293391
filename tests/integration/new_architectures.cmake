# The mixture-of-experts and Gemma 3 families served end to end on the CPU: the real `kiln serve`
# over tiny qwen3_moe, mixtral and gemma3 checkpoints (full tokenizers, their chat templates)
# answers completions (chat ones where the tokenizer has a template), streamed and not, and a greedy request gives the same text alone and
# among concurrent ones.
set(KILN_NEW_ARCH_MODELS ${CMAKE_BINARY_DIR}/test-models/new-architectures)
add_test(NAME new_architectures_make_models
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR sh -c
                 "'$<TARGET_FILE:kiln>' make-model --preset tiny-qwen3-moe --seed 21 --out '${KILN_NEW_ARCH_MODELS}/tiny-qwen3-moe' && '$<TARGET_FILE:kiln>' make-model --preset tiny-mixtral --seed 22 --out '${KILN_NEW_ARCH_MODELS}/tiny-mixtral' && '$<TARGET_FILE:kiln>' make-model --preset tiny-gemma3 --seed 23 --out '${KILN_NEW_ARCH_MODELS}/tiny-gemma3'"
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(new_architectures_make_models PROPERTIES FIXTURES_SETUP kiln_new_arch_models
                     LABELS integration TIMEOUT 300)

find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME new_architectures_serve
           COMMAND ${KILN_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/new_architectures_test.mjs)
  set_tests_properties(new_architectures_serve PROPERTIES
                       FIXTURES_REQUIRED kiln_new_arch_models LABELS integration TIMEOUT 600
                       ENVIRONMENT "KILN_NEW_ARCH_MODELS=${KILN_NEW_ARCH_MODELS};KILN_BINARY=$<TARGET_FILE:kiln>")
endif()
