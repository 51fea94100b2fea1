# Cross-compile for 64-bit ARM Linux (Raspberry Pi 4/5, Jetson) with Debian's
# gcc-aarch64-linux-gnu. Tests built this way run under qemu-aarch64 (see
# CRISP_QEMU_CPUS in the top-level CMakeLists.txt).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CRISP_CROSS_TRIPLE aarch64-linux-gnu CACHE STRING "Toolchain triple")
set(CMAKE_C_COMPILER ${CRISP_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${CRISP_CROSS_TRIPLE}-g++)

# Where the target's libc lives (qemu-aarch64 -L needs it too).
set(CRISP_SYSROOT /usr/${CRISP_CROSS_TRIPLE} CACHE PATH "Target libc root")
set(CMAKE_FIND_ROOT_PATH ${CRISP_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
