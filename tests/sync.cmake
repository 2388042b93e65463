# Tree sync (issue 12): tests/test_sync.py.
saltrelay_pytest(test_sync
  test_mirror_update_atomic test_kill9_mid_sync_resumes test_hostile_records_refused test_tree_over_max_refused
  test_status_shows_tree_versions test_cut_off_dc_catches_up_and_gc)
