# The fleet-scale smoke test (issue 9): bench/scale.py with 1,000 simulated
# minions and the issue's ratio aims (connect, fan-out, return and auth storms,
# the filtered job's single entry, RSS). Release build only: it prints
# "skipped" for a sanitizer build. Alone (RUN_SERIAL): thousands of sockets,
# and ratios against a baseline measured in the same run.
add_test(NAME scale_smoke COMMAND ${PYTHON3} ${CMAKE_SOURCE_DIR}/bench/scale.py ${CMAKE_BINARY_DIR}
         --minions 1000 --check)
set_tests_properties(scale_smoke PROPERTIES TIMEOUT 400 RUN_SERIAL TRUE
  ENVIRONMENT "SALTRELAY_BUILD=${CMAKE_BINARY_DIR};SALTRELAY_WIRE=${SALTRELAY_WIRE}")
