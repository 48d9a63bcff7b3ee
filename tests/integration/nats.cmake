# NATS integration tests (docs/PROTOCOL.md §6): a real nats-server (Debian's
# 2.9, single node and a 3-node loopback cluster) and the real wsgw binary,
# driven from Debian's /usr/bin/python3 with python3-websockets. Every port is
# OS-picked, so these run in parallel with everything else (ctest -j).
# Included from tests/integration/CMakeLists.txt.
foreach(t test_nats_delivery test_nats_cluster)
  add_test(NAME ${t} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.py)
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "WSGW_BINARY=$<TARGET_FILE:wsgw>" LABELS integration TIMEOUT 300)
endforeach()
# Control messages end to end (§6.4): over NATS, through the admin API and
# from wsgw-cli.
add_test(NAME test_control COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_control.py)
set_tests_properties(test_control PROPERTIES
                     ENVIRONMENT "WSGW_BINARY=$<TARGET_FILE:wsgw>;WSGW_CLI=$<TARGET_FILE:wsgw-cli>"
                     LABELS integration TIMEOUT 300)
