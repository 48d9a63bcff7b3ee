# Command script tests (scripts/README.md): hot reload, SIGHUP, sandbox,
# limits, forwarding, reload under traffic, `wsgw check-scripts`. Real
# nats-server and the real wsgw binary, from Debian's /usr/bin/python3.
# Included from tests/integration/CMakeLists.txt.
add_test(NAME test_scripts COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_scripts.py)
set_tests_properties(test_scripts PROPERTIES ENVIRONMENT "WSGW_BINARY=$<TARGET_FILE:wsgw>;WSGW_SOURCE_DIR=${CMAKE_SOURCE_DIR}" LABELS integration TIMEOUT 300)
