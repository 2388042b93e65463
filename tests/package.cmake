# Packaging and systemd (issue 5): needs cpack (cmake), dpkg-deb (dpkg) and
# systemd-analyze (systemd). test_deb_contents and test_units_verify run
# cpack on the build dir; RUN_SERIAL keeps them apart.
saltrelay_pytest(test_package test_deb_contents test_units_verify test_units_contract test_sd_notify)
set_tests_properties(test_package.test_deb_contents test_package.test_units_verify PROPERTIES RUN_SERIAL TRUE)
