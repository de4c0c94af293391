# `kiln bench serve`: its unit tests (tests/unit/http/bench_client_*.cpp) are compiled into
# kiln_http_tests and need the load generator's library.
if(TARGET kiln_http_tests)
  target_link_libraries(kiln_http_tests PRIVATE kiln_bench_serve)
  file(GLOB bench_client_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unit/http/bench_client_*.cpp)
  # GCC 12 at -O3 reports "potential null pointer dereference" inside Asio once it is inlined.
  set_source_files_properties(${bench_client_tests} PROPERTIES COMPILE_OPTIONS
                              $<$<CXX_COMPILER_ID:GNU>:-Wno-null-dereference>)
endif()
