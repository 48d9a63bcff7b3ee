# Operations integration tests (docs/OPERATIONS.md): /metrics, /healthz and
# /readyz, the HTTP push API, draining on SIGTERM and slow consumers, against
# a real nats-server and the real wsgw binary, driven from Debian's
# /usr/bin/python3 with python3-websockets. Every port is OS-picked, so these
# run in parallel with everything else (ctest -j).
# Included from tests/integration/CMakeLists.txt.
foreach(t test_operations)
  add_test(NAME ${t} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.py -v)
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "WSGW_BINARY=$<TARGET_FILE:wsgw>" LABELS integration TIMEOUT 300)
endforeach()
