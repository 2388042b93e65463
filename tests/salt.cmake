# Real Salt (issue 20; tests/test_salt.py, tests/saltlab.py): salt-master,
# minions, a syndic and salt-api from an installed Salt or the 3008 and 3006
# trees of ../shared/salt; the saltrelay runner through salt-run, salt-api
# and RunnerClient; the state tree conf/salt/states with salt-call --local.
# Exit 77 (skipped) only when no Salt is there. Each test starts its own Salt
# daemons (tens of seconds on a loaded machine): release build only, as they
# test Salt's side and the runner; the ASan build runs the C parts they use
# in test_status.
if(NOT SALTRELAY_SANITIZE)
  saltrelay_pytest(test_salt test_flat_3008 test_flat_3006 test_tiered_3008 test_state_tree)
  foreach(t test_flat_3008 test_flat_3006 test_tiered_3008 test_state_tree)
    set_tests_properties(test_salt.${t} PROPERTIES SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
  endforeach()
endif()
