# Runs the built crisp-run (under RUNNER, e.g. qemu, when cross-compiled) on
# files test_cli left in DIR; checks exit codes and the streams.
#   cmake -DRUNNER="..." -DTOOL=path/to/crisp-run -DDIR=... -P crisp_run_binary.cmake
separate_arguments(runner UNIX_COMMAND "${RUNNER}")

function(expect code stream regex)
  execute_process(COMMAND ${runner} ${TOOL} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(stream STREQUAL "stdout")
    set(text "${out}")
  else()
    set(text "${err}")
  endif()
  if(NOT rc STREQUAL "${code}" OR NOT text MATCHES "${regex}")
    message(FATAL_ERROR "crisp-run ${ARGN}: exit ${rc} (expected ${code}), "
                        "${stream} should match '${regex}'\nstdout: ${out}\nstderr: ${err}")
  endif()
  message(STATUS "ok: crisp-run ${ARGN} -> ${rc}")
endfunction()

expect(0 stdout "sample 0: #1 index [0-9]+ class [0-9]+ \"[^\"]*\" score [0-9.]+\nsample 0: #2"
       ${DIR}/model.crisp ${DIR}/input.npy)
expect(0 stdout "median latency: [0-9.]+ ms per batch of 2"
       ${DIR}/model.crisp ${DIR}/input.npy --repeat 2 --top-k 1)
expect(0 stdout "median latency: [0-9.]+ ms per batch of 2"
       ${DIR}/model.crisp ${DIR}/input.npy --repeat 2 --threads 2)
expect(2 stderr "usage: crisp-run MODEL INPUT.npy")
expect(0 stdout "image [^:]*tiny.png: #1 index [0-9]+ class [0-9]+ \"[^\"]*\" score"
       ${DIR}/prep.crisp --image ${DIR}/tiny.png)
expect(1 stderr "skipped: image '[^']*cut.png': PNG .*truncated.*none of the 1 images"
       ${DIR}/prep.crisp --image ${DIR}/cut.png --skip-bad)
expect(1 stderr "^crisp-run: error: section WGHT: CRC32 mismatch"
       ${DIR}/corrupt.crisp ${DIR}/input.npy)
expect(1 stderr "^crisp-run: error: .*dtype '<f8'" ${DIR}/model.crisp ${DIR}/f8.npy)
