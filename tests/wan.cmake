# The WAN fault suite (issue 10): tests/test_wan.py with tests/faultproxy.py.
# Release build only: the test skips itself in the sanitizer build.
saltrelay_pytest(test_wan test_wan_faults)
