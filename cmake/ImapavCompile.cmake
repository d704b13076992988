# Warnings and sanitizers, applied per target so third-party code is not affected.

set(IMAPAV_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wnull-dereference
    -Wformat=2 -Wimplicit-fallthrough)
if(IMAPAV_WERROR)
  list(APPEND IMAPAV_WARNINGS -Werror)
endif()

if(IMAPAV_SANITIZE)
  set(IMAPAV_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
  add_compile_options(${IMAPAV_SANITIZER_FLAGS})
  # With sanitizers GCC warns of "maybe uninitialized" values it cannot see through its
  # own instrumentation (false positives in Boost.Test's headers at -O2).
  list(APPEND IMAPAV_WARNINGS -Wno-maybe-uninitialized)
  add_link_options(${IMAPAV_SANITIZER_FLAGS})
endif()

# imapav_target(<target>): the project's compile settings for one of our targets.
function(imapav_target target)
  target_compile_options(${target} PRIVATE ${IMAPAV_WARNINGS})
  target_compile_features(${target} PUBLIC cxx_std_20)
endfunction()

# imapav_write_if_changed(<file> <content>): writes generated source only when it changed,
# so a re-configure does not rebuild. Unlike file(CONFIGURE), it does not expand ${...}
# or @...@ inside the content (notice templates use ${name}).
function(imapav_write_if_changed file content)
  if(EXISTS ${file})
    file(READ ${file} _old)
    if(_old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE ${file} "${content}")
endfunction()
