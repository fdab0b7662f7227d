# Passed as CMAKE_PROJECT_INCLUDE by the Makefile when building against the PyPI ROS wheels.
# Their exported targets name the include directory of the interpreter they were built with
# (/opt/python/...), which does not exist here, and CMake refuses to generate. At the end of
# configuration, drop include directories that do not exist from every imported target.
# A normal ROS 2 install does not need this file.
function(_leo_prune_dangling_includes)
  get_property(targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(target ${targets})
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(kept "")
    set(dropped "")
    foreach(dir ${dirs})
      if(dir MATCHES "\\$<" OR EXISTS "${dir}")
        list(APPEND kept "${dir}")
      else()
        list(APPEND dropped "${dir}")
      endif()
    endforeach()
    if(dropped)
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
      message(STATUS "leo_ros: dropped missing include dirs of ${target}: ${dropped}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _leo_prune_dangling_includes)
