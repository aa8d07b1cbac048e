# What running porter as a service needs besides the executable and the library, installed by
# `cmake --install` (`make install`): the manual pages porter(8) and porter.conf(5) (roff in
# docs/man/, compressed here), the systemd unit and the logrotate snippet (contrib/), the
# configuration and the web root a fresh installation starts with, and the docs for nginx users
# and operators. Then the Debian package of all of it (`make deb`, CPack).
#
# Where the configuration and the web root go depends on the prefix of the installation, known
# only when it runs (`cmake --install --prefix`, or CPack's): with /usr (a package), /etc/porter
# and /var/www/porter, as the FHS has them; with another prefix P (/usr/local by default),
# P/etc/porter and P/var/www/porter. The unit and the logrotate snippet name the installed paths.

find_program(PORTER_GZIP gzip REQUIRED)
set(PORTER_MAN_PAGES porter.8 porter.conf.5)
set(PORTER_MAN_GZ "")
foreach(page ${PORTER_MAN_PAGES})
  # -n: no name or time stamp inside, so the package is the same from build to build
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND ${PORTER_GZIP} -9n -c ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/${page}
      > ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/${page}
    COMMENT "Compressing the manual page ${page}" VERBATIM)
  list(APPEND PORTER_MAN_GZ ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
    DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(porter_man ALL DEPENDS ${PORTER_MAN_GZ})

install(FILES docs/nginx.md docs/operations.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Paths decided at install time, with the prefix of that installation (the unit's directory
# too: systemd reads /usr/lib/systemd/system, and a local installation's own lib/systemd/system
# is there for the administrator to link).
install(CODE "
  set(src \"${CMAKE_CURRENT_SOURCE_DIR}/contrib\")
  set(stage \"${CMAKE_CURRENT_BINARY_DIR}/contrib\")
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(prefix STREQUAL \"/usr\")
    set(etc /etc)
    set(var /var)
  else()
    set(etc \"\${prefix}/etc\")
    set(var \"\${prefix}/var\")
  endif()
  set(sbin \"\${prefix}/${CMAKE_INSTALL_SBINDIR}\")
  file(MAKE_DIRECTORY \"\${stage}\")
  foreach(f porter.service porter.logrotate porter.conf)
    file(READ \"\${src}/\${f}\" text)
    string(REPLACE /usr/sbin/porter \"\${sbin}/porter\" text \"\${text}\")
    string(REPLACE /etc/porter \"\${etc}/porter\" text \"\${text}\")
    string(REPLACE /var/www/porter \"\${var}/www/porter\" text \"\${text}\")
    file(WRITE \"\${stage}/\${f}\" \"\${text}\")
  endforeach()
  file(INSTALL \"\${stage}/porter.service\" DESTINATION \"\${prefix}/lib/systemd/system\")
  file(INSTALL \"\${stage}/porter.logrotate\" DESTINATION \"\${etc}/logrotate.d\"
    RENAME porter)
  file(INSTALL \"\${stage}/porter.conf\" DESTINATION \"\${etc}/porter\")
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${etc}/porter/conf.d\")
  file(INSTALL \"\${src}/index.html\" DESTINATION \"\${var}/www/porter\")
")

# ---- the Debian package: `make deb`, tests/package/test_deb.sh ----

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME porter)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "HTTP/1.1 and HTTP/2 server, reverse proxy and C library")
set(CPACK_PACKAGE_DESCRIPTION "porter serves static sites and passes requests on to backend \
services over HTTP/1.1 and HTTP/2, in cleartext and over TLS, with a configuration in nginx's \
syntax. libporter embeds the same server in a C program on its own libev loop; its headers, \
pkg-config and CMake files are included.")
set(CPACK_PACKAGE_CONTACT "porter <porter@localhost>")
# The install step runs with DESTDIR and the prefix /usr, whatever the build's own prefix, so the
# paths outside /usr (/etc, /var) land in the package too.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "media-types, passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_SOURCE_DIR}/contrib/debian/postinst
  ${CMAKE_CURRENT_SOURCE_DIR}/contrib/debian/prerm
  ${CMAKE_CURRENT_SOURCE_DIR}/contrib/debian/postrm
  ${CMAKE_CURRENT_SOURCE_DIR}/contrib/debian/conffiles
  ${CMAKE_CURRENT_SOURCE_DIR}/contrib/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
