# Health while idle, alert rules, dashboard, status --watch (issue 13): tests/test_health.py.
saltrelay_pytest(test_health
  test_heartbeat test_replica_link_broken_while_idle test_alert_rules test_prometheus_scrapes_both test_status_watch_tmux
  test_replication_delay_measured)
