# One running saltrelay-down per datacenter: the DC's lease (tests/test_dcident.py).
saltrelay_pytest(test_dcident
  test_second_instance_waits_then_takes_over test_lease_of_another_host_runs_out test_lease_lost_in_outage_steps_down)
