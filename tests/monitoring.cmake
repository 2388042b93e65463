# What monitoring reads (issue 19): the metrics table of docs/operations.md
# against what both daemons export, the process metrics, GET /healthz.
saltrelay_pytest(test_monitoring test_metrics_documented test_process_metrics test_healthz)
