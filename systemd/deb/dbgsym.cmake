# dbgsym.cmake -- run by cpack after it built the packages
# (CPACK_POST_BUILD_SCRIPTS): repairs the saltrelay-dbgsym .ddeb that CMake's
# DEB generator (3.25) makes with CPACK_DEBIAN_DEBUGINFO_PACKAGE. Its md5sums
# name the files by their absolute path in CPack's work tree, its .debug files
# are executable, and it lacks /usr/share/doc/saltrelay-dbgsym, which dh_strip
# makes a symlink to the main package's directory (copyright, changelog).
foreach(pkg IN LISTS CPACK_PACKAGE_FILES)
  if(NOT pkg MATCHES "\\.ddeb$")
    continue()
  endif()
  set(dir "${pkg}.tree")
  file(REMOVE_RECURSE "${dir}")
  execute_process(COMMAND dpkg-deb -R "${pkg}" "${dir}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dbgsym.cmake: dpkg-deb -R ${pkg} failed")
  endif()
  file(READ "${dir}/DEBIAN/md5sums" sums)
  string(REGEX REPLACE "  [^\n]*/usr/lib/debug/" "  usr/lib/debug/" sums "${sums}")
  file(WRITE "${dir}/DEBIAN/md5sums" "${sums}")
  file(GLOB_RECURSE debug_files "${dir}/usr/lib/debug/*.debug")
  file(CHMOD ${debug_files} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  file(MAKE_DIRECTORY "${dir}/usr/share/doc")
  file(CREATE_LINK saltrelay "${dir}/usr/share/doc/saltrelay-dbgsym" SYMBOLIC)
  execute_process(COMMAND dpkg-deb --root-owner-group -b "${dir}" "${pkg}" RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dbgsym.cmake: dpkg-deb -b ${dir} failed")
  endif()
  file(REMOVE_RECURSE "${dir}")
endforeach()
