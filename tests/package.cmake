# Packaging and systemd (issue 5, issue 19): needs cpack (cmake), dpkg
# (dpkg-deb), lintian, bash-completion, logrotate and systemd-analyze
# (systemd). test_build_packages runs cpack once (a fixture; alone, it is
# RUN_SERIAL); the tests that read its packages require it.
saltrelay_pytest(test_package test_build_packages test_deb_contents test_units_verify test_units_contract
  test_sd_notify test_lintian test_debug_symbols test_changelog_and_copyright test_maintainer_scripts
  test_bash_completion test_logrotate)
set_tests_properties(test_package.test_build_packages PROPERTIES FIXTURES_SETUP saltrelay_debs RUN_SERIAL TRUE)
set_tests_properties(test_package.test_deb_contents test_package.test_units_verify test_package.test_lintian
  test_package.test_debug_symbols test_package.test_bash_completion PROPERTIES FIXTURES_REQUIRED saltrelay_debs)
