# The Redis pipeline (issue 8): tests/test_pipeline.py and its tool.
add_executable(zflood tools/zflood.c)
target_link_libraries(zflood PRIVATE PkgConfig::DEPS)
saltrelay_pytest(test_pipeline test_request_flood_memory)
