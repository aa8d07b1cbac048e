# FindLLHTTP: provides the imported target LLHTTP::llhttp.
#
# 1. A system libllhttp (libllhttp-dev and the like): header llhttp.h plus libllhttp.
# 2. Otherwise Debian's node-llhttp, which ships llhttp's C sources in /usr/share/llhttp and the
#    header in /usr/share/include/llhttp; those are compiled here into a static library.
#
# porter needs llhttp's strict mode (LLHTTP_STRICT_MODE, a compile-time choice of llhttp's): the
# loose one takes any byte after a CR as its LF (a bare CR ends a header section, any two bytes
# end a chunk), and a request another server frames differently is how requests are smuggled.
# The sources are compiled strict here; a system library is tried on such a request at configure
# time and refused if it accepts it.

find_path(LLHTTP_INCLUDE_DIR llhttp.h)
find_library(LLHTTP_LIBRARY llhttp)

if(LLHTTP_INCLUDE_DIR AND LLHTTP_LIBRARY)
  add_library(LLHTTP::llhttp UNKNOWN IMPORTED)
  set_target_properties(LLHTTP::llhttp PROPERTIES
    IMPORTED_LOCATION "${LLHTTP_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LLHTTP_INCLUDE_DIR}")
  set(LLHTTP_SOURCE "system library ${LLHTTP_LIBRARY}")
  include(CheckCSourceRuns)
  include(CMakePushCheckState)
  cmake_push_check_state(RESET)
  set(CMAKE_REQUIRED_INCLUDES ${LLHTTP_INCLUDE_DIR})
  set(CMAKE_REQUIRED_LIBRARIES ${LLHTTP_LIBRARY})
  check_c_source_runs([=[
#include <llhttp.h>
int main(void) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\rX";
    llhttp_settings_t s;
    llhttp_t p;
    llhttp_settings_init(&s);
    llhttp_init(&p, HTTP_REQUEST, &s);
    return llhttp_execute(&p, req, sizeof req - 1) == HPE_OK; /* 0: refused, as it must be */
}]=] LLHTTP_IS_STRICT)
  cmake_pop_check_state()
  if(NOT LLHTTP_IS_STRICT)
    message(FATAL_ERROR "${LLHTTP_LIBRARY} was built without LLHTTP_STRICT_MODE: it takes a "
      "bare CR for a line end. Remove it, or install llhttp's sources (Debian: node-llhttp).")
  endif()
else()
  find_path(LLHTTP_SRC_DIR llhttp.c api.c http.c PATHS /usr/share/llhttp NO_DEFAULT_PATH)
  find_path(LLHTTP_SRC_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp NO_DEFAULT_PATH)
  if(LLHTTP_SRC_DIR AND LLHTTP_SRC_INCLUDE_DIR)
    add_library(porter_llhttp STATIC
      ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c ${LLHTTP_SRC_DIR}/http.c)
    target_include_directories(porter_llhttp SYSTEM PUBLIC ${LLHTTP_SRC_INCLUDE_DIR})
    target_compile_definitions(porter_llhttp PRIVATE LLHTTP_STRICT_MODE=1)
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
