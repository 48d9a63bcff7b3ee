# Token lifecycle integration tests (docs/PROTOCOL.md §1, §3, §5, §6.2, §6.4,
# §6.6): a real nats-server, the real wsgw binary and a test auth service
# (auth_service.py) on a real NATS connection, driven from Debian's
# /usr/bin/python3 with python3-websockets. Every port is OS-picked.
# Included from tests/integration/CMakeLists.txt.
foreach(t test_auth_lifecycle)
  add_test(NAME ${t} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.py)
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "WSGW_BINARY=$<TARGET_FILE:wsgw>" LABELS integration TIMEOUT 300)
endforeach()
