# /v1/embeddings, /v1/rerank and /v1/score against the real server: tiny Qwen3-Embedding and
# Qwen3-Reranker checkpoints from `kiln make-model`, and a tiny-qwen3 generator with the same seed,
# hence the same weights as the reranker, for an independent check of its scores. The same models
# serve the OpenAPI schema check of responses and stream chunks. The seeds are those of the
# sentence-transformers / transformers fixtures (tools/make_embedding_fixtures.py).
set(KILN_PREFILL_MODELS ${CMAKE_BINARY_DIR}/test-models/prefill)
add_test(NAME embeddings_make_models
         COMMAND ${CMAKE_COMMAND} -E env --unset=KILN_TOKENIZERS_DIR sh -c
                 "'$<TARGET_FILE:kiln>' make-model --preset tiny-qwen3-embedding --seed 201 --dtype f32 --out '${KILN_PREFILL_MODELS}/emb' && '$<TARGET_FILE:kiln>' make-model --preset tiny-qwen3-reranker --seed 202 --dtype f32 --out '${KILN_PREFILL_MODELS}/rerank' && '$<TARGET_FILE:kiln>' make-model --preset tiny-qwen3 --seed 202 --dtype f32 --out '${KILN_PREFILL_MODELS}/gen'"
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(embeddings_make_models PROPERTIES FIXTURES_SETUP kiln_prefill_models LABELS integration TIMEOUT 300)

find_program(KILN_NODE node)
if(KILN_NODE)
  foreach(t embeddings openai_schema)
    add_test(NAME ${t}_api COMMAND ${KILN_NODE} --test ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}_test.mjs)
    set_tests_properties(${t}_api PROPERTIES FIXTURES_REQUIRED kiln_prefill_models LABELS integration TIMEOUT 600
                         ENVIRONMENT "KILN_PREFILL_MODELS=${KILN_PREFILL_MODELS};KILN_BINARY=$<TARGET_FILE:kiln>;KILN_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  endforeach()
endif()
