# FindCAF.cmake -- locate C++ Actor Framework 0.17.x as packaged by Debian 12
# (libcaf-dev ships headers + .so only: no CAFConfig.cmake, no .pc file).
#
# Usage:   find_package(CAF 0.17 REQUIRED COMPONENTS core io [openssl])
# Targets: CAF::core, CAF::io, CAF::openssl   (same names upstream CAF >= 0.18
#          exports from its CAFConfig.cmake, so switching later is painless)
# Vars:    CAF_FOUND, CAF_VERSION, CAF_INCLUDE_DIR, CAF_<COMP>_LIBRARY

find_path(CAF_INCLUDE_DIR NAMES caf/config.hpp)

if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _caf_ver_line
       REGEX "^#define CAF_VERSION [0-9]+")
  string(REGEX REPLACE ".* ([0-9]+)$" "\\1" _caf_ver "${_caf_ver_line}")
  math(EXPR _caf_major "${_caf_ver} / 10000")
  math(EXPR _caf_minor "(${_caf_ver} / 100) % 100")
  math(EXPR _caf_patch "${_caf_ver} % 100")
  set(CAF_VERSION "${_caf_major}.${_caf_minor}.${_caf_patch}")
endif()

if(NOT CAF_FIND_COMPONENTS)
  set(CAF_FIND_COMPONENTS core)
endif()
# io and openssl need core; openssl needs io
if("openssl" IN_LIST CAF_FIND_COMPONENTS AND NOT "io" IN_LIST CAF_FIND_COMPONENTS)
  list(APPEND CAF_FIND_COMPONENTS io)
endif()
if(NOT "core" IN_LIST CAF_FIND_COMPONENTS)
  list(APPEND CAF_FIND_COMPONENTS core)
endif()

find_package(Threads QUIET)

foreach(_comp IN LISTS CAF_FIND_COMPONENTS)
  find_library(CAF_${_comp}_LIBRARY NAMES caf_${_comp})
  if(CAF_${_comp}_LIBRARY)
    set(CAF_${_comp}_FOUND TRUE)
  else()
    set(CAF_${_comp}_FOUND FALSE)
  endif()
  mark_as_advanced(CAF_${_comp}_LIBRARY)
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_INCLUDE_DIR CAF_core_LIBRARY
  VERSION_VAR CAF_VERSION
  HANDLE_COMPONENTS)
mark_as_advanced(CAF_INCLUDE_DIR)

if(CAF_FOUND)
  foreach(_comp IN LISTS CAF_FIND_COMPONENTS)
    if(CAF_${_comp}_FOUND AND NOT TARGET CAF::${_comp})
      add_library(CAF::${_comp} UNKNOWN IMPORTED)
      set_target_properties(CAF::${_comp} PROPERTIES
        IMPORTED_LOCATION "${CAF_${_comp}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}")
    endif()
  endforeach()
  if(TARGET Threads::Threads)
    set_property(TARGET CAF::core APPEND PROPERTY INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
  if(TARGET CAF::io)
    set_property(TARGET CAF::io APPEND PROPERTY INTERFACE_LINK_LIBRARIES CAF::core)
  endif()
  if(TARGET CAF::openssl)
    find_package(OpenSSL QUIET)
    set_property(TARGET CAF::openssl APPEND PROPERTY INTERFACE_LINK_LIBRARIES CAF::io)
    if(TARGET OpenSSL::SSL)
      set_property(TARGET CAF::openssl APPEND PROPERTY INTERFACE_LINK_LIBRARIES OpenSSL::SSL)
    endif()
  endif()
endif()
