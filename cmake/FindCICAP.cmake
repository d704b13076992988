# Finds c-icap's client library, libicapapi (Debian: libicapapi-dev).
# It ships no pkg-config file. Its headers are included as <c_icap/xxx.h>; the
# c_icap directory itself must NOT be on the include path, because its log.h,
# util.h, header.h ... would shadow ours.
#
# Defines CICAP_FOUND, CICAP_VERSION and the imported target CICAP::icapapi.

find_path(CICAP_INCLUDE_DIR NAMES c_icap/c-icap.h)
find_library(CICAP_LIBRARY NAMES icapapi)

if(CICAP_INCLUDE_DIR AND EXISTS "${CICAP_INCLUDE_DIR}/c_icap/c-icap-conf.h")
  # C_ICAP_HEX_VERSION is 0xMMMMmmmmPPPP, e.g. 0x00000005000A for 0.5.10.
  file(STRINGS "${CICAP_INCLUDE_DIR}/c_icap/c-icap-conf.h" _cicap_ver
       REGEX "^#define[ \t]+C_ICAP_HEX_VERSION[ \t]+0x[0-9A-Fa-f]+")
  if(_cicap_ver MATCHES "0x([0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f])([0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f])([0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f])")
    math(EXPR _maj "0x${CMAKE_MATCH_1}")
    math(EXPR _min "0x${CMAKE_MATCH_2}")
    math(EXPR _pat "0x${CMAKE_MATCH_3}")
    set(CICAP_VERSION "${_maj}.${_min}.${_pat}")
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CICAP
  REQUIRED_VARS CICAP_LIBRARY CICAP_INCLUDE_DIR
  VERSION_VAR CICAP_VERSION)

if(CICAP_FOUND AND NOT TARGET CICAP::icapapi)
  add_library(CICAP::icapapi UNKNOWN IMPORTED)
  set_target_properties(CICAP::icapapi PROPERTIES
    IMPORTED_LOCATION "${CICAP_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CICAP_INCLUDE_DIR}")
endif()
mark_as_advanced(CICAP_INCLUDE_DIR CICAP_LIBRARY)
