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
