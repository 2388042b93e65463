# The Redis pipeline (issue 8): tests/test_pipeline.py and its tool.
add_executable(zflood tools/zflood.c)
target_link_libraries(zflood PRIVATE PkgConfig::DEPS)
saltrelay_pytest(test_pipeline test_request_flood_memory)
# Alone: the peak RSS includes what ZeroMQ's I/O thread queues for the
# ROUTER while request intake's thread waits for a core; and 1.5 GB through
# loopback would slow the tests beside it.
set_tests_properties(test_pipeline.test_request_flood_memory PROPERTIES RUN_SERIAL TRUE)
