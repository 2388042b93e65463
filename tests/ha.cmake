# ha.cmake -- no single point of failure (tests/test_ha.py): Redis Sentinel,
# failover, two saltrelay-ups.
saltrelay_pytest(test_ha
  test_sentinel_bad_input test_sentinel_failover_publications test_other_writer_ahead
  test_two_ups_kill9_each test_wait_without_replicas test_tls_wan test_status_lists_ups
  test_failover_not_replicated test_switch_master_old_primary_answers test_dead_consumers_removed
  test_failover_reply_records_kept test_two_ups_one_host_named_apart test_rejoin_hold_keeps_order
  test_failover_resent_skipped_by_dc)
