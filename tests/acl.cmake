# The least-privilege Redis users of docs/security.md, as printed (issue 19): tests/test_acl.py.
saltrelay_pytest(test_acl test_acl_whole_path test_auth_refused)
