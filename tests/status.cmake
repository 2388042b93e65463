# Acknowledgements, saltrelay-status, per-job accounting and metrics (tests/test_status.py).
saltrelay_pytest(test_status
  test_report_fields test_status_stale_dc_catches_up test_status_thresholds_warn
  test_status_bad_reports test_metrics_endpoint test_job_accounting test_job_delivery_unproven test_job_syndic test_job_cache_damaged
  test_minions_registry)
