# FindLLHTTP: provides the imported target LLHTTP::llhttp.
#
# 1. A system libllhttp (libllhttp-dev and the like): header llhttp.h plus libllhttp.
# 2. Otherwise Debian's node-llhttp, which ships llhttp's C sources in /usr/share/llhttp and the
#    header in /usr/share/include/llhttp; those are compiled here into a static library.

find_path(LLHTTP_INCLUDE_DIR llhttp.h)
find_library(LLHTTP_LIBRARY llhttp)

if(LLHTTP_INCLUDE_DIR AND LLHTTP_LIBRARY)
  add_library(LLHTTP::llhttp UNKNOWN IMPORTED)
  set_target_properties(LLHTTP::llhttp PROPERTIES
    IMPORTED_LOCATION "${LLHTTP_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LLHTTP_INCLUDE_DIR}")
  set(LLHTTP_SOURCE "system library ${LLHTTP_LIBRARY}")
else()
  find_path(LLHTTP_SRC_DIR llhttp.c api.c http.c PATHS /usr/share/llhttp NO_DEFAULT_PATH)
  find_path(LLHTTP_SRC_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp NO_DEFAULT_PATH)
  if(LLHTTP_SRC_DIR AND LLHTTP_SRC_INCLUDE_DIR)
    add_library(porter_llhttp STATIC
      ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c ${LLHTTP_SRC_DIR}/http.c)
    target_include_directories(porter_llhttp SYSTEM PUBLIC ${LLHTTP_SRC_INCLUDE_DIR})
    set_target_properties(porter_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
    # Generated third-party code: its warnings are not ours to fix.
    target_compile_options(porter_llhttp PRIVATE -w)
    add_library(LLHTTP::llhttp ALIAS porter_llhttp)
    set(LLHTTP_INCLUDE_DIR ${LLHTTP_SRC_INCLUDE_DIR})
    set(LLHTTP_SOURCE "sources in ${LLHTTP_SRC_DIR}")
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LLHTTP REQUIRED_VARS LLHTTP_INCLUDE_DIR LLHTTP_SOURCE)
