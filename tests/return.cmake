# The return path (issue 3): test tools and tests/test_return.py.
foreach(tool zmaster zreqs)
  add_executable(${tool} tools/${tool}.c)
  target_link_libraries(${tool} PRIVATE testlines)
endforeach()
saltrelay_pytest(test_return
  test_replay_200_clients test_deadline_silent_master test_oversize_refused
  test_kill_up_then_down test_registry_auth test_registry_made_up_ids test_auth_paced
  test_ack_refused_bounded test_reader_reconnect_once test_reply_reader_late_connect test_huge_max_frame_size
  test_request_resent_after_cut
  test_auth_storm test_auth_older_attempt_shed test_auth_overload_sheds_oldest test_read_ahead_bound test_req_socket_replaced_on_disconnect test_mom_late_start
  test_pending_sent_after_up_kill test_restart_default_name_answers_held test_late_reply_never_reaches_new_requester
  test_mom_unreachable
  test_expired_never_sent test_max_pending_refuses test_oversize_reply test_redis_down_requests_fail_counted
  test_departed_requests_dropped test_departed_never_stored test_departed_deleted_from_stream
  test_departed_fd_reused test_request_on_reused_fd_kept test_dc_flood_fair test_dc_stream_confined
  test_upgrade_request_streams)
# Alone (RUN_SERIAL): test_auth_storm's bound is relative to a baseline
# measured in the same run, before the storm (tests starting or ending beside
# it would change the load in between); the others bound a latency in
# seconds (_auth at 10/s within 5 s, an answer within 2.5 s of the MoM's
# start, held requests within 3 s of a restart, a new request within 5 s of
# the MoM's restart), which a core busy elsewhere stretches.
set_tests_properties(test_return.test_auth_storm test_return.test_auth_paced test_return.test_mom_late_start
  test_return.test_pending_sent_after_up_kill test_return.test_req_socket_replaced_on_disconnect
  PROPERTIES RUN_SERIAL TRUE)
