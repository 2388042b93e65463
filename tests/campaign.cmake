# campaign.cmake -- the random-fault campaign (issue 18; tests/campaign/):
# its Salt-shaped MoM, minions and request clients, the source-address shim
# that places the DC daemons on "hosts" of their own, and a short campaign on
# fixed seeds plus the checker's self-test.
foreach(tool campmom campsub campreq)
  add_executable(${tool} tools/${tool}.c)
  target_link_libraries(${tool} PRIVATE PkgConfig::DEPS)
endforeach()
add_library(srcbind MODULE tools/srcbind.c)
target_link_libraries(srcbind PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(srcbind PROPERTIES PREFIX "lib")

# The checker must catch what is planted in synthetic histories (a test that
# cannot fail is a defect), and a short campaign on fixed seeds must find no
# broken promise. The second seed runs in the release build only: the
# sanitizer build is several times slower and the suite stays under 30 min.
# Nothing is set aside (check.py --known CLASS,... would set aside a class
# within 60 s after a primary switch, for a mechanism docs/failure-semantics.md
# lists as found and not fixed yet; none is now).
# The campaign ends and cleans up a hung run itself (--time-limit, by default
# its minutes + 420 s, here 480 s: processes, proxies, its tmpfs), before
# ctest's TIMEOUT. Not RUN_SERIAL: every port comes from harness.free_port(),
# every file from its own directory, so it runs beside the other tests.
# A long run is manual: DEVELOPERS.md, docs/failure-semantics.md.
set(campaign_env "SALTRELAY_BUILD=${CMAKE_BINARY_DIR};SALTRELAY_WIRE=${SALTRELAY_WIRE}")
add_test(NAME campaign.checker_self_test
         COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/campaign/check.py --self-test)
set_tests_properties(campaign.checker_self_test PROPERTIES TIMEOUT 60 ENVIRONMENT "${campaign_env}")
foreach(seed 11 12)
  set(only "")
  if(seed EQUAL 12)
    set(only "--release-only")
  endif()
  add_test(NAME campaign.short_seed_${seed}
           COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/campaign/campaign.py --seed ${seed} --minutes 1
                   ${only})
  set_tests_properties(campaign.short_seed_${seed} PROPERTIES TIMEOUT 600 ENVIRONMENT "${campaign_env}")
endforeach()
