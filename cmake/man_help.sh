#!/bin/sh
# What help2man reads for a man page (cmake/install.cmake): runs the program named by
# CRNN_MAN_PROGRAM with the option help2man passes. Of --help, the leading "usage:" becomes
# "Usage:", which help2man makes the SYNOPSIS; of --version, the first line only (the program
# and its version: the next line names the build machine's libraries).
set -e
: "${CRNN_MAN_PROGRAM:?CRNN_MAN_PROGRAM names the program}"
out=$("$CRNN_MAN_PROGRAM" "$@")
case ${1:-} in
  --help) printf '%s\n' "$out" | sed '1s/^usage:/Usage:/' ;;
  --version) printf '%s\n' "$out" | sed -n 1p ;;
  *) printf '%s\n' "$out" ;;
esac
