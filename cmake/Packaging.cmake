# Install-time metadata for consumers: a pkg-config file and a CMake package
# (h2poolConfig.cmake, h2poolConfigVersion.cmake, h2poolTargets.cmake).
# Included from the top-level CMakeLists.txt after src/, which defines the
# h2pool target and its install(TARGETS ... EXPORT h2poolTargets) rule.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(H2POOL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/h2pool"
  CACHE STRING "Where h2poolConfig.cmake is installed (relative to the prefix)")
mark_as_advanced(H2POOL_INSTALL_CMAKEDIR)

# --- pkg-config -------------------------------------------------------------
#
# Configured at install time rather than at configure time: the prefix is
# then the one actually installed to, so `cmake --install build --prefix DIR`
# yields a .pc whose paths point into DIR (like the relocatable CMake package
# below). libdir/includedir stay relative to ${prefix} when GNUInstallDirs
# gives relative paths, and are used verbatim when they are absolute.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_h2pool_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
  set(_h2pool_pc_dest "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
else()
  set(_h2pool_pc_libdir "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(_h2pool_pc_dest "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(_h2pool_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(_h2pool_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# The optional decoders join the private requirements when built in.
set(_h2pool_pc_requires libnghttp2 libevent_core libevent_pthreads openssl zlib libcares
  ${H2POOL_CODING_PC_MODULES})
list(JOIN _h2pool_pc_requires " " _h2pool_pc_requires)

# @VAR@ below is filled now; ${VAR} is evaluated by the install script.
set(_h2pool_pc_code [=[
set(prefix "${CMAKE_INSTALL_PREFIX}")
set(exec_prefix "\${prefix}")
set(libdir [[@_h2pool_pc_libdir@]])
set(includedir [[@_h2pool_pc_includedir@]])
set(PROJECT_DESCRIPTION [[@PROJECT_DESCRIPTION@]])
set(PROJECT_VERSION [[@PROJECT_VERSION@]])
set(H2POOL_PC_REQUIRES_PRIVATE [[@_h2pool_pc_requires@]])
set(_h2pool_pc_file "$ENV{DESTDIR}@_h2pool_pc_dest@/h2pool.pc")
message(STATUS "Installing: ${_h2pool_pc_file}")
configure_file([[@PROJECT_SOURCE_DIR@/pkgconfig/h2pool.pc.in]]
  "${_h2pool_pc_file}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_h2pool_pc_file}")
]=])
string(CONFIGURE "${_h2pool_pc_code}" _h2pool_pc_code @ONLY)
install(CODE "${_h2pool_pc_code}")
# Re-run the configure step when the template changes.
set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY
  CMAKE_CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/pkgconfig/h2pool.pc.in")

# --- CMake package ----------------------------------------------------------
#
#   find_package(h2pool 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE h2pool::h2pool)
install(EXPORT h2poolTargets
  NAMESPACE h2pool::
  FILE h2poolTargets.cmake
  DESTINATION "${H2POOL_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/h2poolConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/h2poolConfig.cmake"
  INSTALL_DESTINATION "${H2POOL_INSTALL_CMAKEDIR}")

# The major version is the SONAME's: within it the ABI only grows.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/h2poolConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion)

install(FILES
  "${PROJECT_BINARY_DIR}/h2poolConfig.cmake"
  "${PROJECT_BINARY_DIR}/h2poolConfigVersion.cmake"
  DESTINATION "${H2POOL_INSTALL_CMAKEDIR}")
