# Docs that run (issue 19): every configuration block of docs/ and README.md
# and every file in conf/, used as printed (tests/test_docs.py).
saltrelay_pytest(test_docs test_blocks_tagged test_redis_conf_blocks test_sentinel_conf_blocks
  test_daemon_yaml_blocks test_stunnel_conf_blocks test_acl_blocks test_salt_blocks test_prometheus_files
  test_deployment_md)
