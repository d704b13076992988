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

# imapav_add_fuzz_target(NAME <name> LIBS ...)
# fuzz_<name>.cpp of the current directory defines LLVMFuzzerTestOneInput. Always built with
# replay_main.cpp as fuzz_<name>_replay and registered as fuzz_<name>_corpus (label fuzz),
# replaying corpus/<name>/. With IMAPAV_FUZZ also the libFuzzer binary fuzz_<name>, with
# IMAPAV_FUZZ_FLAGS (the sanitizers) and -fsanitize=fuzzer.
function(imapav_add_fuzz_target)
  cmake_parse_arguments(F "" "NAME" "LIBS" ${ARGN})
  set(source ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_${F_NAME}.cpp)
  add_executable(fuzz_${F_NAME}_replay ${source} ${CMAKE_CURRENT_SOURCE_DIR}/replay_main.cpp)
  imapav_target(fuzz_${F_NAME}_replay)
  target_link_libraries(fuzz_${F_NAME}_replay PRIVATE ${F_LIBS})
  add_test(NAME fuzz_${F_NAME}_corpus
           COMMAND fuzz_${F_NAME}_replay ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${F_NAME})
  set_tests_properties(fuzz_${F_NAME}_corpus PROPERTIES LABELS fuzz TIMEOUT 60)
  if(IMAPAV_SANITIZE)
    set_tests_properties(fuzz_${F_NAME}_corpus PROPERTIES ENVIRONMENT
      "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
  if(IMAPAV_FUZZ)
    add_executable(fuzz_${F_NAME} ${source})
    imapav_target(fuzz_${F_NAME})
    target_compile_options(fuzz_${F_NAME} PRIVATE ${IMAPAV_FUZZ_FLAGS} -fsanitize=fuzzer)
    target_link_options(fuzz_${F_NAME} PRIVATE ${IMAPAV_FUZZ_FLAGS} -fsanitize=fuzzer)
    target_link_libraries(fuzz_${F_NAME} PRIVATE ${F_LIBS})
  endif()
endfunction()
