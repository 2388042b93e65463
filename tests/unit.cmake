# unit.cmake -- unit tests of the shared code (proto/, runtime/, redis/) in C
# (tests/unit_*.c) and the command line test (tests/test_cli.py). Each
# UNIT_TEST(name) in a unit_*.c file is found here and becomes its own ctest
# test "unit_FILE.name".
add_library(unittest STATIC unit.c resp.c wire.c)
target_link_libraries(unittest PUBLIC saltrelay_redis saltrelay_runtime saltrelay_wire)
target_include_directories(unittest PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

file(GLOB unit_sources ${CMAKE_CURRENT_SOURCE_DIR}/unit_*.c)
list(SORT unit_sources)
foreach(src ${unit_sources})
  get_filename_component(prog ${src} NAME_WE)
  add_executable(${prog} ${src})
  target_link_libraries(${prog} PRIVATE unittest)
  file(STRINGS ${src} decls REGEX "^UNIT_TEST\\([a-z0-9_]+\\)")
  foreach(decl ${decls})
    string(REGEX REPLACE "^UNIT_TEST\\(([a-z0-9_]+)\\).*" "\\1" name "${decl}")
    add_test(NAME ${prog}.${name} COMMAND ${prog} ${name})
    set_tests_properties(${prog}.${name} PROPERTIES TIMEOUT 60
      ENVIRONMENT "SALTRELAY_WIRE=${SALTRELAY_WIRE}")
  endforeach()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${unit_sources})
# Alone: a 32 MiB append must return within 200 ms (no wait on a peer that
# does not read), which a core busy elsewhere stretches (failed at load 20).
set_tests_properties(unit_rpipe.large_command_alone_never_blocks_then_times_out PROPERTIES RUN_SERIAL TRUE)

saltrelay_pytest(test_cli test_bad_config_exits_2 test_check_config_prints test_sighup_reload
  test_sighup_log_reopen_fails)

# libFuzzer targets: cmake -DSALTRELAY_FUZZ=ON -DCMAKE_C_COMPILER=clang (tests/fuzz/run.sh does it)
option(SALTRELAY_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(SALTRELAY_FUZZ)
  add_subdirectory(fuzz)
endif()

# saltrelay-down's recent-publication set lives with its program, not in the shared code.
target_sources(unit_pubseen PRIVATE ${CMAKE_SOURCE_DIR}/relay-down/pubseen.c)
target_include_directories(unit_pubseen PRIVATE ${CMAKE_SOURCE_DIR}/relay-down)

# saltrelay-down's per-class accounting lives with its program, not in the shared code.
target_sources(unit_pubclass PRIVATE ${CMAKE_SOURCE_DIR}/relay-down/pub_class.c)
target_include_directories(unit_pubclass PRIVATE ${CMAKE_SOURCE_DIR}/relay-down)
