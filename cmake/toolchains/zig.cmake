# Cross-compile with Zig's C compiler (clang with its own libcs) from the `ziglang` PyPI
# package: no system cross toolchain, no root. `crisp-edge deploy --toolchain zig` uses it
# twice per board: static musl tools, and libcrisp.so against glibc for the board's Python.
#
#   cmake -S . -B build/zig-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/zig.cmake \
#         -DCRISP_ZIG_TARGET=aarch64-linux-musl -DCRISP_STATIC_TOOLS=ON
#
# CRISP_ZIG_TARGET: a zig target, ARCH-linux-musl or ARCH-linux-gnu[.GLIBC_VERSION].
# CRISP_ZIG_PYTHON: the Python that has ziglang installed (default: python3 on PATH).
set(CRISP_ZIG_TARGET aarch64-linux-musl CACHE STRING "Zig target triple")
if(NOT CRISP_ZIG_PYTHON)
  find_program(CRISP_ZIG_PYTHON NAMES python3 python REQUIRED)
endif()

set(CMAKE_SYSTEM_NAME Linux)
string(REGEX MATCH "^[^-]+" CMAKE_SYSTEM_PROCESSOR "${CRISP_ZIG_TARGET}")

# CMake wants one executable per tool, zig is `python -m ziglang cc -target T`: small wrapper
# scripts, written in the top-level build tree on the first read of this file and handed to
# the try_compile projects CMake runs (they read this file again from their own directory).
if(NOT CRISP_ZIG_WRAPPERS)
  set(CRISP_ZIG_WRAPPERS "${CMAKE_BINARY_DIR}/zig-wrappers")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES
     CRISP_ZIG_TARGET CRISP_ZIG_PYTHON CRISP_ZIG_WRAPPERS)
foreach(tool cc ar ranlib)
  set(_args "${tool}")
  if(tool STREQUAL "cc")
    # -mcpu=baseline: the architecture's baseline ISA, as gcc's default; kernels pick NEON
    # dotprod/fp16 or AVX2/AVX-512 at run time. (Zig reads -mtune as -mcpu, raising the ISA
    # of every instruction, so a board's -mtune is not passed to zig.)
    set(_args "cc -target ${CRISP_ZIG_TARGET} -mcpu=baseline")
  endif()
  file(CONFIGURE OUTPUT "${CRISP_ZIG_WRAPPERS}/zig-${tool}" @ONLY
       CONTENT "#!/bin/sh\nexec \"${CRISP_ZIG_PYTHON}\" -m ziglang ${_args} \"$@\"\n")
  file(CHMOD "${CRISP_ZIG_WRAPPERS}/zig-${tool}"
       PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                   WORLD_READ WORLD_EXECUTE)
endforeach()
set(CMAKE_C_COMPILER "${CRISP_ZIG_WRAPPERS}/zig-cc")
set(CMAKE_AR "${CRISP_ZIG_WRAPPERS}/zig-ar" CACHE FILEPATH "Archiver" FORCE)
set(CMAKE_RANLIB "${CRISP_ZIG_WRAPPERS}/zig-ranlib" CACHE FILEPATH "Ranlib" FORCE)

# Zig links its libc and compiler-rt with their debug information; a board's binaries need none
# (and are a third the size without).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-s")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-s")

# Zig brings its own libc headers and libraries: nothing is taken from this machine.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
