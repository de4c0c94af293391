# The grammar corpus tests read JSONSchemaBench files with `kiln bench grammar`'s reader.
if(TARGET kiln_grammar_tests)
  target_link_libraries(kiln_grammar_tests PRIVATE kiln_bench_grammar)
endif()
