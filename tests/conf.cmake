# conf/ and man pages against the config loader (issue 5).
saltrelay_pytest(test_conf
  test_every_loader_key_in_conf test_documented_defaults test_up_and_down_share_common_keys
  test_man_pages_match_help test_status_man_page_matches_help test_redis_replica_conf_loads)
