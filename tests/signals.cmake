# Signals and the stop (issue 8): tests/test_signals.py.
saltrelay_pytest(test_signals
  test_hup_and_second_term_during_drain test_drain_waits_without_spinning test_sigterm_right_after_start)
