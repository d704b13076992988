# imapav_add_test(NAME <name> KIND unit|integration SOURCES ... LIBS ... [TIMEOUT s])
# One Boost.Test executable registered with CTest, labelled by kind.
function(imapav_add_test)
  cmake_parse_arguments(T "" "NAME;KIND;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  imapav_target(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} Boost::unit_test_framework)
  target_compile_definitions(${T_NAME} PRIVATE BOOST_TEST_DYN_LINK
    IMAPAV_SOURCE_DIR="${PROJECT_SOURCE_DIR}" IMAPAV_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} --log_level=message)
  set_tests_properties(${T_NAME} PROPERTIES LABELS ${T_KIND} TIMEOUT ${T_TIMEOUT})
  if(IMAPAV_SANITIZE)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT
      "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
endfunction()
