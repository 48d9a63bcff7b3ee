# The JavaScript client (clients/js): unit tests (node:test, a scripted fake
# gateway), integration tests against the real wsgw + nats-server +
# example_service, and browser tests in headless Chromium (Debian's chromium,
# driven by playwright-core). tools/test installs node, npm, chromium and the
# npm packages (npm ci in clients/js) before ctest runs; a missing one makes
# these tests fail, never skip.
# Included from tests/integration/CMakeLists.txt. Registered in the plain
# build only: the sanitizer build would run the same JavaScript again.
if(WSGW_SANITIZE)
  return()
endif()
set(WSGW_JS_DIR ${CMAKE_SOURCE_DIR}/clients/js)
find_program(WSGW_NODE node)

file(GLOB js_unit CONFIGURE_DEPENDS ${WSGW_JS_DIR}/test/unit/*_test.js)
file(GLOB js_integration CONFIGURE_DEPENDS ${WSGW_JS_DIR}/test/integration/*_test.js)
file(GLOB js_browser CONFIGURE_DEPENDS ${WSGW_JS_DIR}/test/browser/*_test.js)

set(js_env
    "WSGW_BINARY=$<TARGET_FILE:wsgw>"
    "EXAMPLE_SERVICE=$<TARGET_FILE:example_service>"
    "WSGW_CLI=$<TARGET_FILE:wsgw-cli>"
    "WSGW_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

foreach(kind unit integration browser)
  set(name js_${kind})
  if(NOT WSGW_NODE)
    add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -E false)
    set_tests_properties(${name} PROPERTIES LABELS js)
    message(WARNING "node not found: ${name} fails until node is installed (tools/test installs it)")
    continue()
  endif()
  # Test files of one kind run one after another: they start gateways and
  # browsers, and the machine has two cores.
  add_test(NAME ${name}
           COMMAND ${WSGW_NODE} --test --test-concurrency=1 ${js_${kind}}
           WORKING_DIRECTORY ${WSGW_JS_DIR})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${js_env}" LABELS "js;${kind}" TIMEOUT 300)
endforeach()
